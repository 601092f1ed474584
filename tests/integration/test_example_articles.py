"""The example site's circuit and universality articles build from a cold cache under --strict,
every claim they make holds on the real zoo models, and the universality figures carry their
correlations.

Each article is built alone in a temporary copy of the example site (config and bibliography),
so the cache is empty and every analysis runs: this is the check that the prose's numbers and
the claims' thresholds still fit the models after a change to the zoo or the analysis code.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import example_config

ROOT = Path(__file__).resolve().parents[2]


def build_article(tmp_path: Path, name: str) -> str:
    """Build content/NAME.md alone from a cold cache with --strict; return its HTML."""
    site = tmp_path / "site"
    (site / "content").mkdir(parents=True)
    for file in ("circuitpress.toml", "references.bib", "baselines.py"):
        shutil.copy(ROOT / file, site / file)
    config = site / "circuitpress.toml"
    config.write_text(example_config(config.read_text(encoding="utf-8")), encoding="utf-8")
    shutil.copy(ROOT / "content" / f"{name}.md", site / "content" / f"{name}.md")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "circuitpress",
            "build",
            str(site),
            "--strict",
            "--jobs",
            "1",
            "--device",
            "cpu",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    # --strict turns a failed claim or any warning into exit 1, with the claim's file:line.
    assert out.returncode == 0, out.stdout + out.stderr
    return (site / "_site" / name / "index.html").read_text(encoding="utf-8")


def directive_count(name: str, directive: str) -> int:
    source = (ROOT / "content" / f"{name}.md").read_text(encoding="utf-8")
    return len(re.findall(rf"^:::\{{{directive}\}}", source, flags=re.M))


@pytest.mark.slow
def test_curve_circuit_claims_all_hold(tmp_path: Path) -> None:
    html = build_article(tmp_path, "curve-circuit")
    states = re.findall(r'data-claim="(\w+)"', html)
    # Every {claim} of the source is on the page (none silently dropped) and every one held.
    assert len(states) == directive_count("curve-circuit", "claim") >= 2
    assert set(states) == {"held"}
    assert 'data-claim="failed"' not in html
    # The circuit's protagonist and its inputs have unit pages linked from the article.
    site = tmp_path / "site" / "_site"
    for unit in ("conv3/30", "conv2/13", "conv2/0", "conv2/11", "conv2/24"):
        assert (site / "units" / "shapes-a" / unit / "index.html").is_file(), unit
        assert f'href="/units/shapes-a/{unit}/"' in html, unit
    # The expanded-weights figure says it is expanded.
    assert 'data-expanded="true"' in html


@pytest.mark.slow
def test_universality_figures_carry_correlations(tmp_path: Path) -> None:
    html = build_article(tmp_path, "universality")
    figures = re.findall(r"<figure[^>]*cp-universality.*?</figure>", html, flags=re.S)
    assert len(figures) == directive_count("universality", "universality") >= 3
    for figure in figures:
        values = [float(v) for v in re.findall(r'data-correlation="([-0-9.]+)"', figure)]
        assert values, figure[:200]
        assert all(-1.0 <= v <= 1.0 for v in values)
        assert values == sorted(values, reverse=True)  # strongest pair first
    # The prose quotes the mean matched correlations; they are on the page, per comparison.
    means = [float(m) for m in re.findall(r"matched pairs: <strong>([0-9.]+)</strong>", html)]
    assert len(means) == len(figures)
    assert 'data-claim="failed"' not in html


@pytest.mark.slow
def test_branches_claims_all_hold_through_the_branches(tmp_path: Path) -> None:
    """The shapes-branch article: its claims (branch ablations, the block's conv path, the
    accuracy dissociation) hold, and its figures follow the true dataflow across the concat
    and the residual block."""
    html = build_article(tmp_path, "branches")
    states = re.findall(r'data-claim="(\w+)"', html)
    assert len(states) == directive_count("branches", "claim") >= 5
    assert set(states) == {"held"}
    site = tmp_path / "site" / "_site"
    page = (site / "units" / "shapes-branch" / "block4" / "18" / "index.html").read_text(
        encoding="utf-8"
    )
    # block4's inputs come from the Inception block's concat (all its branches), not from a
    # module that merely ran before it.
    assert "<code>mixed3</code>" in page
    assert 'data-expanded="true"' in html  # weights across the residual block are expanded
