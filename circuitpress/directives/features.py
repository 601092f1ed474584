"""`{feature}` and `{examples}` directives, the `{unit}` role, and what unit pages show.

    :::{feature} shapes-a/conv2:7
    :steps: 512
    :diversity: 4
    A curve detector.
    :::

Directives plan `FeatureVisRequest`s and `ExamplesRequest`s and render figures from their
results; the role renders a chip (thumbnail + name, linked to the unit page) with a hover card
(a larger feature visualization and top dataset examples), shown by CSS on hover and focus and
placed by `units.js`; with JS off the chip is a plain link. Every unit mention asks for the same
standard thumbnail request (`thumbnail_request`), so chips, unit pages and default `{feature}`
figures share one computation.
"""

from __future__ import annotations

import html
from typing import Any, Sequence

import numpy as np

from circuitpress.extensions import (
    Directive,
    DirectiveCall,
    Option,
    PlanContext,
    Registry,
    RenderContext,
    Role,
    flag,
    integer,
    number,
)
from circuitpress.render.images import kernel_heatmap, overlay
from circuitpress.requests import (
    ExamplesRequest,
    FeatureVisRequest,
    Request,
    TopConnectionsRequest,
    UnitRef,
)

THUMB_SIZE = 64
THUMB_STEPS = FeatureVisRequest.steps  # the defaults: a plain `{feature} REF` shares the thumbnail
PAGE_EXAMPLES = 12
CARD_EXAMPLES = 6
DIVERSE = 4
CONNECTIONS = 8
KERNEL_PIXELS = 8  # each weight drawn as an 8x8 block: 3x3 kernels stay readable

e = html.escape


# --- the standard requests of a unit -------------------------------------------------------------


def thumbnail_request(ref: UnitRef) -> FeatureVisRequest:
    """The standard feature visualization of a unit (size 64, default steps, seed 0)."""
    return FeatureVisRequest(ref=ref, size=THUMB_SIZE, steps=THUMB_STEPS, seed=0)


def _examples_request(ref: UnitRef) -> ExamplesRequest:
    return ExamplesRequest(ref=ref, k=PAGE_EXAMPLES, crop=True)


def unit_page_requests(ref: UnitRef) -> list[Request]:
    """What a unit page shows: positive, negative and diverse feature visualizations, dataset
    examples, and the strongest input and output connections."""
    return [
        thumbnail_request(ref),
        FeatureVisRequest(ref=ref, size=THUMB_SIZE, steps=THUMB_STEPS, seed=0, negative=True),
        FeatureVisRequest(ref=ref, size=THUMB_SIZE, steps=THUMB_STEPS, seed=0, diversity=DIVERSE),
        _examples_request(ref),
        TopConnectionsRequest(ref=ref, n=CONNECTIONS, direction="inputs"),
        TopConnectionsRequest(ref=ref, n=CONNECTIONS, direction="outputs"),
    ]


# --- shared HTML pieces ---------------------------------------------------------------------------


def _display_size(size: int) -> int:
    """Small visualizations are shown enlarged (the browser interpolates smoothly)."""
    return size * 2 if size < 128 else size


def _img(src: str, size: tuple[int, int], alt: str, cls: str = "", lazy: bool = False) -> str:
    attrs = f' class="{cls}"' if cls else ""
    loading = ' loading="lazy"' if lazy else ""
    return (
        f'<img{attrs} src="{e(src)}" width="{size[1]}" height="{size[0]}" alt="{e(alt)}"{loading}>'
    )


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def example_tiles(
    ctx: RenderContext, ref: UnitRef, request: ExamplesRequest, limit: int, display: int
) -> list[dict[str, Any]]:
    """Overlay images (activation heatmap over the crop) with their values, as template data."""
    result = ctx.result(request)
    images, heats = result.arrays["images"], result.arrays["heatmaps"]
    values = list(result.data.get("values", []))
    indices = list(result.data.get("indices", []))
    tiles = []
    for i in range(min(limit, len(values))):
        picture = overlay(images[i], heats[i])
        url = ctx.image_url(picture, name=f"{ref.layer}-{ref.unit_text}-ex{i}")
        h, w = picture.shape[:2]
        scale = display / max(h, w)
        tiles.append(
            {
                "url": url,
                "width": max(1, round(w * scale)),
                "height": max(1, round(h * scale)),
                "value": _fmt(float(values[i])),
                "index": int(indices[i]) if i < len(indices) else None,
                "alt": f"dataset example {indices[i] if i < len(indices) else i} of {ref}, activation {_fmt(float(values[i]))}",
            }
        )
    return tiles


def _tiles_html(tiles: Sequence[dict[str, Any]], cls: str) -> str:
    parts = []
    for t in tiles:
        img = _img(t["url"], (t["height"], t["width"]), t["alt"], lazy=True)
        parts.append(
            f'<span class="{cls}">{img}<span class="cp-example-value">{e(t["value"])}</span></span>'
        )
    return "".join(parts)


