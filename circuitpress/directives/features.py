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
import re
from typing import Any, Callable

from circuitpress.directives import lm
from circuitpress.directives.circuitry import unit_link
from circuitpress.directives.figure_parts import caption_with_facts, page_models
from circuitpress.errors import UserError
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
    choice,
    flag,
    integer,
    number,
)
from circuitpress.render.numbers import shared
from circuitpress.requests import OBJECTIVES, ExamplesRequest, FeatureVisRequest, UnitRef
from circuitpress.structure.unit_views import (
    display_size,
    example_tiles,
    grid_size,
    img,
    tiles_html,
)
from circuitpress.structure.units import CARD_EXAMPLES, examples_request, thumbnail_request

e = html.escape


# --- {feature} ------------------------------------------------------------------------------------

_ITEM = re.compile(r"[^\s,@]+(?:@\d+,\d+)?")
_SEPARATOR = re.compile(r"[\s,]*")


def split_refs(text: str) -> list[str]:
    """The references of a `{feature}`/`{features}` argument, each written out in full.

    Several units are separated by spaces or commas: `conv2:3 conv2:7 conv3:5`, or written
    as one layer and its units, `shapes-a/conv2:3, 7, 12` (as `:ablate:` writes them). A unit
    without a layer takes the model and layer of the reference before it. A single reference
    is returned whole, so a direction written with spaces (`conv2:0.7*3 - 0.2*7`) and a
    neuron (`conv2:7@3,4`) keep their meaning."""
    text = text.strip()
    items: list[str] = []
    pos = 0
    while pos < len(text):
        pos = _SEPARATOR.match(text, pos).end()  # type: ignore[union-attr]  # matches always
        m = _ITEM.match(text, pos)
        if m is None:
            break
        items.append(m.group(0))
        pos = m.end()
    # One reference unless a later item names a layer, is a plain unit number, or items are
    # separated by commas (not the comma of a position '@3,4'); a bare '- 0.2*7' is part of a
    # direction written with spaces, not another unit.
    several = len(items) > 1 and (
        all(":" in item or item.isdigit() for item in items[1:])
        or "," in re.sub(r"@\d+,\d+", "", text)
    )
    if not several:
        return [text]
    refs: list[str] = []
    prefix = ""
    for item in items:
        if ":" in item:
            prefix = item[: item.rindex(":", 0, item.find("@") if "@" in item else None) + 1]
            refs.append(item)
        else:
            refs.append(prefix + item if prefix else item)
    return refs


