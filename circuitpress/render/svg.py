"""Plots and diagrams as SVG text: line plots, heat maps with a colour bar, kernels, circuits.

Pure Python (no torch, no NumPy needed by callers): every builder takes plain numbers and
strings and returns deterministic SVG text (same input, same bytes, so figures are
content-addressable and golden-testable). Every string from the outside is escaped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from html import escape
from typing import Literal, Mapping, Sequence

# Distill's red/blue: positive weights red, negative blue, zero white.
POSITIVE = (178, 24, 43)
NEGATIVE = (33, 102, 172)
# A perceptually ordered sequential palette (viridis stops) for responses.
_VIRIDIS = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
# Series colours of line plots. Each element also carries the class cp-plot-color-N: the theme's
# CSS (which beats presentation attributes) swaps in colours that read on a dark background;
# the attributes remain for SVG shown outside the theme.
PALETTE = ("#b2182b", "#2166ac", "#1b7837", "#762a83", "#b35806")
FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\""


def num(value: float) -> str:
    """A compact, deterministic number for attributes and labels."""
    if value != value or math.isinf(value):
        return "0"
    text = f"{value:.4g}"
    return "0" if text == "-0" else text


def attr(value: object) -> str:
    return escape(str(value), quote=True)


def _hex(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def _mix(a: Sequence[float], b: Sequence[float], t: float) -> tuple[float, ...]:
    return tuple(x + (y - x) * t for x, y in zip(a, b, strict=True))


def diverging(value: float, scale: float) -> str:
    """Red for positive, blue for negative, white for zero; |value| >= scale is full colour."""
    t = 0.0 if scale <= 0 else max(-1.0, min(1.0, value / scale))
    end = POSITIVE if t >= 0 else NEGATIVE
    return _hex(_mix((255, 255, 255), end, abs(t)))


def sequential(t: float) -> str:
    """Viridis-like colour of t in 0..1."""
    t = max(0.0, min(1.0, t if t == t else 0.0))
    pos = t * (len(_VIRIDIS) - 1)
    i = min(int(pos), len(_VIRIDIS) - 2)
    return _hex(_mix(_VIRIDIS[i], _VIRIDIS[i + 1], pos - i))


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering lo..hi (1, 2, 5 x 10^k steps)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    return ticks


def _svg_open(
    width: float, height: float, cls: str, label: str, role: str | None = "img", extra: str = ""
) -> str:
    # Pictures are role="img"; a diagram with links inside keeps svg's own role (a graphics
    # document), so its links remain reachable by keyboard and assistive technology. ("group"
    # is not an allowed role of <svg> in HTML: the Nu checker rejects it.)
    role_attr = f' role="{role}"' if role else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{attr(cls)}" '
        f'viewBox="0 0 {num(width)} {num(height)}" '
        f'width="{num(width)}" height="{num(height)}"{role_attr} aria-label="{attr(label)}" '
        f'{FONT} font-size="11"{extra}>'
    )


# --- kernels ------------------------------------------------------------------------------------


def kernel_svg(
    kernel: Sequence[Sequence[float]], scale: float, *, cell: float = 12, label: str = "kernel"
) -> str:
    """A kernel as a grid of red/blue cells on the symmetric scale [-scale, scale]."""
    rows = [list(r) for r in kernel]
    h, w = len(rows), len(rows[0]) if rows else 0
    parts = [_svg_open(w * cell, h * cell, "cp-kernel", label)]
    for y, row in enumerate(rows):
        for x, v in enumerate(row):
            parts.append(
                f'<rect x="{num(x * cell)}" y="{num(y * cell)}" '
                f'width="{num(cell)}" height="{num(cell)}" '
                f'fill="{diverging(v, scale)}"><title>{num(v)}</title></rect>'
            )
    parts.append("</svg>")
    return "".join(parts)


def colorbar_svg(
    lo: float, hi: float, *, diverge: bool, width: float = 160, label: str = ""
) -> str:
    """A horizontal colour bar with end and middle values."""
    steps = 32
    height = 34
    parts = [_svg_open(width, height, "cp-colorbar", f"colour scale {label}".strip())]
    bar_w = width - 20
    for i in range(steps):
        t = (i + 0.5) / steps
        color = diverging(lo + (hi - lo) * t, max(abs(lo), abs(hi))) if diverge else sequential(t)
        parts.append(
            f'<rect x="{num(10 + bar_w * i / steps)}" y="2" '
            f'width="{num(bar_w / steps + 0.5)}" height="10" fill="{color}"/>'
        )
    # The end labels grow inwards from the bar's ends: centred on them, "-65.22" lost its sign
    # outside the drawing.
    ends = ((0.0, lo, "start"), (0.5, (lo + hi) / 2, "middle"), (1.0, hi, "end"))
    # Three significant digits, more when a narrow range would make the labels equal.
    digits = next(
        (d for d in range(3, 10) if len({f"{v:.{d}g}" for _, v, _ in ends}) == 3 or lo == hi), 10
    )
    # The labels take the page's text colour (currentColor of inline SVG): without a fill, SVG
    # text is black, unreadable on a dark theme's background.
    parts.append('<g class="cp-colorbar-labels" fill="currentColor">')
    for t, v, anchor in ends:
        label = f"{v:.{digits}g}"
        label = "0" if label == "-0" else label
        parts.append(
            f'<text x="{num(10 + bar_w * t)}" y="25" text-anchor="{anchor}">{attr(label)}</text>'
        )
    parts.append("</g></svg>")
    return "".join(parts)


# --- plots --------------------------------------------------------------------------------------


def _axis_titles(
    x_title: str, x_at: tuple[float, float], y_title: str, y_at: tuple[float, float]
) -> str:
    """The x title centred at `x_at`, the y title rotated to read upwards, centred at `y_at`."""
    return (
        f'<text class="cp-axis-label" x="{num(x_at[0])}" y="{num(x_at[1])}" '
        f'text-anchor="middle" fill="currentColor">{attr(x_title)}</text>'
        f'<text class="cp-axis-label" '
        f'transform="translate({num(y_at[0])} {num(y_at[1])}) rotate(-90)" '
        f'text-anchor="middle" fill="currentColor">{attr(y_title)}</text>'
    )


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float]


def line_plot_svg(
    x: Sequence[float],
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    width: float = 480,
    height: float = 260,
    x_ticks: Sequence[tuple[float, str]] | None = None,
    label: str = "line plot",
) -> str:
    """Lines over shared x values, with axes, ticks, axis labels and a legend (2+ series)."""
    left, right, top, bottom = 56, 14, 12, 42
    pw, ph = width - left - right, height - top - bottom
    xs = list(map(float, x))
    all_y = [float(v) for s in series for v in s.values]
    ylo, yhi = (min(all_y), max(all_y)) if all_y else (0.0, 1.0)
    ylo = min(ylo, 0.0) if ylo >= 0 and ylo < 0.25 * (yhi - ylo) + 1e-12 else ylo
    if yhi - ylo < 1e-12:
        ylo, yhi = ylo - 1.0, yhi + 1.0
    xlo, xhi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if xhi - xlo < 1e-12:
        xlo, xhi = xlo - 1.0, xhi + 1.0

    def px(v: float) -> float:
        return left + (v - xlo) / (xhi - xlo) * pw

    def py(v: float) -> float:
        return top + (1 - (v - ylo) / (yhi - ylo)) * ph

    parts = [_svg_open(width, height, "cp-plot cp-line-plot", label)]
    parts.append('<g class="cp-axis" stroke="currentColor" stroke-opacity="0.5" fill="none">')
    parts.append(f'<path d="M{num(left)},{num(top)}V{num(top + ph)}H{num(left + pw)}"/></g>')
    for t in nice_ticks(ylo, yhi):
        y = py(t)
        parts.append(
            f'<line class="cp-grid" x1="{num(left)}" x2="{num(left + pw)}" '
            f'y1="{num(y)}" y2="{num(y)}" '
            f'stroke="currentColor" stroke-opacity="0.12"/>'
            f'<text x="{num(left - 6)}" y="{num(y + 4)}" text-anchor="end" '
            f'fill="currentColor">{attr(num(t))}</text>'
        )
    ticks = x_ticks if x_ticks is not None else [(t, num(t)) for t in nice_ticks(xlo, xhi)]
    for t, text in ticks:
        xx = px(float(t))
        parts.append(
            f'<line x1="{num(xx)}" x2="{num(xx)}" y1="{num(top + ph)}" y2="{num(top + ph + 4)}" '
            f'stroke="currentColor" stroke-opacity="0.5"/>'
            f'<text x="{num(xx)}" y="{num(top + ph + 16)}" text-anchor="middle" '
            f'fill="currentColor">{attr(text)}</text>'
        )
    parts.append(_axis_titles(x_label, (left + pw / 2, height - 6), y_label, (14, top + ph / 2)))
    for i, s in enumerate(series):
        slot = i % len(PALETTE)
        color = PALETTE[slot]
        # A series shorter or longer than x is drawn over the x values both have.
        pts = " ".join(
            f"{num(px(a))},{num(py(float(b)))}" for a, b in zip(xs, s.values, strict=False)
        )
        parts.append(
            f'<polyline class="cp-series cp-plot-color-{slot}" data-series="{attr(s.label)}" '
            f'points="{pts}" '
            f'fill="none" stroke="{color}" stroke-width="2"/>'
        )
        for a, b in zip(xs, s.values, strict=False):
            parts.append(
                f'<circle class="cp-plot-color-{slot}" cx="{num(px(a))}" cy="{num(py(float(b)))}" '
                f'r="2.5" fill="{color}">'
                f"<title>{attr(num(a))}: {attr(num(float(b)))}</title></circle>"
            )
        if len(series) > 1:
            parts.append(
                f'<text class="cp-plot-color-{slot}" x="{num(left + pw - 4)}" '
                f'y="{num(top + 12 + 14 * i)}" text-anchor="end" '
                f'fill="{color}">{attr(s.label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def heatmap_svg(
    values: Sequence[Sequence[float]],
    *,
    x_labels: Sequence[str],
    y_labels: Sequence[str],
    x_title: str,
    y_title: str,
    diverge: bool = False,
    cell: float = 18,
    label: str = "heat map",
) -> str:
    """A grid of values (rows = y) with labelled axes and a colour bar below.

    Diverging maps use one symmetric scale around zero; sequential maps span min..max."""
    rows = [[float(v) for v in r] for r in values]
    flat = [v for r in rows for v in r] or [0.0]
    if diverge:
        hi = max(abs(v) for v in flat) or 1.0
        lo = -hi
    else:
        lo, hi = min(flat), max(flat)
        if hi - lo < 1e-12:
            hi = lo + 1.0
    h, w = len(rows), len(rows[0]) if rows else 0
    left, top = 64, 8
    label_every_x = max(1, math.ceil(len(x_labels) / 12))
    label_every_y = max(1, math.ceil(len(y_labels) / 12))
    width = left + w * cell + 10
    height = top + h * cell + 96
    parts = [_svg_open(width, height, "cp-plot cp-heatmap", label)]
    for y, row in enumerate(rows):
        for x, v in enumerate(row):
            color = diverging(v, hi) if diverge else sequential((v - lo) / (hi - lo))
            parts.append(
                f'<rect x="{num(left + x * cell)}" y="{num(top + y * cell)}" '
                f'width="{num(cell)}" height="{num(cell)}" fill="{color}">'
                f"<title>{attr(y_labels[y] if y < len(y_labels) else y)}, "
                f"{attr(x_labels[x] if x < len(x_labels) else x)}: {attr(num(v))}</title></rect>"
            )
    for i, text in enumerate(y_labels[:h]):
        if i % label_every_y == 0:
            parts.append(
                f'<text x="{num(left - 4)}" y="{num(top + (i + 0.5) * cell + 4)}" '
                f'text-anchor="end" fill="currentColor">{attr(text)}</text>'
            )
    base = top + h * cell
    for i, text in enumerate(x_labels[:w]):
        if i % label_every_x == 0:
            xx = left + (i + 0.5) * cell
            parts.append(
                f'<text x="{num(xx)}" y="{num(base + 12)}" text-anchor="middle" '
                f'fill="currentColor">{attr(text)}</text>'
            )
    parts.append(
        _axis_titles(x_title, (left + w * cell / 2, base + 28), y_title, (12, top + h * cell / 2))
    )
    bar = colorbar_svg(lo, hi, diverge=diverge, width=min(220.0, max(120.0, w * cell)))
    parts.append(f'<g transform="translate({num(left)} {num(base + 40)})">{bar}</g>')
    parts.append("</svg>")
    return "".join(parts)


# --- circuit diagrams ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """A unit in a circuit diagram. `level` 0 is the output unit; inputs sit at higher levels."""

    id: str
    label: str
    level: int
    href: str | None = None
    image: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Edge:
    """A connection `src` -> `dst` with signed strength (sign = excitatory or inhibitory)."""

    src: str
    dst: str
    weight: float
    data: Mapping[str, str] = field(default_factory=dict)
    title: str = ""


_DATA_KEY = re.compile(r"^[a-z][a-z0-9-]*$")


def _data_attrs(data: Mapping[str, str]) -> str:
    # Escaping cannot make a key safe (a space would start a new attribute): keys must be names.
    bad = [k for k in data if not _DATA_KEY.match(k)]
    if bad:
        raise ValueError(
            f"data attribute name {bad[0]!r} is not lower-case letters, digits and '-'"
        )
    return "".join(f' data-{k}="{attr(v)}"' for k, v in sorted(data.items()))


# How far a diagram may shrink to fit its column: labels of 12 units stay over 10 px tall and
# 64-unit thumbnails over 50 px. Narrower than that, the figure shows its tall layout (or
# scrolls sideways when it has none): a phone never gets a diagram shrunk to a smudge.
MIN_SCALE = 0.85
# The text column of a 390 px phone (the theme's grid: 390 - 2 x 8 margin - 9 x 8 gaps + ...
# = 358 px). A wide layout whose smallest size fits it needs no tall alternative.
PHONE_COLUMN = 358.0
# Column widths below which a diagram switches to its tall layout: the figure names the
# smallest step its wide layout fits (CSS cannot compare a width with a number carried by the
# element, so the steps are fixed; circuits.css has a phone media query for each, and
# circuit.js compares the measured column with the step at any width).
FIT_STEPS = (360, 400, 440, 480, 560, 640, 720, 800, 880, 960, 1040, 1120, 1200, 1360, 1520, 1680)

Layout = Literal["wide", "tall"]


@dataclass(frozen=True)
class _Placed:
    width: float
    height: float
    pos: dict[str, tuple[float, float]]


def _place(nodes: Sequence[Node], layout: Layout, node_size: float) -> _Placed:
    """Top-left corner of every node's thumbnail. Wide: one row per level, inputs above, the
    output at the bottom. Tall: one column per level, inputs on the left, the output on the
    right (a phone scrolls down, not sideways). Each node sits in the middle of its share of
    the row (column), so a parent stands over the inputs found after it."""
    levels: dict[int, list[Node]] = {}
    for n in nodes:
        levels.setdefault(n.level, []).append(n)
    depth = max(levels) if levels else 0
    widest = max((len(v) for v in levels.values()), default=1)
    label_h = 18.0
    pos: dict[str, tuple[float, float]] = {}
    if layout == "wide":
        gap_x, gap_y = 26.0, 70.0
        width = widest * (node_size + gap_x) + gap_x
        height = (depth + 1) * (node_size + label_h + gap_y) - gap_y + 16
        for level, members in levels.items():
            share = (width - gap_x) / len(members)
            y = 8 + (depth - level) * (node_size + label_h + gap_y)
            for i, n in enumerate(members):
                pos[n.id] = (gap_x / 2 + (i + 0.5) * share - node_size / 2, y)
        return _Placed(width, height, pos)
    # Columns as far apart as a phone's column allows (edges need room to fan out), at least
    # 28 units: three levels back still fit 358 px.
    gap_y = 12.0
    spare = PHONE_COLUMN - 8 - 16 - (depth + 1) * node_size
    gap_x = max(28.0, min(100.0, spare / depth)) if depth else 0.0
    width = (depth + 1) * node_size + depth * gap_x + 16
    pitch = node_size + label_h + gap_y
    height = widest * pitch - gap_y + 16
    for level, members in levels.items():
        share = (height - 16 + gap_y) / len(members)
        x = 8 + (depth - level) * (node_size + gap_x)
        for i, n in enumerate(members):
            pos[n.id] = (x, 8 + (i + 0.5) * share - (node_size + label_h + gap_y) / 2)
    return _Placed(width, height, pos)


def circuit_size(
    nodes: Sequence[Node], layout: Layout = "wide", node_size: float = 64
) -> tuple[float, float]:
    """(width, height) of the diagram `circuit_svg` draws for these nodes."""
    placed = _place(nodes, layout, node_size)
    return placed.width, placed.height


def circuit_svg(
    nodes: Sequence[Node],
    edges: Sequence[Edge],
    *,
    node_size: float = 64,
    label: str = "circuit",
    layout: Layout = "wide",
    css_class: str = "",
) -> str:
    """Inputs above and the output unit at the bottom (wide), or inputs left and the output
    right (tall); curved edges red (+) / blue (-), their width proportional to strength. Every
    node with an href is an SVG link (works without JS and with the keyboard); edges are
    focusable groups carrying their data attributes for the script. Colours come from classes
    the theme restyles (dark mode); the attributes are the light theme's."""
    placed = _place(nodes, layout, node_size)
    pos, width, height = placed.pos, placed.width, placed.height
    strongest = max((abs(e.weight) for e in edges), default=1.0) or 1.0
    # Never narrower than MIN_SCALE of its size: the figure's container scrolls instead.
    style = f' style="min-width:{num(math.ceil(width * MIN_SCALE))}px"'
    cls = f"cp-circuit-svg cp-circuit-{layout}" + (f" {css_class}" if css_class else "")
    parts = [_svg_open(width, height, cls, label, role=None, extra=style)]
    parts.append('<g class="cp-edges">')
    label_h = 18.0
    for e in edges:
        if e.src not in pos or e.dst not in pos:
            continue
        sx, sy = pos[e.src]
        dx, dy = pos[e.dst]
        if layout == "wide":
            x1, y1 = sx + node_size / 2, sy + node_size + label_h
            x2, y2 = dx + node_size / 2, dy
            mid = (y1 + y2) / 2
            d = (
                f"M{num(x1)},{num(y1)}C{num(x1)},{num(mid)} {num(x2)},{num(mid)} "
                f"{num(x2)},{num(y2)}"
            )
        else:
            x1, y1 = sx + node_size, sy + node_size / 2
            x2, y2 = dx, dy + node_size / 2
            mid = (x1 + x2) / 2
            d = (
                f"M{num(x1)},{num(y1)}C{num(mid)},{num(y1)} {num(mid)},{num(y2)} "
                f"{num(x2)},{num(y2)}"
            )
        color = _hex(POSITIVE) if e.weight >= 0 else _hex(NEGATIVE)
        stroke = 1.0 + 7.0 * abs(e.weight) / strongest
        sign = "positive" if e.weight >= 0 else "negative"
        title = e.title or f"{e.src} to {e.dst}"
        parts.append(
            f'<g class="cp-edge cp-edge-{sign}" tabindex="0" role="button" '
            f'aria-label="{attr(title)}"'
            f' data-src="{attr(e.src)}" data-dst="{attr(e.dst)}" data-weight="{num(e.weight)}"'
            f"{_data_attrs(e.data)}>"
            f"<title>{attr(title)}</title>"
            f'<path class="cp-edge-hit" d="{d}" fill="none" stroke="transparent" '
            f'stroke-width="{num(max(12.0, stroke + 8))}"/>'
            f'<path class="cp-edge-line" d="{d}" fill="none" stroke="{color}" '
            f'stroke-opacity="0.75" stroke-width="{num(stroke)}"/>'
            "</g>"
        )
    parts.append('</g><g class="cp-nodes">')
    for n in nodes:
        x, y = pos[n.id]
        inner = (
            f"<title>{attr(n.label)}</title>"
            f'<rect class="cp-node-frame" x="{num(x - 2)}" y="{num(y - 2)}" '
            f'width="{num(node_size + 4)}" height="{num(node_size + 4)}" rx="4" fill="none" '
            f'stroke="currentColor" stroke-opacity="0.3"/>'
        )
        if n.image:
            inner += (
                f'<image href="{attr(n.image)}" x="{num(x)}" y="{num(y)}" '
                f'width="{num(node_size)}" height="{num(node_size)}" '
                f'preserveAspectRatio="xMidYMid slice"/>'
            )
        else:
            inner += (
                f'<rect x="{num(x)}" y="{num(y)}" '
                f'width="{num(node_size)}" height="{num(node_size)}" '
                f'fill="currentColor" fill-opacity="0.08"/>'
            )
        inner += (
            f'<text class="cp-node-label" x="{num(x + node_size / 2)}" '
            f'y="{num(y + node_size + 14)}" text-anchor="middle" font-size="12" '
            f'fill="currentColor">{attr(n.label)}</text>'
        )
        common = (
            f'class="cp-node" data-node="{attr(n.id)}" data-level="{n.level}"{_data_attrs(n.data)}'
        )
        if n.href:
            parts.append(
                f'<a {common} href="{attr(n.href)}" aria-label="{attr(n.label)}">{inner}</a>'
            )
        else:
            parts.append(f'<g {common} tabindex="0" aria-label="{attr(n.label)}">{inner}</g>')
    parts.append("</g></svg>")
    return "".join(parts)


