"""markdown-it's block and inline loops, trying each rule only where it can match.

At every block start, and at every inline position where plain text stops, markdown-it calls
each of its rules in order until one matches. Nearly every rule looks at one character first
and returns False when it is not its own (a heading needs `#`, a link `[`), so most of those
calls are spent for nothing: with circuitpress's plugins, ~15 block rules are tried per
paragraph and ~10 inline rules per `$` or `{`. These loops are markdown-it's own, except that
the rules tried at a position are those whose first character it is, in markdown-it's order,
plus every rule this module does not know, which is always tried (the loops are those of
markdown-it-py 4.x, pinned in pyproject.toml). The tokens are the same
(tests/markup/test_dispatch.py compares both parsers on fixtures and generated Markdown); a
prose build parses ~15% faster.

Only the first-character tests below are assumed, each read from the rule's source: a rule
is named by its function's module and qualified name, so a plugin's rule of the same name is
unknown here, hence always tried.
"""

from __future__ import annotations

import types
from typing import Any, Callable, Sequence

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline

# The characters each known rule can start with (after the line's indentation, for blocks).
BLOCK_FIRST: dict[tuple[str, str], str] = {
    ("mdit_py_plugins.front_matter.index", "_front_matter_rule"): "-",
    ("mdit_py_plugins.dollarmath.index", "math_block_dollar.<locals>._math_block_dollar"): "$",
    ("mdit_py_plugins.attrs.index", "_attr_block_rule"): "{",
    ("mdit_py_plugins.colon_fence", "_rule"): ":",
    ("markdown_it.rules_block.fence", "make_fence_rule.<locals>._fence_rule"): "~`",
    ("markdown_it.rules_block.blockquote", "blockquote"): ">",
    ("markdown_it.rules_block.hr", "hr"): "*-_",
    ("markdown_it.rules_block.list", "list_block"): "*-+0123456789",
    ("mdit_py_plugins.footnote.index", "footnote_def"): "[",
    ("markdown_it.rules_block.reference", "reference"): "[",
    ("markdown_it.rules_block.html_block", "html_block"): "<",
    ("markdown_it.rules_block.heading", "heading"): "#",
}
INLINE_FIRST: dict[tuple[str, str], str] = {
    ("markdown_it.rules_inline.newline", "newline"): "\n",
    ("mdit_py_plugins.dollarmath.index", "math_inline_dollar.<locals>._math_inline_dollar"): "$",
    ("markdown_it.rules_inline.escape", "escape"): "\\",
    ("mdit_py_plugins.myst_role.index", "myst_role"): "{",
    ("markdown_it.rules_inline.backticks", "backtick"): "`",
    ("markdown_it.rules_inline.strikethrough", "tokenize"): "~",
    ("markdown_it.rules_inline.emphasis", "tokenize"): "*_",
    ("markdown_it.rules_inline.link", "link"): "[",
    ("markdown_it.rules_inline.image", "image"): "!",
    ("mdit_py_plugins.footnote.index", "footnote_inline"): "^",
    ("mdit_py_plugins.footnote.index", "footnote_ref"): "[",
    ("markdown_it.rules_inline.autolink", "autolink"): "<",
    ("markdown_it.rules_inline.html_inline", "html_inline"): "<",
    ("markdown_it.rules_inline.entity", "entity"): "&",
    ("mdit_py_plugins.attrs.index", "_attr_inline_rule"): "{",
}

Rule = Callable[..., bool]


def _identity(rule: Rule) -> tuple[str, str]:
    """(module, qualified name) of a rule; a functools.partial is named by what it wraps."""
    fn = getattr(rule, "func", rule)
    return getattr(fn, "__module__", ""), getattr(fn, "__qualname__", "")


class _Table:
    """Per first character, the rules worth trying, for one chain of a ruler; rebuilt when the
    ruler recompiles the chain (a rule enabled or disabled after set-up)."""

    def __init__(self, first: dict[tuple[str, str], str]) -> None:
        self.first = first
        self.source: list[Rule] | None = None
        self.by_char: dict[str, list[Rule]] = {}
        self.default: list[Rule] = []

    def rules(self, chain: list[Rule]) -> tuple[dict[str, list[Rule]], list[Rule]]:
        if chain is not self.source:
            starts = [self.first.get(_identity(rule)) for rule in chain]
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
