"""HTML pieces that show one unit, shared by `{feature}`, `{examples}`, `{unit}` and unit pages."""

from __future__ import annotations

import html
from typing import Any, Sequence

from circuitpress.extensions import RenderServices
from circuitpress.render.images import overlay
from circuitpress.requests import ExamplesRequest, UnitRef

e = html.escape


def display_size(size: int) -> int:
    """Small visualizations are shown enlarged (the browser interpolates smoothly)."""
    return size * 2 if size < 128 else size


def img(src: str, size: tuple[int, int], alt: str, cls: str = "", lazy: bool = False) -> str:
    attrs = f' class="{cls}"' if cls else ""
    loading = ' loading="lazy"' if lazy else ""
    return (
        f'<img{attrs} src="{e(src)}" width="{size[1]}" height="{size[0]}" alt="{e(alt)}"{loading}>'
    )


def fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def example_tiles(
    ctx: RenderServices, ref: UnitRef, request: ExamplesRequest, limit: int, display: int
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
                "value": fmt(float(values[i])),
                "index": int(indices[i]) if i < len(indices) else None,
                "alt": (
                    f"dataset example {indices[i] if i < len(indices) else i} of {ref}, "
                    f"activation {fmt(float(values[i]))}"
                ),
            }
        )
    return tiles


def tiles_html(tiles: Sequence[dict[str, Any]], cls: str) -> str:
    parts = []
    for t in tiles:
        picture = img(t["url"], (t["height"], t["width"]), t["alt"], lazy=True)
        parts.append(
            f'<span class="{cls}">{picture}'
            f'<span class="cp-example-value">{e(t["value"])}</span></span>'
        )
    return "".join(parts)
