"""The preview server over real HTTP, on real (prose-only) builds."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from circuitpress.errors import UserError
from circuitpress.serve.inject import EVENTS_PATH, OVERLAY_ID
from circuitpress.serve.state import Snapshot

from ..conftest import default_sigint
from .conftest import article, get, wait_until

TRAVERSALS = [
    "/../circuitpress.toml",
    "/%2e%2e/circuitpress.toml",
    "/%2E%2E%2fcircuitpress.toml",
    "/static/..%2f..%2fcircuitpress.toml",
    "/%252e%252e/circuitpress.toml",
    "/static/..\\..\\circuitpress.toml",
    "/index.html%00",
    "/static/%2e%2e/%2e%2e/etc/passwd",
    "//etc/passwd",
    "/static/outside.txt",  # a symbolic link to a file outside the site
    "/static/linked/secret.txt",  # a symbolic link to a folder outside the site
]


def test_serves_the_site_with_types_and_no_store(make_site, running):
    site = make_site()
    (site / "static" / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    server = running(site)
    status, headers, body = get(server, "/hello/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert b"Hello, reader." in body
    assert body.count(b"new EventSource(") == 1 and body.index(b"EventSource") < body.rindex(
        b"</body>"
    )
    status, headers, body = get(server, "/static/logo.svg")
    assert (status, headers["content-type"]) == (200, "image/svg+xml")
    assert b"EventSource" not in body
    status, headers, _ = get(server, "/feed.xml")
    assert status == 200 and "xml" in headers["content-type"]
    css = [p for p in server.state.peek().snapshot.files if p.endswith(".css")][0]
    status, headers, body = get(server, "/" + css)
    assert (
        status == 200
        and headers["content-type"].startswith("text/css")
        and b"EventSource" not in body
    )


def test_head_and_other_methods(make_site, running):
    server = running(make_site())
    status, headers, body = get(server, "/hello/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 100
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"):
        status, headers, _ = get(server, "/hello/", method=method)
        assert status == 405, method
        assert headers["allow"] == "GET, HEAD"


def test_missing_page_is_404_with_the_sites_404_page(make_site, running):
    server = running(make_site())
    status, _, body = get(server, "/nope/")
    assert status == 404
    assert b"EventSource" in body  # the 404 page reloads too, once the page exists


def test_directory_without_slash_redirects(make_site, running):
    server = running(make_site())
    status, headers, _ = get(server, "/hello?x=1")
    assert status == 302 and headers["location"] == "/hello/?x=1"


def test_base_path(make_site, running):
    server = running(make_site(base_url="https://example.org/proj/"))
    assert server.url.endswith("/proj/")
    assert get(server, "/proj/hello/")[0] == 200
    assert get(server, "/hello/")[0] == 404
    status, headers, _ = get(server, "/")
    assert status == 302 and headers["location"] == "/proj/"
    body = get(server, "/proj/hello/")[2]
    assert b'href="/proj/' in body


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_attempts_get_404(make_site, running, tmp_path, target):
    site = make_site()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET")
    (site / "static" / "outside.txt").symlink_to(outside / "secret.txt")
    (site / "static" / "linked").symlink_to(outside, target_is_directory=True)
    (site / "static" / "fine.txt").write_text("fine")
    server = running(site)
    assert get(server, "/static/fine.txt")[0] == 200
    status, _, body = get(server, target)
    assert status == 404, target
    assert b"TOP SECRET" not in body and b"[site]" not in body


def test_requests_wait_for_a_running_rebuild(make_site, running):
    """A request that arrives during a rebuild gets the new site, never the old or a half one."""
    site = make_site()
    release = threading.Event()
    started = threading.Event()
    version = {"n": 1}

    def builder() -> Snapshot:
        n = version["n"]
        if n > 1:
            started.set()
            release.wait(20)
        return Snapshot(files={"index.html": f"<body>version {n}</body>".encode()}, copies={})

    server = running(site, builder=builder, watch=False)
    assert b"version 1" in get(server, "/")[2]
    version["n"] = 2
    server.changes.put(["content/hello.md"])
    assert started.wait(10)
    answers: list[bytes] = []
    waiter = threading.Thread(target=lambda: answers.append(get(server, "/")[2]))
    waiter.start()
    time.sleep(0.4)
    assert answers == [], "a request was answered while the rebuild was running"
    release.set()
    waiter.join(10)
    assert len(answers) == 1 and b"version 2" in answers[0]


def test_edit_rebuilds_and_events_announce_it(make_site, running):
    site = make_site()
    server = running(site)
    first = get(server, "/hello/")[2]
    events = open_events(server)
    hello = read_event(events)
    assert hello["event"] == "hello" and hello["data"]["message"] is None
    assert f'"{hello["data"]["generation"]}"'.encode() in first
    (site / "content" / "hello.md").write_text(article("Hello", "Edited prose."))
    change = read_event(events)
    assert change["event"] == "reload"
    assert change["data"]["generation"] != hello["data"]["generation"]
    assert b"Edited prose." in get(server, "/hello/")[2]


def test_build_error_overlay_and_recovery(make_site, running, capsys):
    site = make_site()
    server = running(site)
    events = open_events(server)
    read_event(events)
    good = (site / "content" / "hello.md").read_text()
    (site / "content" / "hello.md").write_text("---\ntitle: [unclosed\n---\nBroken.\n")
    error = read_event(events)
    assert error["event"] == "builderror"
    assert error["data"]["message"].startswith("content/hello.md:")
    assert error["data"]["message"] in capsys.readouterr().err  # the one line, in the terminal
    status, _, body = get(server, "/hello/")  # a page loaded while broken: last good + overlay
    assert status == 200 and b"Hello, reader." in body and OVERLAY_ID.encode() in body
    assert b"content/hello.md:" in body
    (site / "content" / "hello.md").write_text(good.replace("Hello, reader.", "Fixed again."))
    assert read_event(events)["event"] == "reload"
    body = get(server, "/hello/")[2]
    assert b"Fixed again." in body and f'id="{OVERLAY_ID}"'.encode() not in body


def test_first_build_broken_then_fixed(make_site, running):
    site = make_site(files={"circuitpress.toml": "[site\n"})
    server = running(site)
    status, _, body = get(server, "/anything")
    assert status == 500 and b"circuitpress.toml:" in body and OVERLAY_ID.encode() in body
    builds = server.builds
    (site / "circuitpress.toml").write_text('[site]\ntitle = "Now fine"\n')
    assert server.wait_for_builds(builds + 1)
    assert wait_until(lambda: get(server, "/hello/")[0] == 200)


def test_ignores_editor_temp_files_and_output(make_site, running):
    site = make_site()
    server = running(site)
    builds = server.builds
    (site / "content" / ".hello.md.swp").write_text("x")
    (site / "content" / "hello.md~").write_text("x")
    (site / "_site").mkdir()
    (site / "_site" / "index.html").write_text("x")
    (site / ".circuitpress" / "cache").mkdir(parents=True)
    (site / ".circuitpress" / "cache" / "k.npz").write_text("x")
    time.sleep(0.6)
    assert server.builds == builds
    (site / "references.bib").write_text("@misc{k, title={T}, year={2020}}\n")
    assert server.wait_for_builds(builds + 1)


def test_port_in_use_is_a_user_error(make_site, running):
    server = running(make_site())
    from circuitpress.serve.server import PreviewServer

    port = server._httpd.server_address[1]  # noqa: SLF001
    with pytest.raises(UserError, match="cannot listen"):
        PreviewServer(make_site(), port=port, quiet=True).start()


def test_a_prose_rebuild_does_not_import_torch(make_site, tmp_path):
    site = make_site()
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from circuitpress.serve.server import PreviewServer
        site = Path({str(site)!r})
        server = PreviewServer(site, port=0, quiet=True).start()
        (site / "content" / "hello.md").write_text("---\\ntitle: T\\n---\\nNew words.\\n")
        ok = server.wait_for_builds(2, 30)
        server.stop()
        print("rebuilt" if ok else "no rebuild", "torch" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.split() == ["rebuilt", "False"], done.stdout + done.stderr


def open_events(server) -> http.client.HTTPResponse:
    host, port = server._httpd.server_address[:2]  # noqa: SLF001
    conn = http.client.HTTPConnection(host, port, timeout=20)
    conn.request("GET", EVENTS_PATH)
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("content-type") == "text/event-stream"
    return response


def read_event(response: http.client.HTTPResponse) -> dict:
    """The next named event (keep-alive comments and retry lines skipped)."""
    event, data = None, None
    deadline = time.monotonic() + 20
    while True:
        assert time.monotonic() < deadline, "no event within 20 s"
        line = response.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and event is not None:
            return {"event": event, "data": data}


def test_a_static_file_edit_reloads_pages(make_site, running):
    site = make_site()
    (site / "static" / "style.css").write_text("p { color: red }")
    server = running(site)
    events = open_events(server)
    read_event(events)
    (site / "static" / "style.css").write_text("p { color: blue; }")
    assert read_event(events)["event"] == "reload"
    assert get(server, "/static/style.css")[2] == b"p { color: blue; }"


def test_serve_command_prints_the_url_and_stops_on_ctrl_c(make_site):
    import re
    import signal

    site = make_site(base_url="/docs/")
    proc = subprocess.Popen(
        [sys.executable, "-m", "circuitpress", "serve", str(site), "--port", "0"],
        preexec_fn=default_sigint,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = ""
        while "Serving" not in line:
            line = proc.stdout.readline()
            assert line, "the server exited before serving"
        url = re.search(r"(http://127\.0\.0\.1:\d+/docs/)", line).group(1)
        import urllib.request

        assert b"Hello, reader." in urllib.request.urlopen(url + "hello/", timeout=10).read()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0 and "Traceback" not in out
    finally:
        proc.kill()
