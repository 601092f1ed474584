"""What the preview server keeps between builds of one site in one process.

Inputs are compared by content: an unchanged page is neither parsed nor rendered again,
results already in memory are not read from the cache again, and markup and theme objects
survive while the config, bibliographies and theme overrides are unchanged.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from circuitpress.build.plan import PagePlanner
from circuitpress.config import SiteConfig
from circuitpress.paths import walk_files
from circuitpress.requests import Result

if TYPE_CHECKING:
    from circuitpress.extensions import Registry
    from circuitpress.markup import Markup, ParsedPage
    from circuitpress.render.html import Theme


class Tools(NamedTuple):
    """Objects that cost more to set up than a short page costs to build."""

    registry: Registry
    markup: Markup
    theme: Theme


@dataclass
class BuildMemo:
    signature: str = ""  # input_signature() of the build that made `tools`
    tools: Tools | None = None
    parsed: dict[str, tuple[str, ParsedPage, PagePlanner]] = field(default_factory=dict)
    rendered: dict[str, tuple[str, str, dict[str, bytes]]] = field(default_factory=dict)
    results: dict[str, Result] = field(default_factory=dict)
    parses: int = 0  # counters, for tests and the benchmark
    renders: int = 0


def content_hash(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
    return digest.hexdigest()


def input_signature(config: SiteConfig) -> str:
    """Everything besides a page's own text that parsing or rendering it depends on."""
    from circuitpress import __version__

    root = config.root
    parts: list[bytes | str] = [__version__, config.path.read_bytes()]
    for path in _bib_files(root):
        parts += [path.relative_to(root).as_posix(), _bytes(path)]
    overrides = root / "themes"
    if overrides.is_dir():
        # The build's own walk: linked override folders count (rglob does not follow them).
        for path in walk_files(root, overrides, skip=()):
            parts += [path.relative_to(root).as_posix(), _bytes(path)]
    static = root / "static"
    if static.is_dir():  # {figure} checks that its image exists
        parts += sorted(p.relative_to(static).as_posix() for p in static.rglob("*"))
    return content_hash(*parts)


def _bib_files(root: Path) -> list[Path]:
    """Every .bib of the site, as `rglob` finds them (links to folders not followed), but
    never looking inside `_site/`, `.circuitpress/` or `.git/`, which hold no input: walking a
    300-page output only to leave out what it found cost 6 ms of every build."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _NOT_INPUTS]
        found += [Path(dirpath, name) for name in filenames if name.endswith(".bib")]
    return sorted(found)


_NOT_INPUTS = {"_site", ".circuitpress", ".git"}


def _bytes(path: Path) -> bytes:
    """A file's bytes for the signature; a broken link reads as nothing here, since the build
    reports it as a located error where the file is used."""
    try:
        return path.read_bytes()
    except OSError:
        return b""
