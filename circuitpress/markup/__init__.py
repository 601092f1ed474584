"""Markdown with directives, roles, citations, math and footnotes (markdown-it-py + plugins).

The build calls `Markup(config, registry).parse(file, source, plan)` for every page before any
model runs, and `Markup.render(page, services)` afterwards. See docs/ARCHITECTURE.md.
"""

from circuitpress.markup.frontmatter import FrontMatter
from circuitpress.markup.page import (
    Footnote,
    Markup,
    PlanFactory,
    ParsedPage,
    Reference,
    RenderedPage,
    TocEntry,
    slug_of,
)
from circuitpress.markup.context import PageRenderContext

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
