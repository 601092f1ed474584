"""The engine's promise on a real zoo model: every request of the build (the article's, its
unit pages', later rounds') meets in one feature-vis batch per (model, layer, image size) and
one dataset pass per model, and a unit page shows the article's own figure of its unit."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from circuitpress.build.pipeline import BuildOptions, build_site
from tests.conftest import SHAPES_A_CONFIG, write_site

pytestmark = pytest.mark.slow  # a real cold build: about a minute on 2 CPUs

CONFIG = SHAPES_A_CONFIG

PAGE = """\
---
title: Batches
published: 2026-02-03
---

:::{feature} shapes-a/conv1:2
:steps: 8
The article's figure of conv1:2, at 8 steps.
:::

:::{feature} shapes-a/conv1:3
:steps: 16
:negative:
:seed: 4
What conv1:3 avoids.
:::

:::{feature} shapes-a/conv1:5
:steps: 8
:objective: mean
conv1:5 by lucent's objective, the plain mean.
:::

:::{examples} shapes-a/conv1:2
:k: 4
:::

The circuit's unit {unit}`shapes-a/conv2:1`, and its strongest inputs:

:::{circuit} shapes-a/conv2:1
:depth: 1
:inputs: 2
:::
"""


@pytest.fixture(scope="module")
def cli_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The site, built by the command with stderr to a pipe (no terminal): stdout, stderr."""
    root = write_site(
        tmp_path_factory.mktemp("batches"),
        {"circuitpress.toml": CONFIG, "content/batches.md": PAGE},
    )
    out = subprocess.run(
        [sys.executable, "-m", "circuitpress", "build", str(root), "--jobs", "1"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    return root, out.stdout, out.stderr


@pytest.fixture(scope="module")
def built(cli_build: tuple[Path, str, str]) -> Path:
    return cli_build[0]


def test_progress_without_a_terminal_is_a_plain_line_per_group(
    cli_build: tuple[Path, str, str],
) -> None:
    _, stdout, stderr = cli_build
    lines = stderr.strip().splitlines()
    groups = report(cli_build[0])["groups"]
    assert len(lines) == len(groups)  # no bars, no escape codes: one line per finished group
    assert not any("\x1b" in line or "━" in line for line in lines)
    fv = next(line for line in lines if line.startswith("feature vis shapes-a/conv1:"))
    assert re.search(r"\d+ requests, \d+ images x 256 steps, [\d.]+ s \(CPU [\d.]+ s\)", fv)
    assert re.search(r"\[analyses \d+/\d+, \d+:\d\d elapsed", lines[-1])
    # The summary names the totals of the build report.
    totals = report(cli_build[0])["totals"]
    assert f"analyses computed in {totals['groups']} group(s), CPU" in stdout


def report(root: Path) -> dict:
    return json.loads((root / ".circuitpress" / "build-report.json").read_text())


def test_one_feature_vis_group_per_layer_and_one_examples_pass_per_model(built: Path) -> None:
    groups = report(built)["groups"]
    fv = [(g["model"], g["layer"]) for g in groups if g["kind"] == "featurevis"]
    # conv1: the article's three figures and the unit pages of conv1:2, 3 and 5 (and of the
    # circuit's inputs); conv2: the circuit's root and its unit page; conv3: the thumbnails of
    # the units conv2's page names (their neighbour pages). Different steps, signs, seeds and
    # diversity and objectives, one group per layer, one batch each.
    assert sorted(fv) == [("shapes-a", "conv1"), ("shapes-a", "conv2"), ("shapes-a", "conv3")]
    assert all(g["batches"] == 1 for g in groups if g["kind"] == "featurevis")
    conv1 = next(g for g in groups if g["kind"] == "featurevis" and g["layer"] == "conv1")
    assert conv1["requests"] >= 2 + 3 and conv1["steps"] == 256  # 8, 16 and 256 steps together
    assert [g["model"] for g in groups if g["kind"] == "examples"] == ["shapes-a"]
    for g in groups:
        assert g["cpu_seconds"] >= 0 and g["wall_seconds"] > 0
    totals = report(built)["totals"]
    assert totals["groups"] == len(groups)
    assert totals["requests"] == sum(g["requests"] for g in groups)


def figures(html: str) -> list[str]:
    """The content hashes of the page's PNG images (names are `LABEL-HASH.png`)."""
    return re.findall(r'<img[^>]+src="[^"]+-([0-9a-f]{16})\.png"', html)


def test_a_unit_page_shows_the_articles_figure_of_its_unit(built: Path) -> None:
    article = (built / "_site" / "batches" / "index.html").read_text()
    unit = (built / "_site" / "units" / "shapes-a" / "conv1" / "2" / "index.html").read_text()
    # Images are content-addressed: the same file is the same image.
    article_figure, negative_figure = figures(article)[:2]
    assert article_figure in figures(unit)
    # conv1:3's article figure is a negative one at 16 steps: its unit page keeps the standard
    # figures (256 steps, seed 0), so it does not show the article's.
    other = (built / "_site" / "units" / "shapes-a" / "conv1" / "3" / "index.html").read_text()
    assert negative_figure not in figures(other) and len(figures(other)) > 4
    # conv1:5's article figure maximises the plain mean, in conv1's one batch with the
    # default objective's figures: its unit page shows it.
    mean_figure = figures(article)[2]
    page = (built / "_site" / "units" / "shapes-a" / "conv1" / "5" / "index.html").read_text()
    assert mean_figure in figures(page)


def test_a_second_build_computes_nothing(built: Path) -> None:
    (built / "content" / "batches.md").write_text(PAGE + "\nOne more sentence.\n")
    result = build_site(built, BuildOptions(jobs=1))
    assert result.computed == 0 and result.groups == 0
    assert report(built)["groups"] == []
