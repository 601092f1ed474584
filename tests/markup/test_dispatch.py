"""The dispatching block and inline loops (markup/dispatch.py) give markdown-it's own tokens."""

from __future__ import annotations

import random
import types
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt
from markdown_it.parser_block import ParserBlock
from markdown_it.parser_inline import ParserInline
from markdown_it.token import Token

from circuitpress.markup import dispatch
from circuitpress.markup.parser import create_parser

REPO = Path(__file__).resolve().parents[2]


def _stock(front_matter: bool) -> MarkdownIt:
    """The same parser with markdown-it's own loops put back."""
    md = create_parser(front_matter=front_matter)
    md.block.tokenize = types.MethodType(ParserBlock.tokenize, md.block)  # type: ignore[method-assign]
    md.inline.tokenize = types.MethodType(ParserInline.tokenize, md.inline)  # type: ignore[method-assign]
    return md


def _shape(tokens: list[Token]) -> list[Any]:
    return [
        (
            t.type,
            t.tag,
            t.nesting,
            t.attrs,
            t.map,
            t.level,
            t.content,
            t.markup,
            t.info,
            t.block,
            t.hidden,
            sorted((k, repr(v)) for k, v in t.meta.items()),
            _shape(t.children) if t.children else None,
        )
        for t in tokens
    ]


def _env(env: dict[str, Any]) -> dict[str, Any]:
    # markdown-it's footnote rule files an empty {"refs": {}, "list": {}} at the first inline
    # position it is tried at; dispatched, it is only tried at a `[`. Nothing reads it empty.
    notes = env.get("footnotes")
    if notes is not None and not notes.get("refs") and not notes.get("list"):
        env = {k: v for k, v in env.items() if k != "footnotes"}
    return {k: repr(v) for k, v in env.items()}


def _same(text: str, front_matter: bool = False) -> None:
    ours, theirs = create_parser(front_matter=front_matter), _stock(front_matter)
    a_env: dict[str, Any] = {}
    b_env: dict[str, Any] = {}
    a, b = ours.parse(text, a_env), theirs.parse(text, b_env)
    assert _shape(a) == _shape(b), text
    assert _env(a_env) == _env(b_env), text


def test_every_rule_of_circuitpress_parser_is_known() -> None:
    """A rule this module does not know is always tried (correct, only slower): every rule
    circuitpress itself installs is known, so none is slow by accident."""
    md = create_parser(front_matter=True)
    # Rules that look past the line's first character (front matter: the page's first one).
    always_tried = {"front_matter", "table", "code", "lheading", "deflist", "paragraph"}
    for rule in md.block.ruler.__rules__:
        known = dispatch.first_characters(rule.fn, dispatch.BLOCK_FIRST) is not None
        assert known != (rule.name in always_tried), rule.name
    for rule in md.inline.ruler.__rules__:
        known = dispatch.first_characters(rule.fn, dispatch.INLINE_FIRST) is not None
        assert known != (rule.name in {"text", "linkify"}), rule.name


def test_a_plugins_rule_is_tried_everywhere_unless_it_is_the_known_function() -> None:
    """Known by code object, not by name: another fence made by markdown-it's factory starts
    with its own markers; a different function named like a known rule is unknown."""
    from markdown_it.rules_block.fence import make_fence_rule

    plus = make_fence_rule(markers=("+",))
    assert dispatch.first_characters(plus, dispatch.BLOCK_FIRST) == "+"

    def heading(state: Any, start: int, end: int, silent: bool) -> bool:  # same name
        return False

    assert dispatch.first_characters(heading, dispatch.BLOCK_FIRST) is None
    text = "+++ x\nbody\n+++\n"
    _same_with(
        text,
        lambda: _with_plus(create_parser(front_matter=False)),
        lambda: _with_plus(_stock(False)),
    )


def _with_plus(md: MarkdownIt) -> MarkdownIt:
    from markdown_it.rules_block.fence import make_fence_rule

    md.block.ruler.before("paragraph", "plus_fence", make_fence_rule(markers=("+",)))
    return md


def _same_with(text: str, ours_factory: Any, theirs_factory: Any) -> None:
    ours, theirs = ours_factory(), theirs_factory()
    a, b = ours.parse(text, {}), theirs.parse(text, {})
    assert _shape(a) == _shape(b)
    assert any(t.type == "fence" and t.markup == "+++" for t in a)


@pytest.mark.parametrize(
    "path",
    sorted((REPO / "tests" / "markup" / "fixtures").glob("*.md"))
    + sorted((REPO / "content").rglob("*.md")),
    ids=lambda p: p.name,
)
def test_same_tokens_on_fixtures_and_the_example_site(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    _same(text, front_matter=text.startswith("---"))


# Every character some rule starts with, the characters around them, and line structure.
_PIECES = [
    "a",
    "b",
    " ",
    "  ",
    "    ",
    "\t",
    "\n",
    "\n\n",
    "#",
    "## ",
    ">",
    "> ",
    "-",
    "- ",
    "*",
    "_",
    "+",
    "1.",
    "2)",
    "[",
    "]",
    "(",
    ")",
    "[^1]",
    "[^1]: note",
    "^[inline]",
    "!",
    "![x](y)",
    "`",
    "```",
    "~~~",
    "~~",
    "~",
    ":::",
    ":::{note}",
    "$",
    "$$",
    "\\",
    "\\$",
    "{",
    "}",
    "{cite}`k`",
    "{.cls}",
    "{#id}",
    "<",
    "<b>",
    "</b>",
    "<!-- c -->",
    "<http://x.y>",
    "&amp;",
    "&",
    "|",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "---",
    "***",
    "===",
    "Term\n: def",
    "[x]: /u",
    "[x]",
    "é",
    "\u00a0",
]


@pytest.mark.parametrize("front_matter", [False, True])
def test_same_tokens_on_generated_markdown(front_matter: bool) -> None:
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 24)))
        _same(text, front_matter=front_matter)


def test_a_rule_enabled_after_set_up_is_used() -> None:
    md = create_parser(front_matter=False)
    md.disable("strikethrough")
    assert "<s>" not in md.render("~~gone~~")
    md.enable("strikethrough")
    assert "<s>gone</s>" in md.render("~~gone~~")


@pytest.mark.parametrize(
    "text",
    [
        "- a--\n  ---\n",  # front matter is read from the page's first character, not the line's
        "> ---\n> x\n",
        "1. ---\n   x\n   ---\n",
        "  - [^1]: x\n",
    ],
)
def test_same_tokens_where_a_rule_reads_past_the_lines_first_character(text: str) -> None:
    _same(text, front_matter=True)
    _same(text, front_matter=False)