class FeatureDirective(Directive):
    """Feature visualization of a channel, a neuron `@Y,X` or a direction; of several units,
    a grid of them as one figure with one caption."""

    name = "feature"
    argument = "required"
    argument_help = (
        "a feature reference, e.g. shapes-a/conv2:7, or several: shapes-a/conv2:3, 7, 12"
    )
    options = {
        "size": Option(integer(16, 512), FeatureVisRequest.size, "image size in pixels"),
        "steps": Option(integer(1, 4096), FeatureVisRequest.steps, "optimisation steps"),
        "seed": Option(integer(0, 2**31 - 1), FeatureVisRequest.seed, "random seed of the image"),
        "diversity": Option(integer(1, 16), 1, "number of diverse images of the unit"),
        "negative": Option(flag, False, "minimise the unit instead"),
        "lr": Option(number(1e-4, 1.0), FeatureVisRequest.lr, "Adam learning rate"),
        "objective": Option(
            choice(*OBJECTIVES),
            FeatureVisRequest.objective,
            "what a channel or direction maximises: the mean of its positive part, or its "
            "plain mean (lucent's channel objective)",
        ),
    }

    def plan(self, call: DirectiveCall, ctx: PlanContext) -> None:
        texts = split_refs(call.argument)
        refs = list(dict.fromkeys(ctx.ref(text, call.line) for text in texts))
        o = call.options
        requests = [
            FeatureVisRequest(
                ref=ref,
                size=int(o.get("size", FeatureVisRequest.size)),
                steps=int(o.get("steps", FeatureVisRequest.steps)),
                seed=int(o.get("seed", FeatureVisRequest.seed)),
                negative=bool(o.get("negative", False)),
                diversity=int(o.get("diversity", 1)),
                lr=float(o.get("lr", FeatureVisRequest.lr)),
                # A neuron maximises its own value whatever the objective: one request (and
                # one cache entry) for both spellings.
                objective=(
                    FeatureVisRequest.objective
                    if ref.position is not None
                    else str(o.get("objective", FeatureVisRequest.objective))
                ),
            )
            for ref in refs
        ]
        for request in requests:
            ctx.request(request)
        call.data["requests"] = requests
        call.data["request"] = requests[0]
        call.data["models"] = page_models(ctx, (r.model for r in refs))

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        requests: list[FeatureVisRequest] = call.data.get("requests") or [call.data["request"]]
        for request in requests:
            # A language model's unit has a picture for its chips and page (its activation on
            # the probe tokens), not a feature visualization: an author asking for one is told.
            if ctx.result(request).data.get("picture"):
                raise UserError(
                    f"{{feature}} {request.ref}: '{request.ref.model}' is a language model, and "
                    "a feature visualization optimises an input image",
                    line=call.line,
                    hint="show its units with {examples}, {logits}, {attention} or {heads}",
                )
        if len(requests) == 1:
            return self._single(call, requests[0], ctx)
        return self._grid(call, requests, ctx)

    def _pictures(
        self, request: FeatureVisRequest, ctx: RenderContext, size: Callable[[int], int]
    ) -> tuple[list[str], list[float]]:
        ref = request.ref
        result = ctx.result(request)
        images = result.arrays["images"]
        activations = [float(a) for a in result.data.get("activation", [])]
        what = "negative feature visualization" if request.negative else "feature visualization"
        natural = (int(images.shape[1]), int(images.shape[2]))
        shown = (size(natural[0]), size(natural[1]))
        pictures = []
        for i in range(images.shape[0]):
            url = ctx.image_url(
                images[i],
                name=f"{ref.layer}-{ref.unit_text}{'-neg' if request.negative else ''}-{i}",
            )
            alt = f"{what} of {ref}" + (
                f" (image {i + 1} of {images.shape[0]})" if images.shape[0] > 1 else ""
            )
            pictures.append(img(url, shown, alt, natural=natural))
        return pictures, activations

    def _facts(self, requests: list[FeatureVisRequest], units: str) -> str:
        first = requests[0]
        what = "negative feature visualization" if first.negative else "feature visualization"
        if len(requests) > 1:
            what += "s"
        extra = f", {first.diversity} diverse images each" if first.diversity > 1 else ""
        if any(r.objective == "mean" for r in requests):
            extra += (
                ", minimising the plain mean" if first.negative else ", maximising the plain mean"
            )
        return f"{units} · {what}, {first.steps} steps, seed {first.seed}{extra}"

    def _single(self, call: DirectiveCall, request: FeatureVisRequest, ctx: RenderContext) -> str:
        ref = request.ref
        pictures, activations = self._pictures(request, ctx, display_size)
        values = shared(activations)
        cells = []
        for i, picture in enumerate(pictures):
            value = (
                f'<span class="cp-feature-value" title="activation">{e(values[i])}</span>'
                if i < len(values)
                else ""
            )
            cells.append(f'<span class="cp-feature-image">{picture}{value}</span>')
        sign = ' data-negative="true"' if request.negative else ""
        return (
            f'<figure class="cp-feature" data-unit="{e(str(ref))}"{sign}>'
            f'<div class="cp-feature-images">{"".join(cells)}</div>'
            + caption_with_facts(call, ctx, self._facts([request], unit_link(ref, ctx)))
            + "</figure>"
        )

    def _grid(
        self, call: DirectiveCall, requests: list[FeatureVisRequest], ctx: RenderContext
    ) -> str:
        models = {r.ref.model for r in requests}
        layers = {(r.ref.model, r.ref.layer) for r in requests}
        shown = [self._pictures(request, ctx, grid_size) for request in requests]
        # One activation per unit, all with the same decimals: the row reads evenly.
        firsts = shared([acts[0] for _, acts in shown if acts])
        values = iter(firsts)
        cells = []
        for request, (pictures, activations) in zip(requests, shown, strict=True):
            ref = request.ref
            name = str(ref) if len(models) > 1 else f"{ref.layer}:{ref.unit_text}"
            if len(layers) == 1:
                name = ref.unit_text  # the caption names the layer once
            value = (
                f' <span class="cp-feature-cell-value" title="activation">{e(next(values))}</span>'
                if activations
                else ""
            )
            url = ctx.unit_url(ref)
            images = "".join(pictures)
            if url:
                images = f'<a href="{e(url)}" tabindex="-1" aria-hidden="true">{images}</a>'
            cells.append(
                f'<div class="cp-feature-cell" data-unit="{e(str(ref))}">'
                f'<div class="cp-feature-cell-images">{images}</div>'
                f'<div class="cp-feature-cell-label">{unit_link(ref, ctx, name)}{value}</div>'
                "</div>"
            )
        if len(layers) == 1:
            model, layer = next(iter(layers))
            units = f"{e(model)}/{e(layer)}, units " + ", ".join(
                e(r.ref.unit_text) for r in requests
            )
        else:
            units = ", ".join(e(str(r.ref)) for r in requests)
        return (
            f'<figure class="cp-feature cp-feature-grid" data-units="{len(requests)}">'
            f'<div class="cp-feature-cells">{"".join(cells)}</div>'
            + caption_with_facts(call, ctx, self._facts(requests, units))
            + "</figure>"
        )


