"""Markdown -> HTML fixtures: tests/markup/fixtures/NAME.md must render to NAME.html.

Each .html file holds the page body, then (when present) the table of contents, footnotes,
references and citation BibTeX, each after an HTML comment naming the section.

To regenerate after an intended change (and review the diff before committing):

    CP_REGEN=1 python -m pytest tests/markup/test_fixtures.py
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import pytest

from circuitpress.markup import RenderedPage

from .helpers import FIXTURES, build

CASES = sorted(p.stem for p in FIXTURES.glob("*.md"))


def serialise(out: RenderedPage) -> str:
    parts = [out.body_html.strip()]
    if out.toc:
        parts.append("<!-- toc -->")
        parts += [f'<li data-level="{e.level}" data-id="{e.id}">{e.html}</li>' for e in out.toc]
    if out.footnotes:
        parts.append("<!-- footnotes -->")
        parts += [
            f'<li id="{f.id}" data-number="{f.number}" data-backrefs="{" ".join(f.backrefs)}">'
            f"{f.html}</li>"
            for f in out.footnotes
        ]
    if out.references:
        parts.append("<!-- references -->")
        parts += [f'<li id="{r.id}" data-number="{r.number}">{r.html}</li>' for r in out.references]
    parts.append("<!-- bibtex -->")
    parts.append(html.escape(out.bibtex, quote=False))
    return "\n".join(parts) + "\n"


@pytest.mark.parametrize("name", CASES)
def test_fixture(name: str) -> None:
    source = (FIXTURES / f"{name}.md").read_text(encoding="utf-8")
    actual = serialise(build(source, file=f"content/{name}.md"))
    expected_path: Path = FIXTURES / f"{name}.html"
    if os.environ.get("CP_REGEN"):
        expected_path.write_text(actual, encoding="utf-8")
    assert expected_path.is_file(), f"no {expected_path.name}: run CP_REGEN=1 pytest {__file__}"
    assert actual == expected_path.read_text(encoding="utf-8")


def test_every_fixture_has_expected_output() -> None:
    stems = {p.stem for p in FIXTURES.glob("*.html")}
    assert stems == set(CASES)
