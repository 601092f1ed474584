"""Procedural images of what early vision cares about, and synthetic stimuli for analyses.

NumPy only (no torch, no download), so fingerprints and users can import it freely. Every shape is
drawn as an antialiased distance field, so image `i` of a dataset depends only on `(seed, i)`:
any slice can be regenerated on its own (`generate_images(start, stop, seed)`) and the bytes are
identical in every run.

Geometry conventions (shared by the dataset and the stimuli):
- Coordinates are pixels, x to the right, y downwards; a pixel's centre is at (x + 0.5, y + 0.5).
- An *orientation* `angle` (radians) is the direction (cos a, -sin a): 0 is horizontal, pi/2 is
  vertical, and angles grow counter-clockwise as the reader sees the image.
- `colors` is (background, foreground) as RGB triples in 0..1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

# Bump whenever any drawing code changes the pixels: dataset fingerprints (and so every cached
# analysis that read the dataset) depend on it.
GENERATOR_VERSION = "1"

RGB = tuple[float, float, float]
Colors = tuple[Sequence[float], Sequence[float]]
_BW: Colors = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


# --- drawing primitives --------------------------------------------------------------------------


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates, each [size, size] float64."""
    c = np.arange(size, dtype=np.float64) + 0.5
    return np.meshgrid(c, c, indexing="xy")  # (x, y)


def _coverage(distance: np.ndarray, half_width: float) -> np.ndarray:
    """Antialiased coverage of a stroke: 1 inside, a one-pixel linear ramp at the border."""
    return np.clip(half_width + 0.5 - distance, 0.0, 1.0)


def _polyline_distance(size: int, points: np.ndarray, reach: float = math.inf) -> np.ndarray:
    """Distance of every pixel centre to a polyline given as [n, 2] (x, y) points.

    Pixels farther than `reach` from the polyline's bounding box get +inf instead of their exact
    distance: strokes only need distances up to their half width, and skipping the rest makes
    drawing thin shapes several times faster.
    """
    out = np.full((size, size), np.inf)
    x0, y0 = np.floor(points.min(axis=0) - reach).astype(int) if math.isfinite(reach) else (0, 0)
    x1, y1 = (
        np.ceil(points.max(axis=0) + reach).astype(int) if math.isfinite(reach) else (size, size)
    )
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(size, x1 + 1), min(size, y1 + 1)
    if x0 >= x1 or y0 >= y1:
        return out
    cx = np.arange(x0, x1, dtype=np.float64) + 0.5
    cy = np.arange(y0, y1, dtype=np.float64) + 0.5
    x, y = np.meshgrid(cx, cy, indexing="xy")
    p = np.stack([x.ravel(), y.ravel()], axis=1)[:, None, :]  # [P, 1, 2]
    a, b = points[:-1][None], points[1:][None]  # [1, S, 2]
    ab = b - a
    denom = np.maximum((ab**2).sum(-1), 1e-12)
    t = np.clip(((p - a) * ab).sum(-1) / denom, 0.0, 1.0)
    d = np.sqrt((((a + t[..., None] * ab) - p) ** 2).sum(-1))
    out[y0:y1, x0:x1] = d.min(axis=1).reshape(y1 - y0, x1 - x0)
    return out


def _stroke(size: int, points: np.ndarray, half_width: float) -> np.ndarray:
    """Antialiased coverage of a polyline stroked with `half_width`."""
    return _coverage(_polyline_distance(size, points, reach=half_width + 2.0), half_width)


