"""Turning a raw request target into a site-relative path, or refusing it.

The preview server answers from an in-memory site (a dict of paths), so a path can only name
something the build produced; still, every trick that tries to climb out of the site (`..`,
`%2e%2e`, an encoded `/` or `\\`, double encoding, NUL, absolute or drive paths) is refused up
front, so the rule does not depend on how the site happens to be stored.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

# Percent-escapes that have no business in a page URL once decoded: an escaped '/', '\\', NUL,
# '.', or a second '%' layer (double encoding such as %252e).
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c|00)", re.IGNORECASE)
_LEFTOVER_ESCAPE = re.compile(r"%(2e|2f|5c|00|25)", re.IGNORECASE)
_DRIVE = re.compile(r"^[a-z]:", re.IGNORECASE)


@dataclass(frozen=True)
class Resolved:
    """What a request target names: a site path, a redirect, or nothing (404)."""

    path: str | None = None  # site-relative, e.g. "a/index.html"
    redirect: str | None = None  # absolute URL path to redirect to


NOT_FOUND = Resolved()


def split_target(target: str) -> tuple[str, str]:
    """('/a/b', '?q') from '/a/b?q#f' (browsers never send the fragment, clients might)."""
    target = target.split("#", 1)[0]
    path, sep, query = target.partition("?")
    return path, sep + query


def safe_relative(target: str, base_path: str) -> Resolved:
    """The site-relative path a request target names under `base_path`, or NOT_FOUND.

    `base_path` starts and ends with '/'. A directory URL ('a/') names 'a/index.html'. The
    result never contains '..', '.', empty segments, backslashes or control characters.
    """
    raw, query = split_target(target)
    if not raw.startswith("/") or raw.startswith("//"):
        return NOT_FOUND  # absolute-form targets ('http://…'), network paths, '*'
    if (
        "\\" in raw
        or _ENCODED_SEPARATOR.search(raw)
        or any(ord(c) < 32 or c == "\x7f" for c in raw)
    ):
        return NOT_FOUND
    try:
        decoded = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        return NOT_FOUND
    if "\\" in decoded or "\x00" in decoded or _LEFTOVER_ESCAPE.search(decoded):
        return NOT_FOUND
    if any(ord(c) < 32 or c == "\x7f" for c in decoded):
        return NOT_FOUND
    if decoded + "/" == base_path or (decoded == "/" and base_path != "/"):
        return Resolved(redirect=base_path + query)
    if not decoded.startswith(base_path):
        return NOT_FOUND
    rel = decoded[len(base_path) :]
    if rel == "":
        return Resolved(path="index.html")
    segments = rel.split("/")
    directory = segments[-1] == ""
    if directory:
        segments = segments[:-1]
    for segment in segments:
        # '', '.', '..', and what Windows reads as '..' ('.. ', '...') never name a file.
        if segment.strip(" .") == "":
            return NOT_FOUND
    if _DRIVE.match(segments[0]):
        return NOT_FOUND
    rel = "/".join(segments)
    return Resolved(path=rel + "/index.html" if directory else rel)


def inside(path: Path, root: Path) -> bool:
    """True when `path`, with every symbolic link resolved, lies inside `root`."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    return real == root or root in real.parents


_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".xml": "application/xml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".bib": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".wasm": "application/wasm",
    ".pdf": "application/pdf",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".webmanifest": "application/manifest+json",
}


def content_type(path: str) -> str:
    """The Content-Type of a site path; the table wins over the platform's mimetypes database,
    which differs between machines (e.g. .js as application/javascript or text/plain)."""
    suffix = Path(path).suffix.lower()
    if suffix in _TYPES:
        return _TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path, strict=False)
    if guessed is None:
        return "application/octet-stream"
    return guessed + ("; charset=utf-8" if guessed.startswith("text/") else "")
