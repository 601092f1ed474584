"""Swept synthetic stimuli for tuning curves and claims: NumPy only, no torch.

A sweep varies one or two parameters (orientation, curvature, frequency, colour) of the
procedural stimuli. Parameters that a sweep does not show but a unit still cares about (the
orientation of a curve in a curvature sweep, the phase of a grating) are *nuisance* variants:
each point of a tuning curve is the unit's best response over them, so a curve detector's
curvature tuning does not depend on guessing its preferred orientation.

Stimuli are centred on a given point (the receptive-field centre of the unit measured), so a
unit deep in a model sees the stimulus where it looks. The stimulus names and their grammar
(`parse_stimulus`) are part of the request vocabulary in `circuitpress.requests`, where the
directives validate `:stimulus:` at parse time.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from circuitpress.analysis.models import procedural
from circuitpress.requests import parse_stimulus

MAX_2D_STEPS = 16  # per axis: 16 x 16 x nuisance variants stays a few seconds on a CPU
_NUISANCE_ANGLES = 8
_PHASES = 4


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple[float, ...]  # in the unit shown on the plot
    unit: str


def _axis(name: str, steps: int, size: int, *, half_turn: bool = False) -> Axis:
    if name == "orientation":
        top = 180.0 if half_turn else 360.0
        return Axis(name, tuple(top * i / steps for i in range(steps)), "degrees")
    if name == "curvature":
        # From straight (0) to a radius of 3 pixels, in 1/pixels.
        return Axis(name, tuple(float(v) for v in np.linspace(0.0, 1.0 / 3.0, steps)), "1/pixels")
    if name == "frequency":
        return Axis(
            name, tuple(float(v) for v in np.geomspace(1.0, size / 4.0, steps)), "cycles per image"
        )
    if name == "colour":
        return Axis(name, tuple(360.0 * i / steps for i in range(steps)), "hue, degrees")
    raise ValueError(name)


def _shifted(
    draw: Callable[[int], np.ndarray], size: int, center: tuple[float, float]
) -> np.ndarray:
    """Draw on a canvas about twice the size, centred, and cut the window that puts the canvas
    centre at `center` (y, x): stimuli without a centre parameter (edges, gratings) move this
    way. An odd canvas has its centre on a pixel centre, an even one between pixels; pick the
    one that matches the receptive field's centre so the shift is a whole number of pixels."""
    odd = abs((center[0] % 1.0) - 0.5) < 0.25
    canvas_size = 2 * size + (1 if odd else 0)
    canvas = draw(canvas_size)
    mid = canvas_size / 2.0
    oy = int(round(mid - center[0]))
    ox = int(round(mid - center[1]))
    oy, ox = min(max(oy, 0), canvas_size - size), min(max(ox, 0), canvas_size - size)
    return canvas[oy : oy + size, ox : ox + size]


def _stimulus(
    params: dict[str, float], nuisance: int, size: int, center: tuple[float, float]
) -> np.ndarray:
    """One image for a point of the sweep and one nuisance variant."""
    cy, cx = center
    if "colour" in params:
        r, g, b = colorsys.hsv_to_rgb(params["colour"] / 360.0, 1.0, 1.0)
        return procedural.color_patch(size, (r, g, b))
    angle = math.radians(params.get("orientation", 0.0))
    if "curvature" in params:
        if "orientation" not in params:
            angle = 2 * math.pi * nuisance / _NUISANCE_ANGLES
        k = params["curvature"]
        radius = 1.0 / k if k > 1e-6 else 1e4
        length = 0.4 * size  # the same arc length at every curvature
        span = min(1.8 * math.pi, length / radius)
        return procedural.arc(size, radius, angle, thickness=2.0, center=(cx, cy), span=span)
    if "frequency" in params:
        if "orientation" not in params:
            angle = math.pi * (nuisance // _PHASES) / _NUISANCE_ANGLES
        phase = 2 * math.pi * (nuisance % _PHASES) / _PHASES
        f = params["frequency"]
        return _shifted(
            lambda s: procedural.grating(s, f * s / size, angle, phase=phase), size, center
        )
    return _shifted(lambda s: procedural.edge(s, angle), size, center)


def _nuisances(axes: tuple[str, ...]) -> int:
    if "frequency" in axes:
        return _PHASES * (1 if "orientation" in axes else _NUISANCE_ANGLES)
    if "curvature" in axes and "orientation" not in axes:
        return _NUISANCE_ANGLES
    return 1


@dataclass(frozen=True)
class Sweep:
    axes: tuple[Axis, ...]
    images: np.ndarray  # float32 [n1, (n2,) nuisance, size, size, 3]


def sweep(stimulus: str, steps: int, size: int, center: tuple[float, float] | None = None) -> Sweep:
    """Every stimulus of a sweep, centred on `center` (y, x; default the image centre)."""
    names = parse_stimulus(stimulus)
    center = center if center is not None else (size / 2.0, size / 2.0)
    if len(names) == 2:
        steps = min(steps, MAX_2D_STEPS)
    # Gratings look the same after a half turn; edges and curves do not.
    half_turn = "frequency" in names
    axes = tuple(_axis(n, steps, size, half_turn=half_turn) for n in names)
    nuisance = _nuisances(names)
    grids = np.meshgrid(*[np.arange(len(a.values)) for a in axes], indexing="ij")
    shape = grids[0].shape
    images = np.zeros((*shape, nuisance, size, size, 3), np.float32)
    for index in np.ndindex(*shape):
        params = {a.name: a.values[i] for a, i in zip(axes, index, strict=True)}
        for v in range(nuisance):
            images[index + (v,)] = _stimulus(params, v, size, center)
    return Sweep(axes, images)
