"""Crash consistency: `circuitpress build` killed (SIGKILL) at random moments never leaves a
broken output. After each kill the next build's `_site` equals a clean build's byte for byte,
with nothing stray beside it; where the platform exchanges names atomically (Linux), `_site`
is a complete site even right after the kill."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from circuitpress.build.pipeline import build_site
from circuitpress.build.write import _exchange, read_manifest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL"),
]

SEED = 20260102
PAGES = 40
STATIC_FILES = 120  # 32 KiB each: about 4 MB to copy
BUILD = [sys.executable, "-m", "circuitpress", "build"]
# The same build on a platform without renameat2: the two renames of the fallback.
BUILD_WITHOUT_EXCHANGE = [
    sys.executable,
    "-c",
    "import sys; import circuitpress.build.write as w; w._exchange = lambda a, b: False; "
    "from circuitpress.cli import main; sys.argv[0] = 'circuitpress'; main()",
    "build",
]


def big_site(root: Path) -> Path:
    rng = random.Random(SEED)
    words = "feature circuit neuron curve detector weight layer unit channel edge".split()
    files = {
        "circuitpress.toml": '[site]\ntitle = "Crash"\nbase_url = "/"\nauthors = ["Ada"]\n',
        "references.bib": "",
    }
    for i in range(PAGES):
        body = "\n\n".join(" ".join(rng.choices(words, k=120)) for _ in range(25))
        files[f"content/page-{i:02d}.md"] = (
            f"---\ntitle: Page {i}\npublished: 2026-01-02\n---\n\n## Part {i}\n\n{body}\n"
        )
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    (root / "static" / "data").mkdir(parents=True)
    for i in range(STATIC_FILES):
        (root / "static" / "data" / f"blob-{i:03d}.bin").write_bytes(rng.randbytes(32 * 1024))
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def strays(site: Path) -> list[str]:
    return sorted(p.name for p in site.iterdir() if p.name.startswith("._site"))


def writing(site: Path) -> bool:
    return any(name.startswith("._site.new-") for name in os.listdir(site))


def exchange_works(folder: Path) -> bool:
    a, b = folder / "probe-a", folder / "probe-b"
    a.mkdir()
    b.mkdir()
    try:
        return _exchange(a, b)
    finally:
        a.rmdir()
        b.rmdir()


def timed_build(site: Path) -> tuple[float, float]:
    """A complete rebuild: how long it runs, and how long from its first temporary tree on
    (writing, the swap, removing the replaced tree, exiting)."""
    (site / ".circuitpress" / "build-stamp.json").unlink(missing_ok=True)  # no no-op build
    start = time.monotonic()
    proc = subprocess.Popen([*BUILD, str(site), "--quiet"])
    while proc.poll() is None and not writing(site):
        time.sleep(0.0005)
    seen = time.monotonic()
    assert proc.wait(timeout=60) == 0
    end = time.monotonic()
    return end - start, max(end - seen, 0.05)


def killed_build(
    site: Path, command: list[str], rng: random.Random, window: tuple[float, float]
) -> int:
    """Start a build and SIGKILL it at a random moment: a quarter of the time anywhere in its
    run, else once it has started writing its temporary tree (then writing, the swap and the
    clean-up all take part of the window). The build's return code."""
    (site / ".circuitpress" / "build-stamp.json").unlink(missing_ok=True)  # no no-op build
    start = time.monotonic()
    proc = subprocess.Popen([*command, str(site), "--quiet"], stderr=subprocess.DEVNULL)
    try:
        if rng.random() < 1 / 4:
            deadline = start + rng.uniform(0.1, 1.0) * window[0]
        else:
            while proc.poll() is None and not writing(site) and time.monotonic() - start < 30:
                time.sleep(0.0005)
            deadline = time.monotonic() + rng.uniform(0.0, 0.9) * window[1]
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.0005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_killed_builds_never_break_the_site(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    site = big_site(tmp_path / "site")
    out = site / "_site"
    atomic = exchange_works(tmp_path)
    build_site(site)
    reference = tree(out)
    assert len(reference) > PAGES + STATIC_FILES
    window = timed_build(site)  # a rebuild, which also removes the tree it replaces
    assert tree(out) == reference, "two clean builds are byte for byte the same"
    rng = random.Random(SEED)
    kills = 0
    for command, wanted in ((BUILD, 12), (BUILD_WITHOUT_EXCHANGE, 4)):
        killed = 0
        for _ in range(wanted + 6):  # a build that ends before its kill does not count
            if killed == wanted:
                break
            code = killed_build(site, command, rng, window)
            assert code in (0, -signal.SIGKILL), code
            killed += code == -signal.SIGKILL
            if atomic and command is BUILD:
                # At every instant _site held a complete site (old and new are the same).
                assert tree(out) == reference, "a kill left _site incomplete"
            build_site(site)  # the next build puts everything right
            assert tree(out) == reference
            assert strays(site) == []
            assert read_manifest(site, out) == set(reference)
            leftovers = [p.name for p in (site / ".circuitpress" / "outputs").iterdir()]
            assert all(not n.startswith(".") for n in leftovers), leftovers
        kills += killed
    assert kills >= 10, f"only {kills} of the builds were killed before they ended"
