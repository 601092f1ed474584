"""Markdown with directives, roles, citations, math and footnotes (markdown-it-py + plugins).

The build calls `Markup(config, registry).parse(file, source, plan)` for every page before any
model runs, and `Markup.render(page, services)` afterwards. See docs/ARCHITECTURE.md.

The names below are imported on first use: a module that needs only `markup.refs` (the build's
planner) does not load markdown-it, latex2mathml and bibtexparser with it, so an up-to-date
build, which parses nothing, starts faster.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from circuitpress.markup.context import PageRenderContext
    from circuitpress.markup.frontmatter import FrontMatter
    from circuitpress.markup.page import (
        Footnote,
        Markup,
        ParsedPage,
        PlanFactory,
        Reference,
        RenderedPage,
        TocEntry,
        slug_of,
    )

_WHERE = {
    "PageRenderContext": "context",
    "FrontMatter": "frontmatter",
    "Footnote": "page",
    "Markup": "page",
    "ParsedPage": "page",
    "PlanFactory": "page",
    "Reference": "page",
    "RenderedPage": "page",
    "TocEntry": "page",
    "slug_of": "page",
}

__all__ = [
    "Footnote",
    "FrontMatter",
    "Markup",
    "PageRenderContext",
    "ParsedPage",
    "PlanFactory",
    "Reference",
    "RenderedPage",
    "TocEntry",
    "slug_of",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
