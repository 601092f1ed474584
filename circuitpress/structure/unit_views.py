"""HTML pieces that show one unit, shared by `{feature}`, `{examples}`, `{unit}` and unit pages."""

from __future__ import annotations

import html
import math
from typing import Any, Sequence

from circuitpress.extensions import RenderServices
from circuitpress.render.numbers import fmt, shared
from circuitpress.requests import ExamplesRequest, UnitRef

e = html.escape

__all__ = ["display_size", "grid_size", "img", "fmt", "example_tiles", "tiles_html"]

FIGURE_PIXELS = 192  # a single feature visualization is shown at least this large
GRID_PIXELS = 128  # a unit in a grid of units
PIXELATED = "cp-pixelated"  # CSS: image-rendering: pixelated


def _at_least(size: int, pixels: int) -> int:
    # A whole multiple of the image's own size: every pixel of the optimised image becomes
    # the same number of screen pixels, so the upscaled picture stays crisp and even.
    return size * max(1, math.ceil(pixels / max(1, size)))


def display_size(size: int) -> int:
    """How large a feature visualization of `size` pixels is shown on its own (a figure, the
    unit page): the smallest whole multiple of `size` of at least 192 px (64 -> 192,
    224 -> 224). The size comes from the image, so a model whose visualizations are optimised
    at its own input size is shown at that size."""
    return _at_least(size, FIGURE_PIXELS)


def grid_size(size: int) -> int:
    """The size of one unit in a grid of units: a whole multiple of at least 128 px."""
    return _at_least(size, GRID_PIXELS)


def img(
    src: str,
    size: tuple[int, int],
    alt: str,
    cls: str = "",
    lazy: bool = False,
    natural: tuple[int, int] | None = None,
) -> str:
    """An <img> shown at `size` (height, width). With the image's `natural` size, an image
    shown larger than it is gets `image-rendering: pixelated` (crisp, not blurred)."""
    classes = [c for c in cls.split() if c]
    if natural is not None and (size[0] > natural[0] or size[1] > natural[1]):
        classes.append(PIXELATED)
    attrs = f' class="{" ".join(classes)}"' if classes else ""
    loading = ' loading="lazy"' if lazy else ""
    return (
        f'<img{attrs} src="{e(src)}" width="{size[1]}" height="{size[0]}" alt="{e(alt)}"{loading}>'
    )


def example_tiles(
    ctx: RenderServices, ref: UnitRef, request: ExamplesRequest, limit: int, display: int
) -> list[dict[str, Any]]:
    """Overlay images (activation heatmap over the crop) with their values, as template data."""
    from circuitpress.render.images import overlay  # NumPy and Pillow: only with results

    result = ctx.result(request)
    images, heats = result.arrays["images"], result.arrays["heatmaps"]
    values = list(result.data.get("values", []))
    indices = list(result.data.get("indices", []))
    count = min(limit, len(values))
    texts = shared([float(v) for v in values[:count]])  # one column of numbers: same decimals
    tiles = []
    for i in range(count):
        picture = overlay(images[i], heats[i])
        url = ctx.image_url(picture, name=f"{ref.layer}-{ref.unit_text}-ex{i}")
        h, w = picture.shape[:2]
        scale = display / max(h, w)
        tiles.append(
            {
                "url": url,
                "width": max(1, round(w * scale)),
                "height": max(1, round(h * scale)),
                "value": texts[i],
                "natural": (h, w),
                "index": int(indices[i]) if i < len(indices) else None,
                "alt": (
                    f"dataset example {indices[i] if i < len(indices) else i} of {ref}, "
                    f"activation {texts[i]}"
                ),
            }
        )
    return tiles


def tiles_html(tiles: Sequence[dict[str, Any]], cls: str) -> str:
    parts = []
    for t in tiles:
        picture = img(
            t["url"], (t["height"], t["width"]), t["alt"], lazy=True, natural=t.get("natural")
        )
        parts.append(
            f'<span class="{cls}">{picture}'
            f'<span class="cp-example-value">{e(t["value"])}</span></span>'
        )
    return "".join(parts)
