"""`{feature}` and `{examples}` directives and the `{unit}` role.

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
from typing import Any

from circuitpress.extensions import (
    Directive,
    DirectiveCall,
    Option,
    PendingResult,
    PlanContext,
    Registry,
    RenderContext,
    RenderServices,
    Role,
    flag,
    integer,
    number,
)
from circuitpress.requests import ExamplesRequest, FeatureVisRequest, UnitRef
from circuitpress.structure.unit_views import display_size, example_tiles, fmt, img, tiles_html
from circuitpress.structure.units import CARD_EXAMPLES, examples_request, thumbnail_request

e = html.escape


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
        display = display_size(request.size)
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
                f'<span class="cp-feature-value">{e(fmt(activations[i]))}</span>'
                if i < len(activations)
                else ""
            )
            pictures.append(
                f'<span class="cp-feature-image">{img(url, (display, display), alt)}{value}</span>'
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
            f'<div class="cp-examples-grid">{tiles_html(tiles, "cp-example")}</div>'
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
        ctx.request(examples_request(ref.channel_ref() or ref))

    def render(self, text: str, data: dict[str, Any], ctx: RenderContext) -> str:
        ref: UnitRef = data["ref"]
        return unit_chip(ref, ctx)


def unit_chip(ref: UnitRef, ctx: RenderServices) -> str:
    """The inline chip with its hover card (also used by other directives, e.g. circuits)."""
    base = ref.channel_ref() or ref
    name = f"{ref.layer}:{ref.unit_text}"
    thumb = ctx.thumbnail_url(ref)
    url = ctx.unit_url(ref)
    small = img(thumb, (20, 20), "", "cp-unit-thumb") if thumb else ""
    inner = f'{small}<span class="cp-unit-name">{e(name)}</span>'
    if url:
        chip = f'<a class="cp-unit-chip" href="{e(url)}" title="{e(str(ref))}">{inner}</a>'
    else:
        chip = f'<span class="cp-unit-chip" tabindex="0" title="{e(str(ref))}">{inner}</span>'
    big = (
        img(thumb, (128, 128), f"feature visualization of {base}", "cp-unit-card-vis", lazy=True)
        if thumb
        else ""
    )
    try:
        tiles = example_tiles(ctx, base, examples_request(base), CARD_EXAMPLES, 40)
    except RuntimeError:  # not planned (a chip drawn by a directive that asked for no examples)
        tiles = []
    except PendingResult:  # not computed yet: the chip without its examples
        tiles = []
    examples = (
        f'<span class="cp-unit-card-examples">{tiles_html(tiles, "cp-unit-card-example")}</span>'
        if tiles
        else ""
    )
    card = (
        f'<span class="cp-unit-card" role="tooltip">{big}'
        f'<span class="cp-unit-card-body"><span class="cp-unit-card-title">{e(str(ref))}</span>'
        f"{examples}</span></span>"
    )
    return f'<span class="cp-unit" data-unit="{e(str(ref))}">{chip}{card}</span>'


DIRECTIVES = [FeatureDirective, ExamplesDirective]
ROLES = [UnitRole]


def register(registry: Registry) -> None:
    """Entry point `features` of the group `circuitpress.directives` (pyproject.toml)."""
    for directive in DIRECTIVES:
        registry.add_directive(directive)
    for role in ROLES:
        registry.add_role(role)
