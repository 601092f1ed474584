"""Pieces the figure directives share: one caption per figure, and the models a page names.

Not a directive module (no `register`; pyproject.toml names no entry point for it).

A figure has one caption, the author's. What the build knows about the figure (the unit, the
number of examples, the variants a tuning point is the best of) goes into that caption as a
line of small type (`<span class="cp-figure-facts">`), or is the whole caption when the author
wrote none. A page that names units of several models labels every unit with its model
(chips of `shapes-a` and `shapes-b` must not look the same); `page_models` collects the models
while the page is planned, and the collection is complete before anything renders.
"""

from __future__ import annotations

import weakref
from typing import Iterable

from circuitpress.extensions import DirectiveCall, PlanContext, RenderContext

FACTS = "cp-figure-facts"

# One set per page being planned, keyed by the page's plan context (one per parse of a page).
# Each role and directive keeps a reference to its page's set in its own data, so the set lives
# as long as the parsed page, and the context may go once parsing ends.
_MODELS: weakref.WeakKeyDictionary[object, set[str]] = weakref.WeakKeyDictionary()


def page_models(ctx: PlanContext, models: Iterable[str] = ()) -> set[str]:
    """The set of models the page being planned names, with `models` added. Returns the live
    set: read it at render time, when every directive and role of the page has planned."""
    try:
        found = _MODELS.setdefault(ctx, set())
    except TypeError:  # a context that cannot be weakly referenced: this call's models only
        found = set()
    found.update(models)
    return found


def caption_with_facts(call: DirectiveCall, ctx: RenderContext, facts: str) -> str:
    """The figure's one `<figcaption>`: "Figure N:", the author's caption, then `facts` (HTML
    the directive made, escaped where it needs to be) in small type. Only the facts when the
    author wrote no caption."""
    line = f'<span class="{FACTS}">{facts}</span>' if facts else ""
    caption = ctx.caption(call)
    if not caption:
        return f"<figcaption>{line}</figcaption>" if line else ""
    if not line:
        return caption
    end = caption.rfind("</figcaption>")
    if end < 0:  # a caption from another markup implementation: keep both, facts second
        return caption + f"<figcaption>{line}</figcaption>"
    return f"{caption[:end]} {line}{caption[end:]}"
