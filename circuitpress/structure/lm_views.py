"""HTML of a language model's unit: token examples (shared by `{examples}` and unit pages) and
the body of a head's or neuron's unit page (its picture on the probe tokens, a head's scores,
its top token contexts). Every number is text or a `data-*` attribute: readable with JS off."""

from __future__ import annotations

import html
from typing import Any

from circuitpress.extensions import PendingResult, RenderServices
from circuitpress.render.numbers import fmt, shared
from circuitpress.requests import (
    HEAD_SCORES,
    ExamplesRequest,
    FeatureVisRequest,
    HeadScoresRequest,
    Result,
    UnitRef,
)

e = html.escape
POSITIVE = "255, 120, 0"  # activations: orange


def shade(value: float, top: float, rgb: str = POSITIVE) -> str:
    """Inline background colour with `value / top` as its alpha (0 for non-positive)."""
    alpha = 0.0 if top <= 0 else max(0.0, min(1.0, value / top))
    return f"background-color: rgba({rgb}, {alpha:.3f})"


def token_text(token: str) -> str:
    # Whitespace stays visible: a space as a middle dot, a newline as a return sign.
    return e(token.replace(" ", "·").replace("\n", "⏎").replace("\t", "⇥")) or "∅"


def token_examples(result: Result, *, context: int, limit: int) -> str:
    """The top contexts as lines of tokens, each a span with `data-activation`, shaded by it;
    the strongest token is marked and its value written at the line's start."""
    contexts = list(result.data.get("contexts", []))[:limit]
    top = float(result.data.get("max_abs", 0.0)) or 1.0
    values = shared([float(c["activations"][c["focus"]]) for c in contexts])
    rows = []
    for c, value in zip(contexts, values, strict=True):
        focus = int(c["focus"])
        lo, hi = max(0, focus - context), min(len(c["tokens"]), focus + context + 1)
        spans = []
        for i in range(lo, hi):
            act = float(c["activations"][i])
            cls = "cp-token cp-token-max" if i == focus else "cp-token"
            spans.append(
                f'<span class="{cls}" data-activation="{act:.4g}" '
                f'style="{shade(act, top)}" title="{e(fmt(act))}">'
                f"{token_text(c['tokens'][i])}</span>"
            )
        rows.append(
            f'<li class="cp-token-example" data-window="{int(c["window"])}">'
            f'<span class="cp-example-value">{e(value)}</span>'
            f'<span class="cp-tokens">{"".join(spans)}</span></li>'
        )
    return f'<ol class="cp-token-examples">{"".join(rows)}</ol>'


def unit_section(
    ref: UnitRef, ctx: RenderServices, examples: ExamplesRequest, picture: FeatureVisRequest
) -> str | None:
    """The body of a language model's unit page, or None for any other model's unit (its
    examples are images). Raises PendingResult while a result is not computed."""
    result = ctx.result(examples)
    if not result.data.get("tokens"):
        return None
    parts = []
    vis = ctx.result(picture)
    image = vis.arrays["images"][0]
    url = ctx.image_url(image, name=f"{ref.layer}-{ref.unit_text}-probe")
    size = int(image.shape[0]) * 3
    what = (
        "its attention pattern on a random token sequence repeated twice (query tokens down, "
        "key tokens across, BOS first)"
        if ref.head
        else "its activation on 16 random token sequences repeated twice (one row each)"
    )
    parts.append(
        '<section class="l-page cp-unit-section" aria-labelledby="cp-unit-probe">'
        '<h2 id="cp-unit-probe">On repeated random tokens</h2>'
        f'<figure class="cp-unit-vis-main"><img class="cp-pixelated" src="{e(url)}" '
        f'width="{size}" height="{size}" alt="{e(f"{ref}: {what}")}">'
        f"<figcaption>The unit’s picture: {e(what)}.</figcaption></figure>"
        + (_scores(ref, ctx) if ref.head else "")
        + "</section>"
    )
    count = len(result.data.get("contexts", []))
    parts.append(
        '<section class="l-page cp-unit-section" aria-labelledby="cp-unit-examples">'
        '<h2 id="cp-unit-examples">Dataset examples</h2>'
        f'<p class="cp-unit-note">The {count} token windows of the dataset sample (of '
        f"{int(result.data.get('windows', 0))}) where the unit is strongest, 8 tokens each side "
        "of its strongest token, every token shaded by the unit’s activation"
        + (" (the norm of what the head writes there)" if ref.head else "")
        + ".</p>"
        + token_examples(result, context=8, limit=count)
        + "</section>"
    )
    return "".join(parts)


def _scores(ref: UnitRef, ctx: RenderServices) -> str:
    try:
        result = ctx.result(HeadScoresRequest(ref.model))
    except (PendingResult, RuntimeError, KeyError):
        return ""
    layer = list(result.data["layers"]).index(ref.layer)
    head = ref.terms[0][0]
    values = [float(result.data["scores"][s][layer][head]) for s in HEAD_SCORES]
    texts = shared(values)
    rows = "".join(
        f'<tr><th scope="row">{e(name)}</th><td data-score="{v:.4f}">{e(t)}</td></tr>'
        for name, v, t in zip(HEAD_SCORES, values, texts, strict=True)
    )
    return (
        '<table class="cp-heads cp-head-scores"><caption>head scores (TransformerLens '
        "head_detector, “mul”)</caption>"
        f"<tbody>{rows}</tbody></table>"
    )


def unit_page_extra(ref: UnitRef) -> list[Any]:
    """Requests a language model's head page adds to the standard ones: its model's scores."""
    return [HeadScoresRequest(ref.model)] if ref.head else []
