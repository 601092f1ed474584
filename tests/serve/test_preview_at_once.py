"""Preview at once: on a cold cache `serve` answers every page in seconds, each missing figure a
"computing" placeholder, and open pages fill in by live reload as the analyses finish."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from circuitpress.serve.inject import STATUS_ID
from circuitpress.serve.server import PreviewServer

from ..conftest import SHAPES_A_CONFIG, chromium, default_sigint, write_site

REPO = Path(__file__).resolve().parents[2]

ARTICLE = """\
---
title: Two features
authors: [Ada Lovelace]
published: 2026-01-02
---

Prose comes first.

:::{feature} shapes-a/conv1:3
:steps: 32
:::

:::{feature} shapes-a/conv2:5
:steps: 32
:::
"""


@pytest.fixture
def page() -> Iterator[object]:
    with chromium() as browser:
        yield browser.new_page()


def _figures(page: object) -> tuple[int, int] | None:
    """(placeholders, feature images) in the open page; None while it reloads."""
    try:
        pending, images = page.evaluate(  # type: ignore[attr-defined]
            "[document.querySelectorAll('.cp-pending-box').length,"
            " document.querySelectorAll('figure img').length]"
        )
        return int(pending), int(images)
    except Exception:  # noqa: BLE001 - the page is navigating (a live reload)
        return None


@pytest.mark.slow
@pytest.mark.browser
def test_a_cold_site_answers_at_once_and_fills_in_by_live_reload(tmp_path, page):
    site = write_site(
        tmp_path / "site", {"circuitpress.toml": SHAPES_A_CONFIG, "content/vis.md": ARTICLE}
    )
    server = PreviewServer(site, port=0, quiet=True, watch=False)
    start = time.perf_counter()
    server.start()
    try:
        # What the server answers first: the prose, and both figures as placeholders.
        port = int(server.url.rsplit(":", 1)[1].split("/")[0])
        status, body = _get(port, "/vis/", timeout=30)
        answered = time.perf_counter() - start
        assert status == 200 and answered < 30, f"the first page took {answered:.1f} s"
        assert b"Prose comes first." in body and body.count(b"cp-pending-box") == 2
        page.goto(server.url + "vis/")  # type: ignore[attr-defined]
        # A live reload may already be under way (a group finished): mark the page once it
        # is still, to see later that it reloaded itself.
        marked = time.monotonic() + 30
        while True:
            try:
                page.evaluate("window.__notReloaded = true")  # type: ignore[attr-defined]
                break
            except Exception:  # noqa: BLE001 - navigating
                assert time.monotonic() < marked
                time.sleep(0.2)
        # The status box says how far the background computation is.
        page.wait_for_selector(f"#{STATUS_ID}", timeout=60_000)  # type: ignore[attr-defined]
        assert "analyses" in page.inner_text(f"#{STATUS_ID}")  # type: ignore[attr-defined]

        deadline = time.monotonic() + 600
        seen: set[tuple[int, int]] = set()
        while time.monotonic() < deadline:
            state = _figures(page)
            if state is not None:
                seen.add(state)
                if state == (0, 2):
                    break
            time.sleep(0.5)
        assert (0, 2) in seen, f"the figures never all appeared: {sorted(seen)}"
        # The page reloaded itself (nobody called goto).
        assert page.evaluate("window.__notReloaded === undefined")  # type: ignore[attr-defined]
        # Unit pages may still be computing; once everything is, the status box goes.
        assert server.wait_until_complete(600)
        page.wait_for_selector(f"#{STATUS_ID}", state="detached", timeout=30_000)  # type: ignore[attr-defined]
        # Everything computed is in the cache: a build now computes nothing.
        from circuitpress.build.options import BuildOptions
        from circuitpress.build.pipeline import SiteBuild

        report = SiteBuild(site, BuildOptions(write=False)).run()
        assert report.computed == 0 and report.pending_pages == 0
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str, timeout: float) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.slow
def test_the_example_site_cold_answers_within_30_seconds(tmp_path):
    """README command 1 on a fresh clone: the index and an article answer within 30 s."""
    site = tmp_path / "example"
    site.mkdir()
    for name in ("circuitpress.toml", "references.bib", "baselines.py"):
        shutil.copy(REPO / name, site / name)
    shutil.copytree(REPO / "content", site / "content")
    if (REPO / "static").is_dir():
        shutil.copytree(REPO / "static", site / "static")
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "circuitpress", "serve", str(site), "--port", str(port)],
        preexec_fn=default_sigint,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=site,
    )
    try:
        status = None
        while time.perf_counter() - start < 30 and status is None:
            try:
                status, index = _get(port, "/", timeout=30)
            except OSError:
                time.sleep(0.2)
        assert status == 200, "the index did not answer within 30 s"
        status, body = _get(port, "/curve-circuit/", timeout=30)
        answered = time.perf_counter() - start
        assert status == 200 and answered < 30, f"the article took {answered:.1f} s"
        assert b"cp-pending-box" in body  # figures still computing, shown as placeholders
        assert b"Curve" in body
        time.sleep(5)  # the background computation is running now
    finally:
        server.send_signal(signal.SIGINT)
        try:
            out, _ = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            out, _ = server.communicate()
    text = out.decode()
    assert "computing the figures of" in text, text
    # Ctrl-C during the background computation is a clean stop: no traceback, no abort.
    assert server.returncode == 0, text
    assert "Traceback" not in text and "terminate called" not in text, text


class _FailingComputer:
    """A builder whose pages stay pending and whose background computation fails."""

    def __init__(self) -> None:
        self.computations = 0

    def __call__(self):
        from circuitpress.serve.state import Snapshot

        return Snapshot(files={"index.html": b"<body>pending</body>"}, copies={}, pending=1)

    def fill_cache(self, progress):
        from circuitpress.errors import UserError

        self.computations += 1
        raise UserError("the model's forward pass fails", file="content/a.md", line=3)


def test_a_failed_computation_keeps_its_error_until_an_edit(tmp_path):
    from circuitpress.serve.server import RESULTS

    (tmp_path / "circuitpress.toml").write_text('[site]\ntitle = "t"\n')
    builder = _FailingComputer()
    server = PreviewServer(tmp_path, port=0, quiet=True, watch=False, builder=builder)
    server.start()
    try:
        deadline = time.monotonic() + 10
        while server.state.peek().error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "content/a.md:3" in (server.state.peek().error or "")
        # The refresh after the failure shows the pages and keeps the error; nothing reruns.
        builds = server.builds
        server.changes.put([RESULTS])
        assert server.wait_for_builds(builds + 1, 10)
        time.sleep(0.3)
        assert "content/a.md:3" in (server.state.peek().error or "")
        assert builder.computations == 1
        # An edit asks for the computation again.
        server.changes.put(["content/a.md"])
        deadline = time.monotonic() + 10
        while builder.computations < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert builder.computations == 2
    finally:
        server.stop()


def test_a_page_served_with_the_status_box_learns_it_ended(tmp_path):
    """The race CI hit: a page served while a computation ran carries the status box inline;
    if the computation ends before its event stream connects, the hello must say so."""
    from circuitpress.serve.inject import STATUS_ID as BOX
    from circuitpress.serve.state import Snapshot

    from .test_server import get, open_events, read_event

    (tmp_path / "circuitpress.toml").write_text('[site]\ntitle = "t"\n')

    def builder() -> Snapshot:
        return Snapshot(files={"index.html": b"<body>page</body>"}, copies={})

    server = PreviewServer(tmp_path, port=0, quiet=True, watch=False, builder=builder)
    server.start()
    try:
        server.state.set_progress("analyses 3/4")
        assert f'id="{BOX}"'.encode() in get(server, "/")[2]
        server.state.set_progress(None)  # the computation ends before the page connects
        hello = read_event(open_events(server))
        assert hello["event"] == "hello" and hello["data"]["progress"] is None
    finally:
        server.stop()