def _polygon_inside(size: int, points: np.ndarray, supersample: int = 4) -> np.ndarray:
    """Antialiased fill of a closed polygon (even-odd rule), by supersampling."""
    n = size * supersample
    c = (np.arange(n, dtype=np.float64) + 0.5) / supersample
    x, y = np.meshgrid(c, c, indexing="xy")
    px, py = x.ravel()[:, None], y.ravel()[:, None]
    a = points
    b = np.roll(points, -1, axis=0)
    ax, ay, bx, by = a[:, 0][None], a[:, 1][None], b[:, 0][None], b[:, 1][None]
    crosses = (ay > py) != (by > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        xcross = ax + (py - ay) * (bx - ax) / (by - ay)
    inside = (crosses & (px < xcross)).sum(axis=1) % 2 == 1
    fine = inside.reshape(n, n).astype(np.float64)
    return fine.reshape(size, supersample, size, supersample).mean(axis=(1, 3))


def _compose(mask: np.ndarray, colors: Colors) -> np.ndarray:
    """Blend foreground over background by a coverage mask -> float32 [H, W, 3] in 0..1."""
    bg = np.asarray(colors[0], dtype=np.float64)
    fg = np.asarray(colors[1], dtype=np.float64)
    img = bg[None, None, :] * (1.0 - mask[..., None]) + fg[None, None, :] * mask[..., None]
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _arc_points(
    center: tuple[float, float], radius: float, start: float, span: float
) -> np.ndarray:
    """Points of a circular arc (angles in the reader's counter-clockwise convention)."""
    n = max(8, min(256, int(abs(span) * radius / 1.5) + 2))
    t = start + np.linspace(0.0, span, n)
    return np.stack([center[0] + radius * np.cos(t), center[1] - radius * np.sin(t)], axis=1)


def _arc_geometry(
    size: int, radius: float, angle: float, span: float, center: tuple[float, float] | None
) -> np.ndarray:
    """An arc whose midpoint sits at `center` (default: image centre) with tangent `angle` there.

    The circle's centre lies at the midpoint + radius * (sin a, cos a) (pixel coordinates): for
    angle 0 the arc is a hump (like the top of a circle), and rotating `angle` rotates the arc.
    """
    mx, my = center if center is not None else (size / 2.0, size / 2.0)
    cx, cy = mx + radius * math.sin(angle), my + radius * math.cos(angle)
    mid = angle + math.pi / 2.0  # polar angle of the midpoint seen from the circle's centre
    return _arc_points((cx, cy), radius, mid - span / 2.0, span)


# --- synthetic stimuli (public; the circuits analyses call these) --------------------------------


def grating(
    size: int,
    frequency: float,
    angle: float,
    phase: float = 0.0,
    colors: Colors = _BW,
) -> np.ndarray:
    """A sinusoidal grating: `frequency` cycles per image, stripes oriented along `angle`.

    float32 [size, size, 3] in 0..1, blending colors[0] (troughs) and colors[1] (crests).
    """
    x, y = _grid(size)
    # Distance across the stripes: along the normal of the orientation direction.
    u = (x - size / 2.0) * math.sin(angle) + (y - size / 2.0) * math.cos(angle)
    mask = 0.5 + 0.5 * np.cos(2.0 * math.pi * frequency * u / size + phase)
    return _compose(mask, colors)


def arc(
    size: int,
    radius: float,
    angle: float,
    thickness: float = 2.0,
    center: tuple[float, float] | None = None,
    span: float = math.pi / 2,
    colors: Colors = _BW,
) -> np.ndarray:
    """A curve segment of curvature 1/radius whose tangent at its midpoint has orientation
    `angle`; the midpoint is at `center` (default: image centre). A large radius is nearly a
    straight line. Curves are not symmetric under a half turn, so sweep angle over 0..2*pi."""
    points = _arc_geometry(size, radius, angle, span, center)
    return _compose(_stroke(size, points, thickness / 2.0), colors)


def line(
    size: int,
    angle: float,
    thickness: float = 2.0,
    length: float | None = None,
    center: tuple[float, float] | None = None,
    colors: Colors = _BW,
) -> np.ndarray:
    """A straight line through `center` (default: image centre) with orientation `angle`;
    `length` None crosses the whole image."""
    cx, cy = center if center is not None else (size / 2.0, size / 2.0)
    half = (length if length is not None else 2.0 * size) / 2.0
    dx, dy = math.cos(angle) * half, -math.sin(angle) * half
    points = np.array([[cx - dx, cy - dy], [cx + dx, cy + dy]])
    return _compose(_stroke(size, points, thickness / 2.0), colors)


def edge(size: int, angle: float, colors: Colors = _BW) -> np.ndarray:
    """A step edge through the centre with orientation `angle`: colors[0] on one side
    (the side the normal (sin a, cos a) points away from), colors[1] on the other."""
    x, y = _grid(size)
    u = (x - size / 2.0) * math.sin(angle) + (y - size / 2.0) * math.cos(angle)
    return _compose(np.clip(u + 0.5, 0.0, 1.0), colors)


def color_patch(
    size: int,
    rgb: Sequence[float],
    background: Sequence[float] = (0.5, 0.5, 0.5),
    radius: float | None = None,
) -> np.ndarray:
    """A disc of colour `rgb` on `background`; radius None fills the whole image."""
    if radius is None:
        return np.broadcast_to(np.asarray(rgb, np.float32), (size, size, 3)).copy()
    x, y = _grid(size)
    d = np.hypot(x - size / 2.0, y - size / 2.0)
    return _compose(_coverage(d, radius), (background, rgb))


# --- the dataset's classes ----------------------------------------------------------------------


def _colors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random background and a foreground that contrasts with it (in luminance or hue)."""
    bg = rng.uniform(0.0, 1.0, 3)
    while True:
        fg = rng.uniform(0.0, 1.0, 3)
        if np.abs(fg - bg).max() > 0.45:
            return bg, fg


def _random_point(rng: np.random.Generator, size: int, margin: float) -> tuple[float, float]:
    # The margins (in pixels) were chosen for 64-pixel images. A model may declare a smaller
    # input (32 x 32), where `size - margin < margin`: the shape then keeps a quarter of the
    # image as its margin. Sizes that fit the margin draw exactly what they always drew, so the
    # images of existing datasets (and the zoo's training images) do not change.
    if size < 2 * margin:
        margin = size / 4.0
    return (float(rng.uniform(margin, size - margin)), float(rng.uniform(margin, size - margin)))


def _draw_curve(rng: np.random.Generator, size: int) -> np.ndarray:
    radius = size * rng.uniform(0.12, 0.4)
    span = rng.uniform(0.6, 1.1) * math.pi
    points = _arc_geometry(
        size, radius, rng.uniform(0, 2 * math.pi), span, _random_point(rng, size, 20)
    )
    return _stroke(size, points, rng.uniform(0.8, 2.0))


def _draw_line(rng: np.random.Generator, size: int) -> np.ndarray:
    a = rng.uniform(0, math.pi)
    cx, cy = _random_point(rng, size, 16)
    half = size * rng.uniform(0.25, 0.6)
    dx, dy = math.cos(a) * half, -math.sin(a) * half
    points = np.array([[cx - dx, cy - dy], [cx + dx, cy + dy]])
    return _stroke(size, points, rng.uniform(0.8, 2.0))


def _draw_angle(rng: np.random.Generator, size: int) -> np.ndarray:
    vx, vy = _random_point(rng, size, 16)
    a = rng.uniform(0, 2 * math.pi)
    b = a + rng.choice([-1, 1]) * rng.uniform(0.3, 0.75) * math.pi
    arm = size * rng.uniform(0.25, 0.45)
    points = np.array(
        [
            [vx + arm * math.cos(a), vy - arm * math.sin(a)],
            [vx, vy],
            [vx + arm * math.cos(b), vy - arm * math.sin(b)],
        ]
    )
    return _stroke(size, points, rng.uniform(0.8, 2.0))


def _ellipse_points(rng: np.random.Generator, size: int) -> np.ndarray:
    cx, cy = _random_point(rng, size, 22)
    rx = size * rng.uniform(0.12, 0.3)
    ry = rx * rng.uniform(0.5, 1.0)
    rot = rng.uniform(0, math.pi)
    t = np.linspace(0, 2 * math.pi, 65)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = math.cos(rot), math.sin(rot)
    return np.stack([cx + c * x - s * y, cy - (s * x + c * y)], axis=1)


def _draw_circle(rng: np.random.Generator, size: int) -> np.ndarray:
    points = _ellipse_points(rng, size)
    if rng.uniform() < 0.3:
        return _polygon_inside(size, points[:-1])
    return _stroke(size, points, rng.uniform(0.8, 2.0))


def _draw_polygon(rng: np.random.Generator, size: int) -> np.ndarray:
    k = int(rng.integers(3, 7))
    cx, cy = _random_point(rng, size, 22)
    r = size * rng.uniform(0.15, 0.32)
    t = rng.uniform(0, 2 * math.pi) + np.arange(k) * 2 * math.pi / k
    points = np.stack([cx + r * np.cos(t), cy - r * np.sin(t)], axis=1)
    if rng.uniform() < 0.4:
        return _polygon_inside(size, points)
    closed = np.concatenate([points, points[:1]])
    return _stroke(size, closed, rng.uniform(0.8, 2.0))


def _draw_spiral(rng: np.random.Generator, size: int) -> np.ndarray:
    cx, cy = _random_point(rng, size, 24)
    turns = rng.uniform(1.75, 3.0)
    r_max = size * rng.uniform(0.22, 0.35)
    t = np.linspace(0, turns * 2 * math.pi, int(turns * 40))
    r = r_max * t / t[-1]
    direction = rng.choice([-1.0, 1.0])
    t0 = rng.uniform(0, 2 * math.pi)
    points = np.stack(
        [cx + r * np.cos(t0 + direction * t), cy - r * np.sin(t0 + direction * t)], axis=1
    )
    return _stroke(size, points, rng.uniform(0.7, 1.5))


def _draw_grating(rng: np.random.Generator, size: int) -> np.ndarray:
    freq = rng.uniform(3.0, 12.0) * size / 64.0
    x, y = _grid(size)
    a = rng.uniform(0, math.pi)
    u = x * math.sin(a) + y * math.cos(a)
    wave = np.cos(2 * math.pi * freq * u / size + rng.uniform(0, 2 * math.pi))
    if rng.uniform() < 0.5:  # square-wave bars half of the time
        wave = np.clip(wave * 4.0, -1.0, 1.0)
    return 0.5 + 0.5 * wave


def _draw_checker(rng: np.random.Generator, size: int) -> np.ndarray:
    freq = rng.uniform(2.0, 7.0) * size / 64.0
    x, y = _grid(size)
    a = rng.uniform(0, math.pi / 2)
    u = x * math.cos(a) - y * math.sin(a)
    v = x * math.sin(a) + y * math.cos(a)
    k = 2 * math.pi * freq / size
    wave = np.sin(k * u + rng.uniform(0, 6.3)) * np.sin(k * v + rng.uniform(0, 6.3))
    return np.clip(0.5 + 2.0 * wave, 0.0, 1.0)


def _draw_blob(rng: np.random.Generator, size: int) -> np.ndarray:
    """A soft-edged colour blob: colour contrast without lines or corners."""
    x, y = _grid(size)
    cx, cy = _random_point(rng, size, 16)
    sx, sy = size * rng.uniform(0.1, 0.25, 2)
    rot = rng.uniform(0, math.pi)
    c, s = math.cos(rot), math.sin(rot)
    u, v = (x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c
    return np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))


def _draw_edge(rng: np.random.Generator, size: int) -> np.ndarray:
    """A straight colour boundary across the image (a half-plane), sharp or slightly soft."""
    x, y = _grid(size)
    a = rng.uniform(0, 2 * math.pi)
    cx, cy = _random_point(rng, size, 18)
    u = (x - cx) * math.sin(a) + (y - cy) * math.cos(a)
    softness = rng.uniform(0.5, 2.5)
    return np.clip(u / softness + 0.5, 0.0, 1.0)


_DRAW: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "curve": _draw_curve,
    "line": _draw_line,
    "angle": _draw_angle,
    "circle": _draw_circle,
    "polygon": _draw_polygon,
    "spiral": _draw_spiral,
    "grating": _draw_grating,
    "checker": _draw_checker,
    "blob": _draw_blob,
    "edge": _draw_edge,
}


@dataclass(frozen=True)
class ProceduralDataset:
    """A named procedural dataset: its classes and generation parameters (both fingerprinted)."""

    name: str
    classes: tuple[str, ...]
    size: int = 64
    noise: float = 0.03  # std of per-pixel Gaussian noise, so models cannot rely on flat colours
    description: str = ""
    params: dict[str, float] = field(default_factory=dict)

    def fingerprint_text(self) -> str:
        """The dataset's definition as stable text (for content fingerprints)."""
        params = sorted(self.params.items())
        classes = ",".join(self.classes)
        return f"{self.name}|{classes}|{self.size}|{self.noise}|{params}|v{GENERATOR_VERSION}"


DATASETS: dict[str, ProceduralDataset] = {
    "shapes": ProceduralDataset(
        name="shapes",
        classes=tuple(_DRAW),
        description="curves, lines, angles, circles, polygons, spirals, gratings, checkers, "
        "colour blobs and colour edges on random colours",
    ),
}

# Seeds by convention: training images use TRAIN_SEED, held-out evaluation and analyses use
# HELDOUT_SEED, so no analysis ever looks at images a zoo model was trained on.
TRAIN_SEED = 0
HELDOUT_SEED = 1_000_003


def _image_rng(seed: int, index: int) -> np.random.Generator:
    # SeedSequence over (seed, index): images are independent of each other and of the order
    # in which they are generated.
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, index]))


