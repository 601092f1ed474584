"""Unit pages: what every mentioned unit gets, like OpenAI Microscope generated from the site.

The standard requests of a unit (its thumbnail, shared by chips, circuit nodes and default
`{feature}` figures; the card's and the page's dataset examples; positive, negative and diverse
feature visualizations; strongest input and output connections) and the template data of
`unit.html`. A site-level page type: no directive owns it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Sequence, cast

from circuitpress.extensions import PendingResult, RenderServices
from circuitpress.render.numbers import shared
from circuitpress.requests import (
    MODEL_SIZE,
    ExamplesRequest,
    FeatureVisRequest,
    Request,
    Result,
    TopConnectionsRequest,
    UnitRef,
)
from circuitpress.structure import lm_views
from circuitpress.structure.unit_views import display_size, example_tiles, grid_size

THUMB_SIZE = MODEL_SIZE  # 0: the model's own size (an MLP of 32x32 inputs takes no 64 px image)
THUMB_STEPS = FeatureVisRequest.steps  # the defaults: a plain `{feature} REF` shares the thumbnail
PAGE_EXAMPLES = 12
CARD_EXAMPLES = 6
DIVERSE = 4
CONNECTIONS = 8
# Steps of a neighbour page's thumbnail (see neighbour_page_requests): a quarter of the
# standard, since a first build optimises several hundred of them on the example site.
NEIGHBOUR_STEPS = 64
KERNEL_PIXELS = 8  # each weight drawn as an 8x8 block: 3x3 kernels stay readable
CONNECTION_THUMB = 64  # a connected unit's thumbnail on a unit page
# --- the standard requests of a unit -------------------------------------------------------------


def thumbnail_request(ref: UnitRef) -> FeatureVisRequest:
    """The standard feature visualization of a unit (the model's own size, default steps,
    seed 0)."""
    return FeatureVisRequest(ref=ref, size=THUMB_SIZE, steps=THUMB_STEPS, seed=0)


def neighbour_thumbnail_request(ref: UnitRef) -> FeatureVisRequest:
    """The thumbnail of a unit that has only a neighbour page: fewer steps (NEIGHBOUR_STEPS)."""
    return FeatureVisRequest(ref=ref, size=THUMB_SIZE, steps=NEIGHBOUR_STEPS, seed=0)


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
        *connection_requests(ref),
        *lm_views.unit_page_extra(ref),  # a head's page: its model's head scores
    ]


def connection_requests(ref: UnitRef) -> list[TopConnectionsRequest]:
    """The strongest inputs and outputs a unit page lists."""
    return [
        TopConnectionsRequest(ref=ref, n=CONNECTIONS, direction="inputs"),
        TopConnectionsRequest(ref=ref, n=CONNECTIONS, direction="outputs"),
    ]


def neighbour_page_requests(ref: UnitRef) -> list[Request]:
    """The page of a unit no article mentions but a mentioned unit's page names (one of its
    strongest inputs or outputs): its thumbnail and dataset examples. No negative or diverse
    images, and no connection lists: every unit a page names is shown with its thumbnail,
    so a neighbour page that listed its own connections would need the thumbnails of units
    two steps from the article (on the example site that quadrupled the feature-vis work of
    a first build). A reader who follows a link one step from the article finds the unit's
    picture, its examples and the mentioned units it connects to; `[atlas]` gives a layer
    full pages. Its thumbnail optimises for NEIGHBOUR_STEPS (the page says so)."""
    return [neighbour_thumbnail_request(ref), examples_request(ref)]


def named_units(result: Result, ref: UnitRef) -> list[UnitRef]:
    """The units a connections result names (channels of the layer it reports)."""
    layer = str(result.data.get("layer", ""))
    return [
        UnitRef(ref.model, layer, ((int(u["channel"]), 1.0),))
        for u in result.data.get("units", [])
        if layer
    ]


@dataclass
class UnitPagePlan:
    """Which units get a page, so that every unit a unit page names is linked to a page and
    shown with its thumbnail.

    Mentioned units (articles, circuits, comparisons) get a full page. The units a full page
    names (its strongest inputs and outputs) get a neighbour page (`neighbour_page_requests`:
    thumbnail and examples, no connection lists). The pages stop one connection from what
    the articles mention, so the cost is bounded (at most 2 x CONNECTIONS neighbour pages per
    mentioned unit) and thumbnails of one layer still optimise as one batch. A site that
    wants every unit of a layer lists it in `[atlas]`.

    `plan` runs once per build round; it returns the requests to plan and the connections it
    needs this round to go on (cheap: weights only)."""

    full: set[UnitRef] = field(default_factory=set)
    neighbours: dict[UnitRef, list[UnitRef]] = field(default_factory=dict)  # -> pages naming it
    _expanded: dict[UnitRef, bool] = field(default_factory=dict)  # unit -> expanded as full
    _fresh: list[UnitRef] = field(default_factory=list)

    def plan(
        self, mentioned: Iterable[UnitRef], results: Mapping[Request, Result]
    ) -> tuple[list[Request], list[Request]]:
        requests: list[Request] = []
        needed: list[Request] = []
        self._fresh = []
        for ref in mentioned:
            if ref not in self.full:
                self.full.add(ref)
                if ref not in self.neighbours:
                    self._fresh.append(ref)
                requests += unit_page_requests(ref)
        # Pages made in this pass are looked at in it too: their connections are asked for
        # this round, not the next (the rounds of a build are few).
        work = sorted(self.full, key=_order)
        while work:
            ref = work.pop(0)
            full = ref in self.full
            done = self._expanded.get(ref)
            if not full or done:  # a neighbour page names no units (see above)
                continue
            connections = connection_requests(ref)
            missing = [r for r in connections if r not in results]
            if missing:
                needed += missing
                continue
            self._expanded[ref] = full
            for other in (u for r in connections for u in named_units(results[r], ref)):
                if other in self.full or other == ref:
                    continue
                if full:
                    if other not in self.neighbours:
                        self.neighbours[other] = []
                        self._fresh.append(other)
                        requests += neighbour_page_requests(other)
                    if ref not in self.neighbours[other]:
                        self.neighbours[other].append(ref)
        return requests, needed

    def fresh(self) -> list[UnitRef]:
        """The units that got a page in the last `plan`."""
        return list(self._fresh)

    def pages(self) -> list[UnitRef]:
        """Every unit with a page, in model, layer, channel order."""
        return sorted(self.full | set(self.neighbours), key=_order)

    def has_page(self, ref: UnitRef) -> bool:
        return ref in self.full or ref in self.neighbours

    def reached_from(self, ref: UnitRef) -> list[UnitRef]:
        """For a neighbour page: the mentioned units whose pages name it ([] for a full page)."""
        return [] if ref in self.full else list(self.neighbours.get(ref, []))


def _order(ref: UnitRef) -> tuple[str, str, int]:
    return (ref.model, ref.layer, ref.channel or 0)


def unit_figure_aliases(requests: Iterable[Request]) -> dict[Request, Request]:
    """The standard feature visualizations of units the author already visualised, each
    mapped to the author's figure (the first single image of that channel that is not
    negative, in page order, whatever its objective) or its negative and diverse variants: a
    unit page and the unit's chips then show the article's image, at the article's steps,
    computed once."""
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


def _connections(
    ctx: RenderServices, ref: UnitRef, direction: str, has_page: Callable[[UnitRef], bool]
) -> dict[str, Any] | None:
    import numpy as np  # here: a site without figures never imports NumPy or Pillow

    from circuitpress.render.images import kernel_heatmap

    result = ctx.result(TopConnectionsRequest(ref=ref, n=CONNECTIONS, direction=direction))
    units = list(result.data.get("units", []))
    if not units:
        return None
    layer = str(result.data.get("layer", ""))
    kernels = result.arrays.get("kernels")
    scale = float(np.abs(kernels).max()) if kernels is not None and kernels.size else None
    norms = shared([float(u.get("norm", 0.0)) for u in units])  # one column: same decimals
    rows = []
    for i, unit in enumerate(units):
        other = UnitRef(ref.model, layer, ((int(unit["channel"]), 1.0),))
        thumb = ctx.thumbnail_url(other)
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
                "url": ctx.unit_url(other) if has_page(other) else None,
                "thumb": thumb,
                "thumb_size": CONNECTION_THUMB,
                "norm": norms[i],
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
    acts = shared([float(a) for a in result.data.get("activation", [])])
    ref = request.ref
    natural = int(images.shape[1])
    out = []
    for i in range(images.shape[0]):
        out.append(
            {
                "url": ctx.image_url(images[i], name=f"{ref.layer}-{ref.unit_text}-{label}{i}"),
                # Positive and negative at the same size, from the image itself (a model's
                # visualizations may be optimised at its own input size).
                "size": display_size(natural),
                "natural": natural,
                "small": grid_size(natural),  # diverse images: a row of units' size
                "pixelated": display_size(natural) > natural,
                "alt": f"{label} feature visualization of {ref}",
                "activation": acts[i] if i < len(acts) else "",
            }
        )
    return out


def unit_page_context(
    ref: UnitRef,
    ctx: RenderServices,
    backlinks: Sequence[dict[str, Any]],
    *,
    reached_from: Sequence[UnitRef] = (),
    has_page: Callable[[UnitRef], bool] | None = None,
) -> dict[str, Any]:
    """Template data for `unit.html`: feature vis (positive, negative, diverse), examples,
    strongest inputs and outputs, and the articles that mention the unit.

    A neighbour page (`reached_from`: the mentioned units whose pages name this one) shows
    what `neighbour_page_requests` planned. `has_page` says which units have a page (linked
    from the connection lists); by default the units with a thumbnail."""
    standard = unit_page_requests(ref)
    positive, negative, diverse = (cast(FeatureVisRequest, r) for r in standard[:3])
    examples = cast(ExamplesRequest, standard[3])
    neighbour = bool(reached_from)
    if neighbour:
        positive = neighbour_thumbnail_request(ref)
    linked = has_page or (lambda other: ctx.thumbnail_url(other) is not None)
    pending: list[str] = []

    def shown(section: str, make: Callable[[], Any], empty: Any) -> Any:
        """A section's data, or `empty` while its result is not computed (a preview, check)."""
        try:
            return make()
        except PendingResult:
            pending.append(section)
            return empty

    def unit_entry(other: UnitRef) -> dict[str, Any]:
        return {
            "name": f"{other.layer}:{other.unit_text}",
            "url": ctx.unit_url(other),
            "thumb": ctx.thumbnail_url(other),
        }

    return {
        "unit": {
            "ref": str(ref),
            "model": ref.model,
            "layer": ref.layer,
            "channel": ref.channel,
            "name": f"{ref.layer}:{ref.unit_text}",
            "title": f"{ref.model}/{ref.layer}:{ref.unit_text}",
        },
        # A language model's unit: token examples and its picture on probe tokens instead.
        "lm": shown("examples", lambda: lm_views.unit_section(ref, ctx, examples, positive), None),
        "positive": shown("positive", lambda: _vis(ctx, positive, "positive"), []),
        "negative": []
        if neighbour
        else shown("negative", lambda: _vis(ctx, negative, "negative"), []),
        "diverse": [] if neighbour else shown("diverse", lambda: _vis(ctx, diverse, "diverse"), []),
        "examples": shown(
            "examples",
            lambda: example_tiles(ctx, ref, examples, PAGE_EXAMPLES, 96),
            [],
        ),
        "inputs": None
        if neighbour
        else shown("inputs", lambda: _connections(ctx, ref, "inputs", linked), None),
        "outputs": None
        if neighbour
        else shown("outputs", lambda: _connections(ctx, ref, "outputs", linked), None),
        "neighbour": neighbour,
        "positive_steps": positive.steps,
        "full_steps": THUMB_STEPS,
        "pending": pending,
        "backlinks": list(backlinks),
        "reached_from": [unit_entry(u) for u in reached_from],
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