# --- {feature} ------------------------------------------------------------------------------------


class FeatureDirective(Directive):
    """Feature visualization of a channel, a neuron `@Y,X` or a direction."""

    name = "feature"
    argument = "required"
    argument_help = "a feature reference, e.g. shapes-a/conv2:7"
    options = {
        "size": Option(integer(16, 512), FeatureVisRequest.size, "image size in pixels"),
        "steps": Option(integer(1, 4096), FeatureVisRequest.steps, "optimisation steps"),
        "seed": Option(integer(0, 2**31 - 1), FeatureVisRequest.seed, "random seed of the image"),
        "diversity": Option(integer(1, 16), 1, "number of diverse images of the unit"),
        "negative": Option(flag, False, "minimise the unit instead"),
        "lr": Option(number(1e-4, 1.0), FeatureVisRequest.lr, "Adam learning rate"),
    }

    def plan(self, call: DirectiveCall, ctx: PlanContext) -> None:
        ref = ctx.ref(call.argument, call.line)
        o = call.options
        request = FeatureVisRequest(
            ref=ref,
            size=int(o.get("size", FeatureVisRequest.size)),
            steps=int(o.get("steps", FeatureVisRequest.steps)),
            seed=int(o.get("seed", FeatureVisRequest.seed)),
            negative=bool(o.get("negative", False)),
            diversity=int(o.get("diversity", 1)),
            lr=float(o.get("lr", FeatureVisRequest.lr)),
        )
        ctx.request(request)
        call.data["request"] = request

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        request: FeatureVisRequest = call.data["request"]
        ref = request.ref
        result = ctx.result(request)
        images = result.arrays["images"]
        activations = list(result.data.get("activation", []))
        display = _display_size(request.size)
        what = "negative feature visualization" if request.negative else "feature visualization"
        pictures = []
        for i in range(images.shape[0]):
            url = ctx.image_url(
                images[i],
                name=f"{ref.layer}-{ref.unit_text}{'-neg' if request.negative else ''}-{i}",
            )
            alt = f"{what} of {ref}" + (
                f" (image {i + 1} of {images.shape[0]})" if images.shape[0] > 1 else ""
            )
            value = (
                f'<span class="cp-feature-value">{e(_fmt(activations[i]))}</span>'
                if i < len(activations)
                else ""
            )
            pictures.append(
                f'<span class="cp-feature-image">{_img(url, (display, display), alt)}{value}</span>'
            )
        label = e(str(ref))
        unit_url = ctx.unit_url(ref)
        if unit_url:
            label = f'<a href="{e(unit_url)}">{label}</a>'
        sign = ' <span class="cp-feature-sign">negative</span>' if request.negative else ""
        return (
            f'<figure class="cp-feature" data-unit="{e(str(ref))}">'
            f'<div class="cp-feature-images">{"".join(pictures)}</div>'
            f'<div class="cp-feature-label">{label}{sign}</div>'
            f"{ctx.caption(call)}</figure>"
        )


# --- {examples} -----------------------------------------------------------------------------------


class ExamplesDirective(Directive):
    """Top-k dataset examples, each with the unit's activation laid over it."""

    name = "examples"
    argument = "required"
    argument_help = "a feature reference, e.g. shapes-a/conv2:7"
    options = {
        "k": Option(integer(1, 64), ExamplesRequest.k, "number of examples"),
        "crop": Option(flag, True, "crop around the receptive field of the maximum"),
    }

    def plan(self, call: DirectiveCall, ctx: PlanContext) -> None:
        ref = ctx.ref(call.argument, call.line)
        request = ExamplesRequest(
            ref=ref,
            k=int(call.options.get("k", ExamplesRequest.k)),
            crop=bool(call.options.get("crop", True)),
        )
        ctx.request(request)
        call.data["request"] = request

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        request: ExamplesRequest = call.data["request"]
        ref = request.ref
        tiles = example_tiles(ctx, ref, request, request.k, 96)
        label = e(str(ref))
        unit_url = ctx.unit_url(ref)
        if unit_url:
            label = f'<a href="{e(unit_url)}">{label}</a>'
        return (
            f'<figure class="cp-examples" data-unit="{e(str(ref))}">'
            f'<div class="cp-examples-grid">{_tiles_html(tiles, "cp-example")}</div>'
            f'<div class="cp-feature-label">top {len(tiles)} dataset examples of {label}</div>'
            f"{ctx.caption(call)}</figure>"
        )


# --- {unit} ---------------------------------------------------------------------------------------


