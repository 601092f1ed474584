"""A 2-D tuning heat map whose axes carry their own stimulus thumbnails.

Rows are the first swept parameter, columns the second. The thumbnails of the first parameter
run down the left edge, beside the rows they belong to; those of the second run along the
bottom, under their columns: a reader sees which stimulus each row and column is without
reading the tick labels. Colours, text and the colour bar come from `render.svg`, so the
theme's styling of plots (dark mode included) applies unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from circuitpress.render.svg import FONT, attr, colorbar_svg, num, sequential


@dataclass(frozen=True)
class AxisStimuli:
    """One axis: its title, a tick label per value, and a thumbnail URL per value (None where
    there is no picture)."""

    title: str
    labels: Sequence[str]
    images: Sequence[str | None]


def every(count: int, cell: float, thumb: float) -> int:
    """Show every k-th thumbnail so that neighbours never overlap (k cells >= one thumbnail)."""
    return max(1, math.ceil((thumb + 2) / cell)) if count else 1


def tuning_heatmap_svg(
    values: Sequence[Sequence[float]],
    rows: AxisStimuli,
    columns: AxisStimuli,
    *,
    cell: float = 34,
    thumb: float = 30,
    label: str = "heat map",
    value_text: Sequence[Sequence[str]] | None = None,
) -> str:
    """`values[i][j]`: the response at row i (first parameter), column j (second). Each cell's
    <title> names both stimuli and the response (`value_text` when given, else `num`)."""
    grid = [[float(v) for v in r] for r in values]
    flat = [v for r in grid for v in r] or [0.0]
    lo, hi = min(flat), max(flat)
    if hi - lo < 1e-12:
        hi = lo + 1.0
    h, w = len(grid), len(grid[0]) if grid else 0
    title_w, label_w, gap = 18.0, 44.0, 4.0
    left = title_w + thumb + gap + label_w
    top = 8.0
    base = top + h * cell
    label_y = base + 13
    thumbs_y = base + 18
    x_title_y = thumbs_y + thumb + 16
    bar_y = x_title_y + 8
    # Room for the x title, centred under the grid (about 6.5 px a character at 11 px).
    width = max(left + w * cell + 10, left + w * cell / 2 + 3.3 * len(columns.title) + 10)
    height = bar_y + 36
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cp-plot cp-heatmap cp-tuning-heatmap" '
        f'viewBox="0 0 {num(width)} {num(height)}" width="{num(width)}" height="{num(height)}" '
        f'role="img" aria-label="{attr(label)}" {FONT} font-size="11">'
    ]
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            shown = value_text[i][j] if value_text is not None else num(v)
            where = f"{rows.title} {_at(rows.labels, i)}, {columns.title} {_at(columns.labels, j)}"
            parts.append(
                f'<rect x="{num(left + j * cell)}" y="{num(top + i * cell)}" '
                f'width="{num(cell)}" height="{num(cell)}" '
                f'fill="{sequential((v - lo) / (hi - lo))}">'
                f"<title>{attr(where)}: {attr(shown)}</title></rect>"
            )
    # The first parameter: labels and thumbnails to the left of the rows they name.
    step_rows = max(every(h, cell, thumb), math.ceil(h / 12))
    for i in range(0, h, step_rows):
        cy = top + (i + 0.5) * cell
        parts.append(
            f'<text x="{num(left - 4)}" y="{num(cy + 4)}" text-anchor="end" '
            f'fill="currentColor">{attr(_at(rows.labels, i))}</text>'
        )
        url = _at(rows.images, i) or None
        if url:
            parts.append(
                f'<image class="cp-stimulus cp-stimulus-row" data-axis="rows" data-index="{i}" '
                f'href="{attr(url)}" x="{num(title_w)}" y="{num(cy - thumb / 2)}" '
                f'width="{num(thumb)}" height="{num(thumb)}">'
                f"<title>{attr(rows.title)} {attr(_at(rows.labels, i))}</title></image>"
            )
    # The second parameter: labels and thumbnails under the columns they name.
    step_cols = max(every(w, cell, thumb), math.ceil(w / 12))
    for j in range(0, w, step_cols):
        cx = left + (j + 0.5) * cell
        parts.append(
            f'<text x="{num(cx)}" y="{num(label_y)}" text-anchor="middle" '
            f'fill="currentColor">{attr(_at(columns.labels, j))}</text>'
        )
        url = _at(columns.images, j) or None
        if url:
            parts.append(
                f'<image class="cp-stimulus cp-stimulus-column" data-axis="columns" '
                f'data-index="{j}" href="{attr(url)}" x="{num(cx - thumb / 2)}" '
                f'y="{num(thumbs_y)}" width="{num(thumb)}" height="{num(thumb)}">'
                f"<title>{attr(columns.title)} {attr(_at(columns.labels, j))}</title></image>"
            )
    parts.append(
        f'<text class="cp-axis-label" x="{num(left + w * cell / 2)}" y="{num(x_title_y)}" '
        f'text-anchor="middle" fill="currentColor">{attr(columns.title)}</text>'
        f'<text class="cp-axis-label" transform="translate({num(12)} {num(top + h * cell / 2)}) '
        f'rotate(-90)" text-anchor="middle" fill="currentColor">{attr(rows.title)}</text>'
    )
    bar = colorbar_svg(lo, hi, diverge=False, width=min(220.0, max(120.0, w * cell)))
    parts.append(f'<g transform="translate({num(left)} {num(bar_y)})">{bar}</g>')
    parts.append("</svg>")
    return "".join(parts)


def _at(items: Sequence[str | None], i: int) -> str:
    return (items[i] or "") if i < len(items) else ""
