"""`circuitpress check` on a cold site: it computes nothing, writes nothing, and reports every
mistake of the site in one run, one line each, exit 1."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import SHAPES_A_CONFIG, write_site

CONFIG = SHAPES_A_CONFIG

GOOD = """\
---
title: Good
published: 2026-02-03
---

A figure the check does not compute:

:::{feature} shapes-a/conv1:2
An edge detector.
:::

The unit {unit}`shapes-a/conv2:1` and its circuit:

:::{circuit} shapes-a/conv2:1
:depth: 1
:::
"""

BAD_LAYER = """\
---
title: Bad layer
published: 2026-02-03
---

Intro.

:::{feature} shapes-a/conv9:1
No such layer.
:::
"""

BAD_OPTION = """\
---
title: Bad option
published: 2026-02-03
---

:::{examples} shapes-a/conv1:3
:bogus: 4
:::
"""

BAD_LINK_AND_UNIT = """\
---
title: Bad link
published: 2026-02-03
---

A [link to nowhere](/nowhere/) and a unit out of range {unit}`shapes-a/conv1:99`.
"""


def check(site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "circuitpress", "check", str(site)], capture_output=True, text=True
    )


def test_check_lists_every_error_of_every_kind_and_computes_nothing(tmp_path: Path) -> None:
    site = write_site(
        tmp_path / "site",
        {
            "circuitpress.toml": CONFIG,
            "content/good.md": GOOD,
            "content/layer.md": BAD_LAYER,
            "content/option.md": BAD_OPTION,
            "content/link.md": BAD_LINK_AND_UNIT,
        },
    )
    out = check(site)
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert "Traceback" not in out.stderr
    # One line each, `file:line: what (hint)`, sorted by file: four mistakes of three kinds
    # (a reference the model facts refute, twice; a bad option; a broken link).
    assert all(re.match(r"^content/\w+\.md:\d+: ", line) for line in lines), lines
    text = "\n".join(lines)
    assert re.search(r"content/layer\.md:8: .*conv9", text)
    assert re.search(r"content/option\.md:\d+: unknown option ':bogus:'", text)
    assert re.search(r"content/link\.md:6: .*99", text)
    assert re.search(r"content/link\.md:\d+: .*/nowhere/", text)
    assert len(lines) == 4
    # Nothing computed, nothing written: no cache entries, no output folder.
    assert not (site / "_site").exists()
    cache = site / ".circuitpress" / "cache"
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def test_check_of_a_good_cold_site_passes_without_computing(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", {"circuitpress.toml": CONFIG, "content/good.md": GOOD})
    out = check(site)
    assert out.returncode == 0, out.stderr
    assert "no problems" in out.stdout and "analyses not computed" in out.stdout
    assert not (site / ".circuitpress" / "cache").exists()
    assert not (site / "_site").exists()
