"""The path rules of the preview server, without a server."""

from __future__ import annotations

import pytest

from circuitpress.serve.paths import content_type, inside, safe_relative

ESCAPES = [
    "/../etc/passwd",
    "/a/../../etc/passwd",
    "/%2e%2e/etc/passwd",
    "/%2E%2E/%2e%2e/etc/passwd",
    "/.%2e/etc/passwd",
    "/a%2f..%2f..%2fetc%2fpasswd",
    "/a%2F..%2Fetc",
    "/%252e%252e/etc/passwd",
    "/%25252e%25252e/etc/passwd",
    "/..\\etc\\passwd",
    "/a%5c..%5cetc",
    "/index.html%00.png",
    "/a\x00b",
    "//etc/passwd",
    "http://example.org/etc/passwd",
    "/C:/Windows/win.ini",
    "/c%3a/windows",
    "/a/.../b",
    "/a/.. /b",
    "/%c0%ae%c0%ae/etc/passwd",  # overlong UTF-8 for '.', not valid UTF-8
    "*",
]


@pytest.mark.parametrize("target", ESCAPES)
def test_escapes_are_refused(target):
    resolved = safe_relative(target, "/")
    assert resolved.path is None and resolved.redirect is None, resolved


@pytest.mark.parametrize(
    "target, path",
    [
        ("/", "index.html"),
        ("/a/", "a/index.html"),
        ("/a/b.png?x=1#frag", "a/b.png"),
        ("/assets/a%20b.css", "assets/a b.css"),
        ("/units/shapes-a/conv2/7/", "units/shapes-a/conv2/7/index.html"),
    ],
)
def test_site_paths(target, path):
    assert safe_relative(target, "/").path == path


def test_base_path():
    assert safe_relative("/sub/a/", "/sub/").path == "a/index.html"
    assert safe_relative("/sub/", "/sub/").path == "index.html"
    assert safe_relative("/", "/sub/").redirect == "/sub/"
    assert safe_relative("/sub?x", "/sub/").redirect == "/sub/?x"
    assert safe_relative("/a/", "/sub/").path is None
    assert safe_relative("/subway/", "/sub/").path is None
    assert safe_relative("/sub/../a/", "/sub/").path is None


def test_content_types():
    assert content_type("a/index.html") == "text/html; charset=utf-8"
    assert content_type("x.js").startswith("text/javascript")
    assert content_type("x.css").startswith("text/css")
    assert content_type("f.svg") == "image/svg+xml"
    assert content_type("f.png") == "image/png"
    assert content_type("feed.xml").startswith("application/xml")
    assert content_type("noext") == "application/octet-stream"


def test_inside_follows_links(tmp_path):
    root = tmp_path / "site"
    (root / "static").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("secret")
    (root / "static" / "ok.txt").write_text("ok")
    (root / "static" / "out.txt").symlink_to(tmp_path / "secret.txt")
    assert inside(root / "static" / "ok.txt", root.resolve())
    assert not inside(root / "static" / "out.txt", root.resolve())
    assert not inside(root / "static" / "missing.txt", root.resolve())