class UnitRole(Role):
    """`{unit}`shapes-a/conv2:7``: a chip linked to the unit page, with a hover card."""

    name = "unit"

    def plan(self, text: str, file: str, line: int, data: dict[str, Any], ctx: PlanContext) -> None:
        ref = ctx.ref(text, line)
        data["ref"] = ref
        # Channels get their thumbnail and examples through the unit page plan; directions and
        # neurons ask for the card's content here (duplicates are merged by the plan).
        ctx.request(thumbnail_request(ref.channel_ref() or ref))
        ctx.request(_examples_request(ref.channel_ref() or ref))

    def render(self, text: str, data: dict[str, Any], ctx: RenderContext) -> str:
        ref: UnitRef = data["ref"]
        return unit_chip(ref, ctx)


def unit_chip(ref: UnitRef, ctx: RenderContext) -> str:
    """The inline chip with its hover card (also used by other directives, e.g. circuits)."""
    base = ref.channel_ref() or ref
    name = f"{ref.layer}:{ref.unit_text}"
    thumb = ctx.thumbnail_url(ref)
    url = ctx.unit_url(ref)
    small = _img(thumb, (20, 20), "", "cp-unit-thumb") if thumb else ""
    inner = f'{small}<span class="cp-unit-name">{e(name)}</span>'
    if url:
        chip = f'<a class="cp-unit-chip" href="{e(url)}" title="{e(str(ref))}">{inner}</a>'
    else:
        chip = f'<span class="cp-unit-chip" tabindex="0" title="{e(str(ref))}">{inner}</span>'
    big = (
        _img(thumb, (128, 128), f"feature visualization of {base}", "cp-unit-card-vis", lazy=True)
        if thumb
        else ""
    )
    try:
        tiles = example_tiles(ctx, base, _examples_request(base), CARD_EXAMPLES, 40)
    except RuntimeError:  # not planned (a chip drawn by a directive that asked for no examples)
        tiles = []
    examples = (
        f'<span class="cp-unit-card-examples">{_tiles_html(tiles, "cp-unit-card-example")}</span>'
        if tiles
        else ""
    )
    card = (
        f'<span class="cp-unit-card" role="tooltip">{big}'
        f'<span class="cp-unit-card-body"><span class="cp-unit-card-title">{e(str(ref))}</span>'
        f"{examples}</span></span>"
    )
    return f'<span class="cp-unit" data-unit="{e(str(ref))}">{chip}{card}</span>'


# --- unit pages -----------------------------------------------------------------------------------


def _connections(ctx: RenderContext, ref: UnitRef, direction: str) -> dict[str, Any] | None:
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
                "norm": _fmt(float(unit.get("norm", 0.0))),
                "sign": "excites" if float(unit.get("sign", 1)) >= 0 else "inhibits",
                "kernel": kernel_url,
                "kernel_size": (kernels.shape[1] * KERNEL_PIXELS, kernels.shape[2] * KERNEL_PIXELS)
                if kernel_url
                else None,
            }
        )
    return {"layer": layer, "expanded": bool(result.data.get("expanded", False)), "units": rows}


def _vis(ctx: RenderContext, request: FeatureVisRequest, label: str) -> list[dict[str, Any]]:
    result = ctx.result(request)
    images = result.arrays["images"]
    acts = list(result.data.get("activation", []))
    ref = request.ref
    out = []
    for i in range(images.shape[0]):
        out.append(
            {
                "url": ctx.image_url(images[i], name=f"{ref.layer}-{ref.unit_text}-{label}{i}"),
                "size": _display_size(request.size),
                "alt": f"{label} feature visualization of {ref}",
                "activation": _fmt(float(acts[i])) if i < len(acts) else "",
            }
        )
    return out


def unit_page_context(
    ref: UnitRef, ctx: RenderContext, backlinks: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Template data for `unit.html`: feature vis (positive, negative, diverse), examples,
    strongest inputs and outputs, and the articles that mention the unit."""
    positive, negative, diverse, examples = unit_page_requests(ref)[:4]
    return {
        "unit": {
            "ref": str(ref),
            "model": ref.model,
            "layer": ref.layer,
            "channel": ref.channel,
            "title": f"{ref.model}/{ref.layer}:{ref.unit_text}",
        },
        "positive": _vis(ctx, positive, "positive"),  # type: ignore[arg-type]
        "negative": _vis(ctx, negative, "negative"),  # type: ignore[arg-type]
        "diverse": _vis(ctx, diverse, "diverse"),  # type: ignore[arg-type]
        "examples": example_tiles(ctx, ref, examples, PAGE_EXAMPLES, 96),  # type: ignore[arg-type]
        "inputs": _connections(ctx, ref, "inputs"),
        "outputs": _connections(ctx, ref, "outputs"),
        "backlinks": list(backlinks),
        "canonical_url": ctx.unit_url(ref),
    }


DIRECTIVES = [FeatureDirective, ExamplesDirective]
ROLES = [UnitRole]


def register(registry: Registry) -> None:
    """Entry point `features` of the group `circuitpress.directives` (pyproject.toml)."""
    for directive in DIRECTIVES:
        registry.add_directive(directive)
    for role in ROLES:
        registry.add_role(role)
