"""Stand-ins with the shape of markup's FrontMatter and RenderedPage (docs/ARCHITECTURE.md).

The theme only reads attributes, so these keep the render tests independent of markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from circuitpress.config import Author, BuildSettings, SiteConfig, SiteSettings


@dataclass
class FrontMatter:
    title: str = "Zoom In: An Introduction to Circuits"
    description: str = (
        "By studying the connections between neurons, we can find meaningful algorithms."
    )
    authors: tuple[Author, ...] = (
        Author("Chris Olah", "https://colah.github.io", "OpenAI", "https://openai.com"),
        Author("Nick Cammarata", None, "OpenAI", "https://openai.com"),
        Author("Ludwig Schubert", None, None, None),
    )
    published: date | None = date(2020, 3, 10)
    updated: date | None = None
    doi: str | None = "10.23915/distill.00024.001"
    series: str | None = None
    bibliography: tuple[str, ...] = ()
    model: str | None = None
    draft: bool = False
    updates: tuple[tuple[date, str], ...] = ()
    license: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TocEntry:
    level: int
    id: str
    html: str


@dataclass
class Footnote:
    id: str
    number: int
    html: str
    backrefs: tuple[str, ...]


@dataclass
class Reference:
    key: str
    number: int
    id: str
    html: str


@dataclass
class RenderedPage:
    body_html: str = (
        '<h2 id="features">Features</h2>\n'
        '<p>Curve detectors<a class="cp-cite" href="#ref-olah2020" data-refs="ref-olah2020">[1]</a>'
        ' respond to curves<sup class="cp-fn-ref" id="fnref-1"><a href="#fn-1">1</a></sup>.</p>\n'
        '<aside class="cp-aside"><p>A margin note.</p></aside>\n'
        '<h3 id="curves">Curves</h3>\n<p><math display="block"><mi>x</mi></math></p>\n'
    )
    toc: list[TocEntry] = field(
        default_factory=lambda: [
            TocEntry(2, "features", "Features"),
            TocEntry(3, "curves", "Curves"),
        ]
    )
    footnotes: list[Footnote] = field(
        default_factory=lambda: [
            Footnote("fn-1", 1, "<p>Curves in <em>many</em> orientations.</p>", ("fnref-1",))
        ]
    )
    references: list[Reference] = field(
        default_factory=lambda: [
            Reference(
                "olah2020", 1, "ref-olah2020", "Olah, C. et al. <em>Zoom In</em>. Distill, 2020."
            )
        ]
    )
    bibtex: str = "@article{olah2020zoom,\n  title = {Zoom In: An Introduction to Circuits},\n}"


def make_config(root: Path, **site: Any) -> SiteConfig:
    settings = SiteSettings(
        **{"title": "Circuits Thread", "description": "Articles about circuits.", **site}
    )
    root.mkdir(parents=True, exist_ok=True)
    return SiteConfig(
        root=root, path=root / "circuitpress.toml", site=settings, build=BuildSettings()
    )
