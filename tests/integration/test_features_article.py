"""The example article on features builds from a cold cache with --strict, and shows real
evidence: feature visualizations, dataset examples, tuning curves, unit chips and unit pages."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from circuitpress.cli import cli

from ..conftest import example_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_features_article_cold_build(tmp_path):
    site = tmp_path / "site"
    (site / "content").mkdir(parents=True)
    for name in ("circuitpress.toml", "references.bib", "baselines.py"):
        shutil.copy(REPO / name, site / name)
    config = site / "circuitpress.toml"
    config.write_text(example_config(config.read_text(encoding="utf-8")), encoding="utf-8")
    shutil.copy(REPO / "content" / "features.md", site / "content" / "features.md")
    start = time.perf_counter()
    result = CliRunner().invoke(cli, ["build", str(site), "--strict", "--quiet", "--jobs", "1"])
    seconds = time.perf_counter() - start
    assert result.exit_code == 0, result.output
    print(f"features.md cold build: {seconds:.1f} s")

    html = (site / "_site" / "features" / "index.html").read_text()
    assert html.count('class="cp-unit') >= 8, "unit chips"
    figures = re.findall(r'<img[^>]+src="(/assets/figures/[^"]+\.png)"', html)
    assert len(figures) >= 20
    for src in set(figures):
        assert (site / "_site" / src.lstrip("/")).is_file(), src
    assert html.count("<svg") >= 3, "tuning curves are SVG"
    for unit in ("conv1/7", "conv1/15", "conv2/21", "conv3/34"):
        page = (site / "_site" / "units" / "shapes-a" / unit / "index.html").read_text()
        assert "Features of a small vision model" in page, "backlink to the article"
