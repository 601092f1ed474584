"""Shared fixtures: small sites written into temporary folders."""

from __future__ import annotations

import functools
import http.server
import os
import signal
import tempfile
import textwrap
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

# What circuitpress keeps per user (the theme's compiled templates, render/jinja.py) goes to a
# folder of this test run, never the real ~/.cache: set before any test, inherited by the
# processes tests start.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="circuitpress-tests-cache-")

# Browser tests run in Debian's Chromium (never a downloaded build), headless, offline.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def default_sigint() -> None:
    """`preexec_fn` of a child a test stops with SIGINT (Ctrl-C). A job started in the
    background by a shell without job control (`cmd &` in a script, as CI may run the suite)
    has SIGINT ignored, its children inherit that, and Python then never raises
    KeyboardInterrupt; the child gets the default disposition back, as from a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright, closed on exit; the test is skipped where
    Playwright or the browser is missing."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the tests of a module."""
    with chromium() as launched:
        yield launched


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_folder(root: Path) -> Iterator[str]:
    """A folder served over HTTP on loopback from a thread (a plain static host, as a built
    site is published); yields its URL, http://127.0.0.1:PORT/."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


PROSE_CONFIG = """\
[site]
title = "Test site"
description = "A site made by a test."
base_url = "/"
authors = ["Ada Lovelace"]
"""

# A site with the zoo's shapes-a and a small dataset sample (real analyses, seconds each).
SHAPES_A_CONFIG = """\
[site]
title = "A zoo site"
[models.shapes-a]
zoo = "shapes-a"
[build]
dataset_sample = 64
"""

PROSE_BIB = """\
@article{olah2020zoom,
  author = {Olah, Chris and Cammarata, Nick},
  title = {Zoom In: An Introduction to Circuits},
  journal = {Distill},
  year = {2020},
  url = {https://distill.pub/2020/circuits/zoom-in}
}
@article{godel1931,
  author = {G{\\"o}del, Kurt},
  title = {{\\"U}ber formal unentscheidbare S{\\"a}tze},
  journal = {Monatshefte f{\\"u}r Mathematik},
  year = {1931}
}
"""

PROSE_ARTICLE = """\
---
title: A prose article
description: Testing the pipeline.
authors:
  - name: Ada Lovelace
    affiliation: Analytical Engines
published: 2026-01-02
---

Features are the unit of study {cite}`olah2020zoom`, and so is logic {cite}`godel1931`.

## Math

Inline $a^2 + b^2 = c^2$ and a footnote.[^one]

[^one]: The footnote text.

:::{note}
A note.
:::
"""


def write_site(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text) if rel.endswith(".md") else text, encoding="utf-8")
    return root


@pytest.fixture
def prose_site(tmp_path: Path) -> Callable[..., Path]:
    """make(**overrides) -> a prose-only site (no models) with the given files replaced."""

    def make(files: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> Path:
        base = {
            "circuitpress.toml": PROSE_CONFIG,
            "references.bib": PROSE_BIB,
            "content/prose.md": PROSE_ARTICLE,
        }
        base.update(files or {})
        for name in drop:
            base.pop(name, None)
        root = tmp_path / "site"
        return write_site(root, base)

    return make


def example_config(text: str) -> str:
    """The example site's circuitpress.toml without its [atlas]: a test that builds one article
    from a cold cache checks that article, not the atlas (its own test is tests/ray and
    tests/build/test_atlas*)."""
    import re

    return re.sub(r"(?ms)^\[atlas\]\n.*?(?=^\[|\Z)", "", text)
