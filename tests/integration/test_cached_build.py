"""A build of a site with a real zoo model: the second build, with only prose changed, takes
every analysis from the cache and never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = """\
[site]
title = "Cached"
[models.shapes-a]
zoo = "shapes-a"
[build]
dataset_sample = 64
"""

PAGE = """\
---
title: One unit
published: 2026-02-03
---

{prose} The unit {{unit}}`shapes-a/conv1:2` responds to edges.

:::{{examples}} shapes-a/conv1:2
:k: 4
Examples.
:::
"""

BUILD = """
import json, sys
from circuitpress.build.pipeline import build_site, BuildOptions
report = build_site(sys.argv[1], BuildOptions(jobs=1))
print(json.dumps({"torch": "torch" in sys.modules, "computed": report.computed,
                  "cached": report.cached, "up_to_date": report.up_to_date}))
"""


def build(site: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", BUILD, str(site)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_prose_edit_runs_no_model_and_imports_no_torch(tmp_path):
    site = tmp_path / "site"
    (site / "content").mkdir(parents=True)
    (site / "circuitpress.toml").write_text(CONFIG)
    page = site / "content" / "one.md"
    page.write_text(PAGE.format(prose="First words."))

    cold = build(site)
    assert cold["torch"] and cold["computed"] > 0

    page.write_text(PAGE.format(prose="Edited words."))
    warm = build(site)
    assert not warm["up_to_date"], "the edit must be rebuilt, not skipped"
    assert warm == {"torch": False, "computed": 0, "cached": warm["cached"], "up_to_date": False}
    assert warm["cached"] >= cold["computed"]
    html = (site / "_site" / "one" / "index.html").read_text()
    assert "Edited words." in html
    assert (site / "_site" / "units" / "shapes-a" / "conv1" / "2" / "index.html").is_file()

    # A corrupt cache entry is a miss with a warning, recomputed; never a crash.
    entry = next((site / ".circuitpress" / "cache").rglob("*.npz"))
    entry.write_bytes(b"garbage")
    page.write_text(PAGE.format(prose="Third words."))
    again = build(site)
    assert again["computed"] == 1 and again["torch"]


PROSE_BUILD = """
import json, sys
from circuitpress.build.pipeline import build_site, BuildOptions
build_site(sys.argv[1], BuildOptions())
print(json.dumps(sorted(m for m in ("numpy", "PIL", "torch") if m in sys.modules)))
"""


def test_a_prose_site_imports_no_numpy_pillow_or_torch(prose_site):
    """Prose builds are the everyday case: the array libraries are left to sites with figures
    (NumPy's import and its BLAS threads were about a tenth of a 300-page build's CPU time)."""
    site = prose_site()
    out = subprocess.run(
        [sys.executable, "-c", PROSE_BUILD, str(site)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
