"""Markdown with directives, roles, citations, math and footnotes (markdown-it-py + plugins).

The build calls `Markup(config, registry).parse(file, source, plan)` for every page before any
model runs, and `Markup.render(page, services)` afterwards. See docs/ARCHITECTURE.md.
"""

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
