"""Tuning curves: a unit's response to swept synthetic stimuli (handler of "tuning").

For a spatial layer the unit is read at one position (the neuron's `@Y,X`, else the centre of
the map) and every stimulus is centred on that position's receptive field, found as the
support of the gradient through an all-positive linear twin of the model (so it is the
structural receptive field, independent of the weights' signs). Each point of the curve is the
best response over the sweep's nuisance variants (see `sweeps`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, cast

import numpy as np
import torch
from torch import nn

from circuitpress.analysis.methods.sweeps import sweep
from circuitpress.analysis.methods.weights import gradient_rows, linearized, probe_input
from circuitpress.analysis.models.capture import (
    as_maps,
    capture,
    is_tokens,
    token_grid,
)
from circuitpress.errors import UserError, choices_hint
from circuitpress.requests import Request, Result, TuningRequest, UnitRef

_BATCH = 256


@dataclass
class _Shapes:
    """The one fact `gradient_rows` reads of a layer graph when the source is the input and
    the position is given: the layer's output shape."""

    shapes: dict[str, tuple[int, ...]]


def layer_shape(model: nn.Module, layer: str, probe: torch.Tensor) -> tuple[int, ...]:
    """A layer's raw output shape (no batch: [C, H, W], [C] or tokens [T, C]) from a pass
    that ends at the layer: a stimulus never
    needs the model's head, which may not take the stimulus size (lucent's InceptionV1 at
    128 px fails in its final pooling)."""
    modules = dict(model.named_modules())
    if layer not in modules or not layer:
        raise UserError(
            f"the model has no layer '{layer}'", hint=choices_hint(layer, [n for n in modules if n])
        )
    with torch.no_grad(), capture(model, [layer]) as cap:
        (out,) = cap.run(probe)
    if isinstance(out, (tuple, list)):
        out = out[0]
    return tuple(int(s) for s in out.shape[1:])


def receptive_field(
    model: nn.Module,
    layer: str,
    shape: tuple[int, ...],
    position: tuple[int, int] | None,
    probe: torch.Tensor,
) -> tuple[tuple[float, float], tuple[int, int, int, int]]:
    """Centre (y, x) in input pixels and box (y0, x0, y1, x1) of a position's receptive field.

    `shape` is the layer's raw output shape (`layer_shape`). On a token layer every token may
    look at the whole image (attention): the field is the image."""
    h, w = probe.shape[-2:]
    if is_tokens(shape):
        return (h / 2.0, w / 2.0), (0, 0, int(h), int(w))
    absolute = linearized(model, absolute=True)
    graph = cast(Any, _Shapes({layer: shape}))
    grad = gradient_rows(absolute, graph, None, layer, [0], torch.ones_like(probe), position)
    support = grad[0].abs().sum(0) > 0
    ys, xs = torch.nonzero(support, as_tuple=True)
    if len(ys) == 0:
        return (h / 2.0, w / 2.0), (0, 0, int(h), int(w))
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    return ((y0 + y1) / 2.0, (x0 + x1) / 2.0), (y0, x0, y1, x1)


