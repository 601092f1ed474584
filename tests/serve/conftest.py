"""Small prose-only sites (no models, so no torch) and helpers for the preview-server tests."""

from __future__ import annotations

import http.client
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from circuitpress.serve.server import PreviewServer


def article(title: str, body: str, *, draft: bool = False) -> str:
    flag = "draft: true\n" if draft else ""
    return (
        f"---\ntitle: {title}\nauthors: [Ada Lovelace]\npublished: 2026-01-02\n"
        f"{flag}---\n\n{body}\n"
    )


def config(base_url: str = "/") -> str:
    return f'[site]\ntitle = "Serve test"\nbase_url = "{base_url}"\nauthors = ["Ada Lovelace"]\n'


@pytest.fixture
def make_site(tmp_path: Path) -> Callable[..., Path]:
    """make_site(base_url="/", articles={slug: body}, files={rel: text}) -> the site folder."""

    def make(
        base_url: str = "/",
        articles: dict[str, str] | None = None,
        files: dict[str, str] | None = None,
    ) -> Path:
        root = tmp_path / "site"
        texts = {"circuitpress.toml": config(base_url), "references.bib": ""}
        for slug, body in (
            articles or {"hello": "Hello, reader.\n\n## First section\n\nText."}
        ).items():
            texts[f"content/{slug}.md"] = article(slug.replace("-", " ").title(), body)
        texts.update(files or {})
        for rel, text in texts.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        (root / "static").mkdir(exist_ok=True)
        return root

    return make


@pytest.fixture
def running() -> Iterator[Callable[..., PreviewServer]]:
    """running(site, **kwargs) -> a started PreviewServer on a free port, stopped afterwards."""
    servers: list[PreviewServer] = []

    def start(site: Path, **kwargs: object) -> PreviewServer:
        server = PreviewServer(site, port=0, quiet=True, **kwargs)  # type: ignore[arg-type]
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


def get(
    server: PreviewServer, target: str, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """A request with the target sent exactly as given (urllib would normalise some of it)."""
    host, port = server._httpd.server_address[:2]  # noqa: SLF001 - the test needs the socket
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