def fit_step(width: float) -> int | None:
    """The smallest of FIT_STEPS that holds `width` at MIN_SCALE (None: wider than all)."""
    need = width * MIN_SCALE
    return next((step for step in FIT_STEPS if step >= need), None)


def circuit_diagram(
    nodes: Sequence[Node], edges: Sequence[Edge], *, node_size: float = 64, label: str = "circuit"
) -> str:
    """The wide diagram, and where it would not fit a phone's column at MIN_SCALE a tall one
    after it: circuits.css (on phones) and circuit.js (at any width) show the tall one in a
    column narrower than the wide one's `data-fits` step; neither is shrunk past MIN_SCALE."""
    wide_w, _ = circuit_size(nodes, "wide", node_size)
    if wide_w * MIN_SCALE <= PHONE_COLUMN:
        return circuit_svg(nodes, edges, node_size=node_size, label=label)
    step = fit_step(wide_w)
    wide = circuit_svg(nodes, edges, node_size=node_size, label=label)
    # On the wide <svg> itself: the stylesheet's rules select it and its next sibling by it.
    wide = wide.replace("<svg ", f'<svg data-fits="{step if step else "never"}" ', 1)
    tall = circuit_svg(nodes, edges, node_size=node_size, label=label, layout="tall")
    return wide + tall
