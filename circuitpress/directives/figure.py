"""`{figure}`, `{note}` and `{aside}`: plain figures, callout boxes and margin notes.

    :::{figure} curves/overview.png
    :name: fig-overview
    :alt: Curve detectors of five models, side by side
    Curve detectors in every model we trained.
    :::

The image path is relative to the site's `static/` folder (copied to `static/` in the output)
or to the page's own folder (then written as a content-addressed asset); a path starting with
`/` (`/static/curves.png`, as MyST writes it) is read from the site folder first, then from
`static/`. Any of them may be a link, as long as it stays inside the site folder
(circuitpress/paths.py, `site_image`). A full `https://` URL
is used as is, though a page that needs the network at view time is discouraged.
"""

from __future__ import annotations

import html
import re
from pathlib import Path, PurePosixPath
from typing import ClassVar

from circuitpress.extensions import (
    Directive,
    DirectiveCall,
    Option,
    PlanContext,
    Registry,
    RenderContext,
    text,
)
from circuitpress.paths import site_file, site_image

IMAGE_TYPES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".avif"}
_SIZE = re.compile(r"^\d+(\.\d+)?(px|%|em|rem)?$")


def _size(value: str) -> str:
    v = value.strip()
    if not _SIZE.match(v):
        raise ValueError(f"expected a CSS size such as 480px or 60%, got '{value}'")
    return v if not v[-1].isdigit() else v + "px"


class Figure(Directive):
    name = "figure"
    argument = "required"
    argument_help = "IMAGE (relative to static/ or to the page)"
    options: ClassVar[dict[str, Option]] = {
        "alt": Option(text, default="", help="text for readers who cannot see the image"),
        "width": Option(_size, help="display width, e.g. 480px or 60%"),
    }

    def plan(self, call: DirectiveCall, ctx: PlanContext) -> None:
        target = call.argument.strip()
        if re.match(r"^https?://", target):
            call.data["src"] = ("url", target)
            return
        suffix = PurePosixPath(target).suffix.lower()
        if suffix not in IMAGE_TYPES:
            raise call.error(
                f"'{target}' is not an image",
                hint="use one of " + ", ".join(sorted(IMAGE_TYPES)),
            )
        root = ctx.site_root
        used = f"{call.file}:{call.line}"
        # The page's context remembers what it found for the build (markup.page); any other
        # PlanContext looks each time.
        find = getattr(ctx, "site_image", None)
        kind, path = find(target, used) if find else site_image(root, target, call.file, used=used)
        if kind == "static":
            call.data["src"] = ("static", path.as_posix())
        else:
            call.data["src"] = ("file", str(path))
            call.data["site_root"] = str(root)

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        kind, where = call.data["src"]
        if kind == "static":
            src = ctx.url(where)
        elif kind == "file":
            # Checked again: the preview server re-renders a page whose text is unchanged
            # without planning it again, and the image may have become a link since.
            path = Path(where)
            real = site_file(Path(call.data["site_root"]), path, used=f"{call.file}:{call.line}")
            src = ctx.asset_url(real.read_bytes(), path.suffix.lstrip(".").lower(), name=path.stem)
        else:
            src = where
        style = f' style="width:{call.options["width"]}"' if call.options.get("width") else ""
        alt = html.escape(call.options.get("alt") or "", quote=True)
        return (
            f'<figure class="cp-figure"><img src="{html.escape(src, quote=True)}" alt="{alt}"'
            f' loading="lazy"{style}>{ctx.caption(call)}</figure>'
        )


class Note(Directive):
    """A callout box; the optional argument is its title."""

    name = "note"
    argument = "optional"
    numbered = False

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        title = (
            f'<p class="cp-note-title">{ctx.markdown(call.argument, inline=True)}</p>'
            if call.argument
            else ""
        )
        return f'<div class="cp-note" role="note">{title}{ctx.markdown(call.body)}</div>'


class Aside(Directive):
    """A margin note, in the gutter column beside the text (below it on narrow screens)."""

    name = "aside"
    argument = "none"
    numbered = False
    layout = "gutter"  # markup's default for `:layout:`

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        return f'<aside class="cp-aside">{ctx.markdown(call.body)}</aside>'


DIRECTIVES = [Figure, Note, Aside]


def register(registry: Registry) -> None:
    """Entry point `figure` of the group `circuitpress.directives` (pyproject.toml)."""
    for directive in DIRECTIVES:
        registry.add_directive(directive)
