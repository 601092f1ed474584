"""Render rules: the HTML of directives, roles and headings inside markdown-it's renderer."""

from __future__ import annotations

import html
from typing import Any, Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token

from circuitpress.errors import UserError
from circuitpress.extensions import DirectiveCall, PendingResult
from circuitpress.markup.context import RENDER_KEY, PageRenderContext

# -- render rules --------------------------------------------------------------------------------


def render_plugin(md: MarkdownIt) -> None:
    md.add_render_rule("cp_directive", _render_directive)
    md.add_render_rule("myst_role", _render_role)
    md.add_render_rule("heading_close", _render_heading_close)
    md.add_render_rule("image", _render_image)


def pending_figure(name: str, argument: str, pending: PendingResult) -> str:
    """What a figure shows while its analysis has not run: where it goes and what it will be
    (a preview fills it in when the result arrives; `check` never computes it)."""
    kind = pending.request.kind
    what = f"{{{name}}} {argument}".strip()
    return (
        f'<figure class="cp-pending" data-pending="{html.escape(kind)}">'
        f'<div class="cp-pending-box" role="status">Computing {html.escape(what)}…</div>'
        "</figure>"
    )


def _render_image(
    self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    """markdown-it's image, with a root-relative static file under the base path (resolve.py
    found it in the site folder)."""
    token = tokens[idx]
    site_path = token.meta.get("cp_site_path") if token.meta else None
    ctx = env.get(RENDER_KEY)
    if site_path is None or not isinstance(ctx, PageRenderContext):
        return str(self.image(tokens, idx, options, env))
    written = token.attrGet("src")
    token.attrSet("src", ctx.url(site_path))
    try:
        return str(self.image(tokens, idx, options, env))
    finally:  # the token is kept for the next render (the preview memoises parsed pages)
        token.attrSet("src", written or "")


def _context(env: dict[str, Any]) -> PageRenderContext:
    ctx = env.get(RENDER_KEY)
    if not isinstance(ctx, PageRenderContext):
        raise RuntimeError("circuitpress markup rendered without a page (use Markup.render)")
    return ctx


def _render_directive(
    self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    ctx = _context(env)
    call: DirectiveCall = tokens[idx].meta["call"]
    directive = ctx.page.registry.directives[call.name]
    previous, ctx.current = ctx.current, call
    try:
        inner = directive.render(call, ctx)
    except PendingResult as pending:
        inner = pending_figure(call.name, call.argument, pending)
    except UserError as exc:
        raise exc.located(call.file, call.line) from None
    finally:
        ctx.current = previous
    classes = f"cp-block l-{call.options.get('layout', 'body')}"
    if call.options.get("class"):
        classes += " " + call.options["class"]
    ident = f' id="{html.escape(call.label)}"' if call.label else ""
    return f'<div class="{classes}"{ident}>\n{inner.strip()}\n</div>\n'


def _render_role(
    self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    ctx = _context(env)
    token = tokens[idx]
    name = token.meta["name"]
    if name == "cite":
        keys = token.meta.get("keys", [])
        numbers = ", ".join(str(ctx.page.cites[k]) for k in keys)
        refs = " ".join(f"ref-{k}" for k in keys)
        return (
            f'<a class="cp-cite" href="#ref-{html.escape(keys[0])}" '
            f'data-refs="{html.escape(refs)}">'
            f"[{numbers}]</a>"
        )
    if name == "numref":
        label = token.meta["cp_label"]
        return (
            f'<a class="cp-numref" href="#{html.escape(label)}">'
            f"{html.escape(token.meta['cp_text'])}</a>"
        )
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
    except PendingResult:
        return f'<span class="cp-pending-text">{html.escape(token.content)}</span>'
    except UserError as exc:
        raise exc.located(ctx.file, token.meta.get("line")) from None


def _render_heading_close(
    self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    # The self-link sits inside the heading so that it shows on hover (theme CSS) and is
    # part of the heading's own line; the TOC renders the inline content only.
    opening = tokens[idx - 2] if idx >= 2 else None
    ident = (
        opening.attrGet("id") if opening is not None and opening.type == "heading_open" else None
    )
    link = ""
    if ident:
        link = (
            f' <a class="cp-anchor" href="#{html.escape(str(ident))}" '
            f'aria-label="Link to this section">#</a>'
        )
    return f"{link}</{tokens[idx].tag}>\n"
