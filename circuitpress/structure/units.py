"""Unit pages: what every mentioned unit gets, like OpenAI Microscope generated from the site.

The standard requests of a unit (its thumbnail, shared by chips, circuit nodes and default
`{feature}` figures; the card's and the page's dataset examples; positive, negative and diverse
feature visualizations; strongest input and output connections) and the template data of
`unit.html`. A site-level page type: no directive owns it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Iterable, Sequence, cast

import numpy as np

from circuitpress.extensions import PendingResult, RenderServices
from circuitpress.render.images import kernel_heatmap
from circuitpress.requests import (
    ExamplesRequest,
    FeatureVisRequest,
    Request,
    TopConnectionsRequest,
    UnitRef,
)
from circuitpress.structure.unit_views import display_size, example_tiles, fmt

THUMB_SIZE = 64
THUMB_STEPS = FeatureVisRequest.steps  # the defaults: a plain `{feature} REF` shares the thumbnail
PAGE_EXAMPLES = 12
CARD_EXAMPLES = 6
DIVERSE = 4
CONNECTIONS = 8
KERNEL_PIXELS = 8  # each weight drawn as an 8x8 block: 3x3 kernels stay readable
# --- the standard requests of a unit -------------------------------------------------------------


def thumbnail_request(ref: UnitRef) -> FeatureVisRequest:
    """The standard feature visualization of a unit (size 64, default steps, seed 0)."""
    return FeatureVisRequest(ref=ref, size=THUMB_SIZE, steps=THUMB_STEPS, seed=0)


def examples_request(ref: UnitRef) -> ExamplesRequest:
    return ExamplesRequest(ref=ref, k=PAGE_EXAMPLES, crop=True)


def unit_page_requests(ref: UnitRef) -> list[Request]:
    """What a unit page shows: positive, negative and diverse feature visualizations, dataset
    examples, and the strongest input and output connections."""
    return [
        thumbnail_request(ref),
        FeatureVisRequest(ref=ref, size=THUMB_SIZE, steps=THUMB_STEPS, seed=0, negative=True),
        FeatureVisRequest(ref=ref, size=THUMB_SIZE, steps=THUMB_STEPS, seed=0, diversity=DIVERSE),
        examples_request(ref),
        TopConnectionsRequest(ref=ref, n=CONNECTIONS, direction="inputs"),
        TopConnectionsRequest(ref=ref, n=CONNECTIONS, direction="outputs"),
    ]


def unit_figure_aliases(requests: Iterable[Request]) -> dict[Request, Request]:
    """The standard feature visualizations of units the author already visualised, each
    mapped to the author's figure (the first positive single image of that channel, in page
    order) or its negative and diverse variants: a unit page and the unit's chips then show
    the article's image, at the article's steps, computed once."""
    aliases: dict[Request, Request] = {}
    for request in requests:
        if not isinstance(request, FeatureVisRequest):
            continue
        ref = request.ref
        if request.negative or request.diversity != 1 or ref.channel_ref() != ref:
            continue
        default = thumbnail_request(ref)
        if default in aliases or request == default:
            if request == default:
                aliases.setdefault(default, default)
            continue
        aliases[default] = request
        aliases[replace(default, negative=True)] = replace(request, negative=True)
        aliases[replace(default, diversity=DIVERSE)] = replace(request, diversity=DIVERSE)
    return {d: f for d, f in aliases.items() if d != f}


def _connections(ctx: RenderServices, ref: UnitRef, direction: str) -> dict[str, Any] | None:
    result = ctx.result(TopConnectionsRequest(ref=ref, n=CONNECTIONS, direction=direction))
    units = list(result.data.get("units", []))
    if not units:
        return None
    layer = str(result.data.get("layer", ""))
    kernels = result.arrays.get("kernels")
    scale = float(np.abs(kernels).max()) if kernels is not None and kernels.size else None
    rows = []
    for i, unit in enumerate(units):
        other = UnitRef(ref.model, layer, ((int(unit["channel"]), 1.0),))
        thumb = ctx.thumbnail_url(other)
        # Only units mentioned somewhere have a page (and so a thumbnail): link those.
        kernel_url = None
        if kernels is not None and i < len(kernels):
            kernel_url = ctx.image_url(
                kernel_heatmap(kernels[i], scale, pixels=KERNEL_PIXELS),
                name=f"w-{layer}-{unit['channel']}",
            )
        rows.append(
            {
                "ref": str(other),
                "name": f"{layer}:{unit['channel']}",
                "url": ctx.unit_url(other) if thumb else None,
                "thumb": thumb,
                "norm": fmt(float(unit.get("norm", 0.0))),
                "sign": "excites" if float(unit.get("sign", 1)) >= 0 else "inhibits",
                "kernel": kernel_url,
                "kernel_size": (
                    (kernels.shape[1] * KERNEL_PIXELS, kernels.shape[2] * KERNEL_PIXELS)
                    if kernels is not None and kernel_url
                    else None
                ),
            }
        )
    return {"layer": layer, "expanded": bool(result.data.get("expanded", False)), "units": rows}


def _vis(ctx: RenderServices, request: FeatureVisRequest, label: str) -> list[dict[str, Any]]:
    result = ctx.result(request)
    images = result.arrays["images"]
    acts = list(result.data.get("activation", []))
    ref = request.ref
    out = []
    for i in range(images.shape[0]):
        out.append(
            {
                "url": ctx.image_url(images[i], name=f"{ref.layer}-{ref.unit_text}-{label}{i}"),
                "size": display_size(request.size),
                "alt": f"{label} feature visualization of {ref}",
                "activation": fmt(float(acts[i])) if i < len(acts) else "",
            }
        )
    return out


def unit_page_context(
    ref: UnitRef, ctx: RenderServices, backlinks: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Template data for `unit.html`: feature vis (positive, negative, diverse), examples,
    strongest inputs and outputs, and the articles that mention the unit."""
    standard = unit_page_requests(ref)
    positive, negative, diverse = (cast(FeatureVisRequest, r) for r in standard[:3])
    examples = cast(ExamplesRequest, standard[3])
    pending: list[str] = []

    def shown(section: str, make: Callable[[], Any], empty: Any) -> Any:
        """A section's data, or `empty` while its result is not computed (a preview, check)."""
        try:
            return make()
        except PendingResult:
            pending.append(section)
            return empty

    return {
        "unit": {
            "ref": str(ref),
            "model": ref.model,
            "layer": ref.layer,
            "channel": ref.channel,
            "title": f"{ref.model}/{ref.layer}:{ref.unit_text}",
        },
        "positive": shown("positive", lambda: _vis(ctx, positive, "positive"), []),
        "negative": shown("negative", lambda: _vis(ctx, negative, "negative"), []),
        "diverse": shown("diverse", lambda: _vis(ctx, diverse, "diverse"), []),
        "examples": shown(
            "examples",
            lambda: example_tiles(ctx, ref, examples, PAGE_EXAMPLES, 96),
            [],
        ),
        "inputs": shown("inputs", lambda: _connections(ctx, ref, "inputs"), None),
        "outputs": shown("outputs", lambda: _connections(ctx, ref, "outputs"), None),
        "pending": pending,
        "backlinks": list(backlinks),
        "canonical_url": ctx.unit_url(ref),
    }


def backlinks(
    files: Sequence[str], titles: dict[str, tuple[str, str]], url: Callable[[str], str]
) -> list[dict[str, str]]:
    """The articles that mention a unit, each once, in the order of their first mention.
    `titles` maps a page file to its title and site path (pages left out, e.g. drafts, are not
    linked)."""
    links = []
    seen = set()
    for file in files:
        if file in seen or file not in titles:
            continue
        seen.add(file)
        title, path = titles[file]
        links.append({"title": title, "url": url(path), "file": file})
    return links
