"""A claim that fails is a warning in a normal build and an error under --strict, with the
file and line of the claim; the figure says so either way."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from circuitpress.cli import cli

CONFIG = """\
[site]
title = "Claims"
[models.shapes-a]
zoo = "shapes-a"
[build]
dataset_sample = 128
"""

PAGE = """\
---
title: Two claims
published: 2026-03-04
---

A prediction that holds: zeroing a unit silences it.

:::{claim} Ablating conv1:2 silences it
:ablate: shapes-a/conv1:2
:measure: shapes-a/relu1:2
:expect: decrease >= 99%
:::

A prediction that cannot hold: removing a unit does not multiply another one tenfold.

:::{claim} Ablating conv1:2 makes conv1:3 ten times stronger
:ablate: shapes-a/conv1:2
:measure: shapes-a/relu1:3
:expect: increase >= 900%
:::
"""


@pytest.mark.slow
def test_failed_claim_is_a_warning_and_strict_fails(tmp_path):
    site = tmp_path / "site"
    (site / "content").mkdir(parents=True)
    (site / "circuitpress.toml").write_text(CONFIG)
    (site / "content" / "claims.md").write_text(PAGE)
    runner = CliRunner()

    normal = runner.invoke(cli, ["build", str(site), "--quiet", "--jobs", "1"])
    assert normal.exit_code == 0, normal.output
    assert "warning: content/claims.md:16:" in normal.output
    html = (site / "_site" / "claims" / "index.html").read_text()
    assert html.count('data-claim="held"') == 1 and html.count('data-claim="failed"') == 1
    before = (site / "_site" / "claims" / "index.html").read_bytes()

    strict = runner.invoke(cli, ["build", str(site), "--quiet", "--strict", "--jobs", "1"])
    assert strict.exit_code == 1
    lines = [line for line in strict.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("content/claims.md:16:"), strict.output
    assert (site / "_site" / "claims" / "index.html").read_bytes() == before, "_site untouched"
