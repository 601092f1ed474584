"""Rendering: the page's render context and the HTML of directives, roles and headings.

The build supplies `RenderServices` (results, asset and page URLs, warnings); markup wraps it
into the full `RenderContext` that directives see, adding what only markup knows: the page's
figure numbers, its citations, and how to turn a caption's Markdown into HTML.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any, Protocol, Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token

from circuitpress.errors import UserError
from circuitpress.extensions.registry import DirectiveCall
from circuitpress.markup.resolve import Resolver
from circuitpress.markup.state import PageEnv

if TYPE_CHECKING:
    from circuitpress.requests import Request, Result, UnitRef

RENDER_KEY = "cp_render"


class RenderServices(Protocol):
    """What the build provides for rendering one page (RenderContext minus markup's part)."""

    file: str

    def result(self, request: "Request") -> "Result": ...

    def image_url(self, array: Any, *, name: str = "fig") -> str: ...

    def asset_url(self, data: bytes, ext: str, *, name: str = "asset") -> str: ...

    def url(self, site_path: str) -> str: ...

    def unit_url(self, ref: "UnitRef") -> str | None: ...

    def thumbnail_url(self, ref: "UnitRef") -> str | None: ...

    def warn(self, message: str, line: int, hint: str | None = None) -> None: ...


class PageRenderContext:
    """The RenderContext of one page: the build's services plus captions, numbers, Markdown."""

    def __init__(self, services: RenderServices, page: PageEnv, md: MarkdownIt, env: dict[str, Any]):
        self.services, self.page, self.md, self.env = services, page, md, env
        self.file = services.file
        self.current: DirectiveCall | None = None  # the directive being rendered
        self._bodies: dict[str, list[Token]] | None = None

    # -- delegated to the build ----------------------------------------------------------------

    def result(self, request: "Request") -> "Result":
        return self.services.result(request)

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
            return self.md.renderer.renderInline(tokens[0].children or [], self.md.options, self.env)
        if (
            inline
            and len(tokens) == 3
            and tokens[0].type == "paragraph_open"
            and tokens[1].type == "inline"
        ):
            return self.md.renderer.renderInline(tokens[1].children or [], self.md.options, self.env)
        return self.md.renderer.render(list(tokens), self.md.options, self.env).strip()

    def _parsed(self, source: str) -> list[Token] | None:
        if self.current is not None and source == self.current.body:
            return list(self.current.data.get("_body_tokens", []))
        if self._bodies is None:
            self._bodies = {c.body: c.data.get("_body_tokens", []) for c in reversed(self.page.calls)}
        return self._bodies.get(source)


# -- render rules --------------------------------------------------------------------------------


def render_plugin(md: MarkdownIt) -> None:
    md.add_render_rule("cp_directive", _render_directive)
    md.add_render_rule("myst_role", _render_role)
    md.add_render_rule("heading_close", _render_heading_close)


def _context(env: dict[str, Any]) -> PageRenderContext:
    ctx = env.get(RENDER_KEY)
    if not isinstance(ctx, PageRenderContext):
        raise RuntimeError("circuitpress markup rendered without a page (use Markup.render)")
    return ctx


def _render_directive(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    ctx = _context(env)
    call: DirectiveCall = tokens[idx].meta["call"]
    directive = ctx.page.registry.directives[call.name]
    previous, ctx.current = ctx.current, call
    try:
        inner = directive.render(call, ctx)
    except UserError as exc:
        raise exc.located(call.file, call.line) from None
    finally:
        ctx.current = previous
    classes = f"cp-block l-{call.options.get('layout', 'body')}"
    if call.options.get("class"):
        classes += " " + call.options["class"]
    ident = f' id="{html.escape(call.label)}"' if call.label else ""
    return f'<div class="{classes}"{ident}>\n{inner.strip()}\n</div>\n'


def _render_role(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    ctx = _context(env)
    token = tokens[idx]
    name = token.meta["name"]
    if name == "cite":
        keys = token.meta.get("keys", [])
        numbers = ", ".join(str(ctx.page.cites[k]) for k in keys)
        refs = " ".join(f"ref-{k}" for k in keys)
        return (
            f'<a class="cp-cite" href="#ref-{html.escape(keys[0])}" data-refs="{html.escape(refs)}">'
            f"[{numbers}]</a>"
        )
    if name == "numref":
        label = token.meta["cp_label"]
        return f'<a class="cp-numref" href="#{html.escape(label)}">{html.escape(token.meta["cp_text"])}</a>'
    role = ctx.page.registry.roles[name]
    if not token.meta.get("planned"):
        # Text a directive renders on its own (e.g. a note's title) is parsed after planning:
        # a role there could not ask for the analysis it shows.
        raise UserError(
            f"role {{{name}}} cannot be used here",
            file=ctx.file,
            line=ctx.current.line if ctx.current else None,
            hint="use it in the page text or in a directive's body",
        )
    try:
        return role.render(token.content, token.meta.get("data", {}), ctx)
    except UserError as exc:
        raise exc.located(ctx.file, token.meta.get("line")) from None


def _render_heading_close(
    self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    # The self-link sits inside the heading so that it shows on hover (theme CSS) and is
    # part of the heading's own line; the TOC renders the inline content only.
    opening = tokens[idx - 2] if idx >= 2 else None
    ident = opening.attrGet("id") if opening is not None and opening.type == "heading_open" else None
    link = ""
    if ident:
        link = f' <a class="cp-anchor" href="#{html.escape(str(ident))}" aria-label="Link to this section">#</a>'
    return f"{link}</{tokens[idx].tag}>\n"
