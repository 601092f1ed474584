"""The atlas: every unit of the layers `[atlas] layers` names, like OpenAI Microscope.

Each unit of an atlas layer gets the unit page of a unit an article mentions (feature
visualizations, dataset examples, strongest connections: `units.unit_page_requests`): the
build plans the atlas' units with the mentioned ones (`build/pipeline.py`). Per layer an index at
`atlas/MODEL/LAYER/` shows every unit's thumbnail linking to its page, and `atlas/index.html`
lists the layers. The thumbnails of one layer are feature-vis requests of one group, so they
optimise as one batch (a few on a cluster: analysis/ray_executor.py) and are cached like
everything else.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

from circuitpress.config import CONFIG_NAME, AtlasLayer
from circuitpress.errors import UserError, choices_hint
from circuitpress.extensions import PendingResult, RenderServices
from circuitpress.requests import UnitRef
from circuitpress.structure.unit_views import grid_size

ATLAS_INDEX = "atlas/index.html"


def atlas_path(model: str, layer: str) -> str:
    """Site-relative folder of a layer's atlas page ('atlas/MODEL/LAYER/')."""
    return f"atlas/{model}/{layer}/"


def atlas_units(
    layers: Sequence[AtlasLayer], facts: Mapping[str, Mapping[str, Any]]
) -> dict[AtlasLayer, list[UnitRef]]:
    """Every unit of every atlas layer, by layer; a model or layer the facts do not know is
    an error at its line of circuitpress.toml."""
    out: dict[AtlasLayer, list[UnitRef]] = {}
    for entry in layers:
        if entry.model not in facts:
            raise UserError(
                f"[atlas] names unknown model '{entry.model}'",
                file=CONFIG_NAME,
                line=entry.line,
                hint=choices_hint(entry.model, list(facts)),
            )
        layer = facts[entry.model].get(entry.layer)
        units = int(layer.get("units") or 0) if layer else 0
        if layer is None or layer.get("error") or units <= 0:
            analysable = [n for n, i in facts[entry.model].items() if i.get("units")]
            reason = str(layer.get("error")) if layer and layer.get("error") else None
            raise UserError(
                reason or f"model '{entry.model}' has no layer '{entry.layer}' with units",
                file=CONFIG_NAME,
                line=entry.line,
                hint=choices_hint(entry.layer, analysable),
            )
        # An attention layer's units are its heads: the same pages as `blocks.1.attn:H3`.
        head = bool(layer.get("heads"))
        out[entry] = [
            UnitRef(entry.model, entry.layer, ((c, 1.0),), head=head) for c in range(units)
        ]
    return out


def _thumb(ctx: RenderServices, ref: UnitRef) -> str | None:
    try:
        return ctx.thumbnail_url(ref)
    except PendingResult:
        return None


def layer_page_context(
    entry: AtlasLayer, units: Sequence[UnitRef], ctx: RenderServices, facts: Mapping[str, Any]
) -> dict[str, Any]:
    """Template data of one layer's atlas page: every unit's thumbnail and page link."""
    cells = []
    pending = 0
    for ref in units:
        thumb = _thumb(ctx, ref)
        pending += thumb is None
        cells.append(
            {
                "name": f"{ref.layer}:{ref.unit_text}",
                "channel": ref.channel,
                "url": ctx.unit_url(ref),
                "thumb": thumb,
            }
        )
    info = facts.get(entry.layer, {})
    return {
        "atlas": {
            "model": entry.model,
            "layer": entry.layer,
            "title": f"{entry.model}/{entry.layer}",
            "type": str(info.get("type", "")),
            "shape": info.get("shape"),
            "units": cells,
            "count": len(cells),
            "pending": pending,
            "thumb_size": grid_size(64),
            "index_url": ctx.url(ATLAS_INDEX.removesuffix("index.html")),
        },
        "canonical_url": ctx.url(atlas_path(entry.model, entry.layer)),
    }


def index_context(
    layers: Mapping[AtlasLayer, Sequence[UnitRef]], ctx: RenderServices
) -> dict[str, Any]:
    """Template data of `atlas/index.html`: the layers, each with its unit count and the
    thumbnail of its first unit."""
    rows = []
    for entry, units in layers.items():
        rows.append(
            {
                "title": f"{entry.model}/{entry.layer}",
                "model": entry.model,
                "layer": entry.layer,
                "count": len(units),
                "url": ctx.url(atlas_path(entry.model, entry.layer)),
                "thumbs": [t for t in (_thumb(ctx, u) for u in units[:8]) if t],
            }
        )
    return {
        "atlas": {"layers": rows, "index": True, "thumb_size": 32},
        "canonical_url": ctx.url(ATLAS_INDEX.removesuffix("index.html")),
    }


def atlas_layer_of(
    ref: UnitRef, layers: Iterable[AtlasLayer], url: Callable[[str], str]
) -> dict[str, str] | None:
    """The atlas page of a unit's layer (for a link from its unit page), or None."""
    for entry in layers:
        if (entry.model, entry.layer) == (ref.model, ref.layer):
            return {
                "title": f"{entry.model}/{entry.layer}",
                "url": url(atlas_path(entry.model, entry.layer)),
            }
    return None
