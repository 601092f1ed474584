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
    always_tried = {
        "table",
        "code",
        "lheading",
        "deflist",
        "paragraph",
    }  # rules that look past the first character
    for rule in md.block.ruler.__rules__:
        known = dispatch._identity(rule.fn) in dispatch.BLOCK_FIRST
        assert known or rule.name in always_tried, rule.name
    for rule in md.inline.ruler.__rules__:
        known = dispatch._identity(rule.fn) in dispatch.INLINE_FIRST
        assert known or rule.name in {"text", "linkify"}, rule.name


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


def test_same_tokens_on_generated_markdown() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 24)))
        _same(text)


def test_a_rule_enabled_after_set_up_is_used() -> None:
    md = create_parser(front_matter=False)
    md.disable("strikethrough")
    assert "<s>" not in md.render("~~gone~~")
    md.enable("strikethrough")
    assert "<s>gone</s>" in md.render("~~gone~~")