class FeaturesDirective(FeatureDirective):
    """`{features} REF REF …`: the grid of units by its plural name (the same directive)."""

    name = "features"
    argument_help = "feature references, e.g. shapes-a/conv2:3, 7, 12 or conv2:3 conv3:5"


# --- {examples} -----------------------------------------------------------------------------------


class ExamplesDirective(Directive):
    """Top-k dataset examples, each with the unit's activation laid over it."""

    name = "examples"
    argument = "required"
    argument_help = "a feature reference, e.g. shapes-a/conv2:7"
    options = {
        "k": Option(integer(1, 64), ExamplesRequest.k, "number of examples"),
        "crop": Option(flag, True, "crop around the receptive field of the maximum"),
        "context": Option(integer(1, 16), 8, "a text model's tokens each side of the strongest"),
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
        result = ctx.result(request)
        if result.data.get("tokens"):  # a language model: token contexts (directives/lm.py)
            return lm.render_examples(call, ctx, ref, result)
        tiles = example_tiles(ctx, ref, request, request.k, 96)
        crop = (
            "cropped around the receptive field of the strongest position, " if request.crop else ""
        )
        facts = (
            f"{unit_link(ref, ctx)} · the top {len(tiles)} dataset examples, {crop}"
            "activation laid over each and its value in the corner"
        )
        return (
            f'<figure class="cp-examples" data-unit="{e(str(ref))}">'
            f'<div class="cp-examples-grid">{tiles_html(tiles, "cp-example")}</div>'
            + caption_with_facts(call, ctx, facts)
            + "</figure>"
        )


# --- {unit} ---------------------------------------------------------------------------------------


class UnitRole(Role):
    """`{unit}`shapes-a/conv2:7``: a chip linked to the unit page, with a hover card. On a
    page that names units of several models the chip shows its model."""

    name = "unit"

    def plan(self, text: str, file: str, line: int, data: dict[str, Any], ctx: PlanContext) -> None:
        ref = ctx.ref(text, line)
        data["ref"] = ref
        data["models"] = page_models(ctx, (ref.model,))
        # Channels get their thumbnail and examples through the unit page plan; directions and
        # neurons ask for the card's content here (duplicates are merged by the plan).
        ctx.request(thumbnail_request(ref.channel_ref() or ref))
        ctx.request(examples_request(ref.channel_ref() or ref))

    def render(self, text: str, data: dict[str, Any], ctx: RenderContext) -> str:
        ref: UnitRef = data["ref"]
        return unit_chip(ref, ctx, show_model=len(data.get("models", ())) > 1)


def unit_chip(ref: UnitRef, ctx: RenderServices, *, show_model: bool = False) -> str:
    """The inline chip with its hover card (also used by other directives, e.g. circuits).
    `show_model` puts the model's name in the chip (a page with units of several models)."""
    base = ref.channel_ref() or ref
    name = f"{ref.layer}:{ref.unit_text}"
    thumb = ctx.thumbnail_url(ref)
    url = ctx.unit_url(ref)
    small = img(thumb, (20, 20), "", "cp-unit-thumb") if thumb else ""
    model = f'<span class="cp-unit-model">{e(ref.model)}</span>' if show_model else ""
    inner = f'{small}{model}<span class="cp-unit-name">{e(name)}</span>'
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
    labelled = f' data-model="{e(ref.model)}"' if show_model else ""
    return f'<span class="cp-unit" data-unit="{e(str(ref))}"{labelled}>{chip}{card}</span>'


DIRECTIVES = [FeatureDirective, FeaturesDirective, ExamplesDirective]
ROLES = [UnitRole]


def register(registry: Registry) -> None:
    """Entry point `features` of the group `circuitpress.directives` (pyproject.toml)."""
    for directive in DIRECTIVES:
        registry.add_directive(directive)
    for role in ROLES:
        registry.add_role(role)