def unit_position(
    ref: UnitRef, shape: tuple[int, ...], image: tuple[int, int] | None = None
) -> tuple[int, int] | None:
    """Where a unit is read: the neuron's position, else the map's centre (on a token layer
    the token of the patch at the image's centre, when the tokens tile the image), or None
    (a dense layer, or tokens without a patch grid: the mean over tokens). `shape` is the
    layer's raw output shape."""
    if ref.position is not None and len(shape) >= 2:
        return ref.position
    if is_tokens(shape):
        grid = token_grid(shape[0], image) if image is not None else None
        if grid is None:
            return None
        prefix, rows, cols = grid
        return (prefix + (rows // 2) * cols + cols // 2, 0)
    if len(shape) != 3:
        return None
    return (shape[1] // 2, shape[2] // 2)


def unit_response(
    output: torch.Tensor, ref: UnitRef, position: tuple[int, int] | None
) -> torch.Tensor:
    """[B] responses of a unit (directions by linearity) in a layer output: at `position` of
    its map (a token (t, 0) of a sequence), else the mean over positions."""
    maps = as_maps(output)
    if position is not None:
        values = maps[:, :, position[0], position[1]]
    else:
        values = maps.flatten(2).mean(2)
    channels = torch.as_tensor(list(ref.channels), device=values.device)
    coef = torch.as_tensor([c for _, c in ref.terms], dtype=values.dtype, device=values.device)
    return (values[:, channels] * coef).sum(1)


def responses(
    model: nn.Module,
    normalize: Any,
    ref: UnitRef,
    position: tuple[int, int] | None,
    images: np.ndarray,
    device: Any,
) -> np.ndarray:
    """Responses to float [N, H, W, 3] images, in batches (each pass ends at the unit's
    layer)."""
    out = []
    with torch.no_grad(), capture(model, [ref.layer]) as cap:
        for start in range(0, len(images), _BATCH):
            x = (
                torch.from_numpy(np.ascontiguousarray(images[start : start + _BATCH]))
                .permute(0, 3, 1, 2)
                .to(device)
            )
            (output,) = cap.run(normalize(x))
            out.append(unit_response(output, ref, position).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def stimuli(stimulus: str, steps: int, size: tuple[int, int], center: tuple[float, float]) -> Any:
    """The sweep at the model's input size (height, width): drawn square at the larger side
    and centre-cropped, as the procedural dataset is, with the centre moved to match."""
    h, w = size
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    sw = sweep(stimulus, steps, side, (center[0] + top, center[1] + left))
    if (h, w) == (side, side):
        return sw
    cropped = np.ascontiguousarray(sw.images[..., top : top + h, left : left + w, :])
    return type(sw)(sw.axes, cropped)


def tuning(
    model: nn.Module, normalize: Any, ref: UnitRef, stimulus: str, steps: int, probe: torch.Tensor
) -> Result:
    """The tuning result of one unit (see `TuningRequest`)."""
    model.eval()
    shape = layer_shape(model, ref.layer, probe)
    image = (int(probe.shape[-2]), int(probe.shape[-1]))
    position = unit_position(ref, shape, image)
    center, box = receptive_field(model, ref.layer, shape, position, probe)
    sw = stimuli(stimulus, steps, image, center)
    grid = sw.images.shape[:-3]  # [n1, (n2,) nuisance]
    flat = sw.images.reshape(-1, *sw.images.shape[-3:])
    values = responses(model, normalize, ref, position, flat, probe.device).reshape(grid)
    best = values.max(axis=-1)
    best_variant = values.argmax(axis=-1)
    # The curve's peak: its strongest point's index on each axis (the first on ties).
    peak = [int(i) for i in np.unravel_index(int(best.argmax()), best.shape)]
    # Thumbnails along each axis: the best variant, at the other axis' best value (a heat map
    # shows each axis' stimuli along that axis).
    arrays: dict[str, np.ndarray] = {}
    if best.ndim == 1:
        thumbs = [sw.images[i, best_variant[i]] for i in range(best.shape[0])]
    else:
        i_peak, j = peak
        thumbs = [sw.images[i, j, best_variant[i, j]] for i in range(best.shape[0])]
        second = [sw.images[i_peak, k, best_variant[i_peak, k]] for k in range(best.shape[1])]
        arrays["stimuli_second"] = np.stack(second).astype(np.float32)
    arrays["stimuli"] = np.stack(thumbs).astype(np.float32)
    return Result(
        data={
            "axes": [{"name": a.name, "values": list(a.values), "unit": a.unit} for a in sw.axes],
            "response": best.tolist(),
            "peak": peak,
            "position": list(position) if position is not None else None,
            "rf_center": [float(center[0]), float(center[1])],
            "rf_box": list(box),
            "variants": int(grid[-1]),
        },
        arrays=arrays,
    )


def compute_group(requests: Sequence[Request], env: Any) -> dict[Request, Result]:
    """Handler of the "tuning" kind."""
    results: dict[Request, Result] = {}
    for i, request in enumerate(requests):
        if not isinstance(request, TuningRequest):
            raise TypeError(f"tuning handler got a {request.kind} request")
        loaded = env.models.get(request.ref.model)
        probe = probe_input(loaded, env.device)
        results[request] = tuning(
            loaded.module, loaded.normalize, request.ref, request.stimulus, request.steps, probe
        )
        env.progress(f"tuning {request.ref.model}", i + 1, len(requests))
    return results


HANDLERS = {"tuning": compute_group}
