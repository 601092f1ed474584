"""The page's render context: the build's services plus what only markup knows.

The build supplies `RenderServices` (results, asset and page URLs, warnings); markup wraps it
into the full `RenderContext` that directives see, adding the page's figure numbers, its
citations, and how to turn a caption's Markdown into HTML.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence, cast

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token

from circuitpress.extensions import DirectiveCall, RenderServices
from circuitpress.markup.resolve import Resolver
from circuitpress.markup.state import PageEnv

if TYPE_CHECKING:
    from circuitpress.requests import Request, Result, UnitRef

RENDER_KEY = "cp_render"


def html_renderer(md: MarkdownIt) -> RendererHTML:
    """`md.renderer` as the RendererHTML every parser of circuitpress uses (markdown-it types it
    as a protocol without `renderInline`)."""
    return cast(RendererHTML, md.renderer)


class PageRenderContext:
    """The RenderContext of one page: the build's services plus captions, numbers, Markdown."""

    def __init__(
        self, services: RenderServices, page: PageEnv, md: MarkdownIt, env: dict[str, Any]
    ):
        self.services, self.page, self.md, self.env = services, page, md, env
        self.file = services.file
        self.current: DirectiveCall | None = None  # the directive being rendered
        self._bodies: dict[str, list[Token]] | None = None

    # -- delegated to the build ----------------------------------------------------------------

    def result(self, request: "Request") -> "Result":
        return self.services.result(request)

    def has_result(self, request: "Request") -> bool:
        return self.services.has_result(request)

    def image_url(self, array: Any, *, name: str = "fig") -> str:
        return self.services.image_url(array, name=name)

    def asset_url(self, data: bytes, ext: str, *, name: str = "asset") -> str:
        return self.services.asset_url(data, ext, name=name)

    def url(self, site_path: str) -> str:
        return self.services.url(site_path)

    def unit_url(self, ref: "UnitRef") -> str | None:
        return self.services.unit_url(ref)

    def thumbnail_url(self, ref: "UnitRef") -> str | None:
        return self.services.thumbnail_url(ref)

    def warn(self, message: str, line: int, hint: str | None = None) -> None:
        self.services.warn(message, line, hint)

    # -- markup's own --------------------------------------------------------------------------

    def figure_number(self, label: str | None) -> int | None:
        if label is None:
            return self.current.data.get("_figure_number") if self.current else None
        return self.page.label_numbers.get(label)

    def caption(self, call: DirectiveCall) -> str:
        number = call.data.get("_figure_number")
        body = self.tokens_html(call.data.get("_body_tokens", []), inline=True)
        if number is None and not body:
            return ""
        if number is None:
            return f"<figcaption>{body}</figcaption>"
        if not body:  # a labelled figure without a caption: just its number
            return f'<figcaption><span class="cp-fignum">Figure {number}</span></figcaption>'
        return f'<figcaption><span class="cp-fignum">Figure {number}:</span> {body}</figcaption>'

    def markdown(self, source: str, *, inline: bool = False) -> str:
        """Author Markdown as HTML. A directive's own body was parsed (and planned) with the
        page; any other text is parsed now, with citations and numbers of this page."""
        tokens = self._parsed(source)
        if tokens is None:
            resolver = Resolver(self.page, self.env, None)
            line = self.current.line if self.current else 1
            if inline:
                tokens = self.md.parseInline(source, self.env)
                resolver.run_inline(tokens[0].children or [], line)
            else:
                tokens = self.md.parse(source, self.env)
                resolver.run(tokens, offset=line - 1, top=False)
        return self.tokens_html(tokens, inline=inline)

    def tokens_html(self, tokens: Sequence[Token], *, inline: bool = False) -> str:
        """HTML of tokens; with inline=True a lone paragraph loses its <p> (for captions)."""
        if inline and len(tokens) == 1 and tokens[0].type == "inline":
            return html_renderer(self.md).renderInline(
                tokens[0].children or [], self.md.options, self.env
            )
        if (
            inline
            and len(tokens) == 3
            and tokens[0].type == "paragraph_open"
            and tokens[1].type == "inline"
        ):
            return html_renderer(self.md).renderInline(
                tokens[1].children or [], self.md.options, self.env
            )
        return self.md.renderer.render(list(tokens), self.md.options, self.env).strip()

    def _parsed(self, source: str) -> list[Token] | None:
        if self.current is not None and source == self.current.body:
            return list(self.current.data.get("_body_tokens", []))
        if self._bodies is None:
            self._bodies = {
                c.body: c.data.get("_body_tokens", []) for c in reversed(self.page.calls)
            }
        return self._bodies.get(source)
