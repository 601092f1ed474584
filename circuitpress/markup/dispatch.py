"""markdown-it's block and inline loops, trying each rule only where it can match.

At every block start, and at every inline position where plain text stops, markdown-it calls
each of its rules in order until one matches. Nearly every rule looks at one character first
and returns False when it is not its own (a heading needs `#`, a link `[`), so most of those
calls are spent for nothing: with circuitpress's plugins, ~15 block rules are tried per
paragraph and ~10 inline rules per `$` or `{`. These loops are markdown-it's own (those of
markdown-it-py 4.x, pinned in pyproject.toml), except that the rules tried at a position are
those whose first character it is, in markdown-it's order, plus every rule this module does not
know, which is always tried. The tokens are the same (tests/markup/test_dispatch.py compares
both parsers on fixtures and generated Markdown); so is the env, except that markdown-it's
footnote rule, tried at every position, also files an empty footnote table where no `[` is.
A prose build parses ~15% faster.

A rule is known by its code object, not its name: a plugin's rule of the same name, or another
rule made by the same factory, is a different function here, hence always tried. The one
factory whose rules differ in their first character, markdown-it's `make_fence_rule`, is read
for its markers. Each first-character test below was read from the rule's source.
"""

from __future__ import annotations

import types
from typing import Any, Callable, Sequence

from markdown_it import MarkdownIt
from markdown_it.rules_block import (
    StateBlock,
    blockquote,
    fence,
    heading,
    hr,
    html_block,
    list_block,
    reference,
)
from markdown_it.rules_inline import (
    StateInline,
    autolink,
    backtick,
    emphasis,
    entity,
    escape,
    html_inline,
    image,
    link,
    newline,
    strikethrough,
)
from mdit_py_plugins.attrs.index import _attr_block_rule, _attr_inline_rule
from mdit_py_plugins.colon_fence import _rule as colon_fence_rule
from mdit_py_plugins.dollarmath.index import math_block_dollar, math_inline_dollar
from mdit_py_plugins.footnote.index import footnote_def, footnote_inline, footnote_ref
from mdit_py_plugins.myst_role.index import myst_role

Rule = Callable[..., bool]


def _code(rule: Any) -> types.CodeType | None:
    """The code object of a rule; a functools.partial is known by what it wraps."""
    return getattr(getattr(rule, "func", rule), "__code__", None)


# The characters each known rule can start with (after the line's indentation, for blocks).
BLOCK_FIRST: dict[types.CodeType | None, str] = {
    _code(math_block_dollar()): "$",
    _code(_attr_block_rule): "{",
    _code(colon_fence_rule): ":",
    _code(blockquote): ">",
    _code(hr): "*-_",
    _code(list_block): "*-+0123456789",
    _code(footnote_def): "[",
    _code(reference): "[",
    _code(html_block): "<",
    _code(heading): "#",
}
INLINE_FIRST: dict[types.CodeType | None, str] = {
    _code(newline): "\n",
    _code(math_inline_dollar()): "$",
    _code(escape): "\\",
    _code(footnote_inline): "^",
    _code(footnote_ref): "[",
    _code(backtick): "`",
    _code(strikethrough.tokenize): "~",
    _code(emphasis.tokenize): "*_",
    _code(link): "[",
    _code(image): "!",
    _code(autolink): "<",
    _code(html_inline): "<",
    _code(entity): "&",
    _code(_attr_inline_rule): "{",
    _code(myst_role): "{",
}
_FENCE = _code(fence)  # made by make_fence_rule: it starts with one of its markers


def first_characters(rule: Rule, table: dict[types.CodeType | None, str]) -> str | None:
    """The characters `rule` can start with, or None: unknown, tried everywhere."""
    code = _code(rule)
    if code is None:
        return None
    if code is _FENCE:  # (a block rule: never in an inline chain)
        fn = getattr(rule, "func", rule)
        cells = dict(zip(code.co_freevars, fn.__closure__ or (), strict=True))
        markers = cells["markers"].cell_contents if "markers" in cells else None
        if isinstance(markers, tuple) and all(isinstance(m, str) and len(m) == 1 for m in markers):
            return "".join(markers)
        return None
    return table.get(code)


class _Table:
    """Per first character, the rules worth trying, for one chain of a ruler; rebuilt when the
    ruler recompiles the chain (a rule enabled or disabled after set-up)."""

    def __init__(self, first: dict[types.CodeType | None, str]) -> None:
        self.first = first
        self.source: list[Rule] | None = None
        self.by_char: dict[str, list[Rule]] = {}
        self.default: list[Rule] = []

    def rules(self, chain: list[Rule]) -> tuple[dict[str, list[Rule]], list[Rule]]:
        if chain is not self.source:
            starts = [first_characters(rule, self.first) for rule in chain]
            chars = {c for s in starts if s for c in s}
            self.by_char = {
                c: [r for r, s in zip(chain, starts, strict=True) if s is None or c in s]
                for c in chars
            }
            self.default = [r for r, s in zip(chain, starts, strict=True) if s is None]
            self.source = chain
        return self.by_char, self.default


def dispatch_by_first_character(md: MarkdownIt) -> None:
    """Replace `md`'s block and inline tokenizers by the dispatching ones (call after every
    plugin is added)."""
    block_table, inline_table = _Table(BLOCK_FIRST), _Table(INLINE_FIRST)

    def block_tokenize(self: Any, state: StateBlock, startLine: int, endLine: int) -> None:
        by_char, default = block_table.rules(self.ruler.getRules(""))
        src = state.src
        line = startLine
        maxNesting = state.md.options.maxNesting
        hasEmptyLines = False
        while line < endLine:
            state.line = line = state.skipEmptyLines(line)
            if line >= endLine:
                break
            if state.sCount[line] < state.blkIndent:
                break  # the end of a nested block (blockquote, list)
            if state.level >= maxNesting:
                state.line = endLine
                break
            # A line skipEmptyLines stopped at has a character after its indentation.
            first = src[state.bMarks[line] + state.tShift[line]]
            rules: Sequence[Rule] = by_char.get(first, default)
            ok = False
            for rule in rules:
                ok = rule(state, line, endLine, False)
                if ok:
                    if state.line <= line:
                        raise RuntimeError("block rule didn't increment state.line")
                    break
            if not ok:
                raise RuntimeError("none of the block rules matched")
            state.tight = not hasEmptyLines
            line = state.line
            if (line - 1) < endLine and state.isEmpty(line - 1):
                hasEmptyLines = True
            if line < endLine and state.isEmpty(line):
                hasEmptyLines = True
                line += 1
                state.line = line

    def inline_tokenize(self: Any, state: StateInline) -> None:
        by_char, default = inline_table.rules(self.ruler.getRules(""))
        src = state.src
        end = state.posMax
        maxNesting = state.md.options["maxNesting"]
        while state.pos < end:
            pos = state.pos
            ok = False
            if state.level < maxNesting:
                for rule in by_char.get(src[pos], default):
                    ok = rule(state, False)
                    if ok:
                        if state.pos <= pos:
                            raise RuntimeError("inline rule didn't increment state.pos")
                        break
            if ok:
                if state.pos >= end:
                    break
                continue
            state.append_pending(src[state.pos])
            state.pos += 1
        if state.pending:
            state.pushPending()

    md.block.tokenize = types.MethodType(block_tokenize, md.block)  # type: ignore[method-assign]
    md.inline.tokenize = types.MethodType(inline_tokenize, md.inline)  # type: ignore[method-assign]