def render_image(
    dataset: ProceduralDataset, seed: int, index: int, size: int | None = None
) -> tuple[np.ndarray, int]:
    """Image `index` of `dataset` under `seed` -> (uint8 [size, size, 3], label)."""
    size = size or dataset.size
    rng = _image_rng(seed, index)
    label = int(rng.integers(len(dataset.classes)))
    mask = _DRAW[dataset.classes[label]](rng, size)
    bg, fg = _colors(rng)
    img = bg[None, None, :] * (1.0 - mask[..., None]) + fg[None, None, :] * mask[..., None]
    if dataset.noise > 0:
        img = img + rng.normal(0.0, dataset.noise, img.shape)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8), label


def generate_images(
    start: int, stop: int, seed: int, size: int = 64, name: str = "shapes"
) -> tuple[np.ndarray, np.ndarray]:
    """Images start..stop-1 of a dataset: (uint8 [n, size, size, 3], int64 labels [n])."""
    dataset = get_dataset(name)
    n = max(0, stop - start)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    for j, i in enumerate(range(start, stop)):
        images[j], labels[j] = render_image(dataset, seed, i, size)
    return images, labels


def make_dataset(
    name: str = "shapes", n: int = 1000, seed: int = TRAIN_SEED, size: int = 64
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The first `n` images of a named dataset: (uint8 [n, size, size, 3], int64 [n], classes)."""
    images, labels = generate_images(0, n, seed, size, name)
    return images, labels, list(get_dataset(name).classes)


def get_dataset(name: str) -> ProceduralDataset:
    """A procedural dataset by name; KeyError (with the valid names) when unknown."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(
            f"unknown procedural dataset {name!r}; known: {', '.join(sorted(DATASETS))}"
        ) from None
