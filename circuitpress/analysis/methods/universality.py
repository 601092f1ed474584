"""Universality: match the units of two layers by activation correlation (handler of
"universality").

Both layers see the same images (the first model's dataset sample). A unit's response to an image
is, by the request's `pool`, its strongest activation anywhere ("max", the default: is the
feature present?), its spatial mean ("mean"), or one sample per position ("positions", as Li et
al. did; the two layers' grids must match). The mean is a weak default for a layer read before
its ReLU: averaged over positions a linear filter only sees the image's mean colour. The Pearson
correlation of every pair of units across the samples gives a [Ca, Cb] matrix; a one-to-one
matching maximises the summed correlation (the Hungarian algorithm, scipy's
`linear_sum_assignment` on -r), and each unit of A also gets its best match in B regardless of
the others (as in Li et al., 2015, "Convergent learning").
A unit that never varies on the sample (a dead unit) correlates 0 with everything.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from circuitpress.analysis.models.capture import capture
from circuitpress.analysis.models.modes import channels_last, in_either_layout, nhwc_input
from circuitpress.errors import UserError
from circuitpress.requests import POOLS, Request, Result, UniversalityRequest

_BATCH = 64
POSITIONS_PER_IMAGE = 256


def pool_activations(act: torch.Tensor, pool: str) -> torch.Tensor:
    """[N, C, H, W] (or [N, C]) -> samples x units: [N, C] or, for "positions", [N*H*W, C]."""
    if act.dim() != 4:
        return act
    if pool == "max":
        return act.flatten(2).amax(2)
    if pool == "mean":
        return act.flatten(2).mean(2)
    if pool == "positions":
        # Every position of a regular grid of at most POSITIONS_PER_IMAGE per image: all
        # 64x64 positions of 2,048 images would be 8 million samples (a gigabyte per layer).
        step = max(1, math.ceil(math.sqrt(act.shape[2] * act.shape[3] / POSITIONS_PER_IMAGE)))
        return act[:, :, ::step, ::step].permute(0, 2, 3, 1).reshape(-1, act.shape[1])
    raise ValueError(f"unknown pool {pool!r} (expected one of: {', '.join(POOLS)})")


def correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of a [N, Ca] with every column of b [N, Cb]."""
    za = a - a.mean(0)
    zb = b - b.mean(0)
    na = np.sqrt((za**2).sum(0))
    nb = np.sqrt((zb**2).sum(0))
    # Dead units (no variance) correlate with nothing rather than dividing by zero.
    za = np.divide(za, na, out=np.zeros_like(za), where=na > 1e-12)
    zb = np.divide(zb, nb, out=np.zeros_like(zb), where=nb > 1e-12)
    return np.clip(za.T @ zb, -1.0, 1.0)


def match(r: np.ndarray) -> dict[str, Any]:
    """Hungarian one-to-one matching (strongest first) and each A unit's best B unit."""
    rows, cols = linear_sum_assignment(-r)
    pairs = sorted(
        ({"a": int(i), "b": int(j), "r": float(r[i, j])} for i, j in zip(rows, cols, strict=True)),
        key=lambda p: (-p["r"], p["a"]),
    )
    best = [{"b": int(np.argmax(row)), "r": float(np.max(row))} for row in r]
    mean = float(np.mean([p["r"] for p in pairs])) if pairs else 0.0
    return {"pairs": pairs, "best_a": best, "mean_matched": mean}


def universality(acts_a: np.ndarray, acts_b: np.ndarray, images: int | None = None) -> Result:
    if len(acts_a) != len(acts_b):
        raise UserError(
            f"':pool: positions' needs the same grid in both layers, "
            f"got {len(acts_a)} samples against {len(acts_b)}",
            hint="use ':pool: max' or ':pool: mean'",
        )
    r = correlation(acts_a, acts_b)
    data = match(r)
    data["samples"] = int(len(acts_a))
    data["images"] = int(images if images is not None else len(acts_a))
    return Result(data=data, arrays={"correlation": r.astype(np.float32)})


def sample_images(loaded: Any, limit: int, device: Any) -> torch.Tensor:
    batches = [images for _start, images, _labels in loaded.dataset().batches(_BATCH, limit)]
    return torch.cat(batches).to(device)


def pooled_layers(
    model: nn.Module,
    normalize: Any,
    wanted: dict[str, set[str]],
    images: torch.Tensor,
    batch_done: Callable[[], None] = lambda: None,
) -> dict[tuple[str, str], np.ndarray]:
    """{(layer, pool): [samples, C]} for every layer of `wanted` and each of its pools, from
    one pass over `images` that captures all the layers at once; `batch_done()` after each
    batch (the engine's progress: where a cancelled preview stops)."""
    return in_either_layout(
        lambda nhwc_ok: _pooled_layers(model, normalize, wanted, images, nhwc_ok, batch_done)
    )


def _pooled_layers(
    model: nn.Module,
    normalize: Any,
    wanted: dict[str, set[str]],
    images: torch.Tensor,
    nhwc_ok: bool,
    batch_done: Callable[[], None],
) -> dict[tuple[str, str], np.ndarray]:
    layers = sorted(wanted)
    parts: dict[tuple[str, str], list[np.ndarray]] = {
        (layer, pool): [] for layer in layers for pool in sorted(wanted[layer])
    }
    model.eval()
    with torch.no_grad(), channels_last(model, nhwc_ok) as nhwc, capture(model, layers) as cap:
        for start in range(0, len(images), _BATCH):
            outs = cap.run(nhwc_input(normalize(images[start : start + _BATCH]), nhwc))
            for layer, act in zip(layers, outs, strict=True):
                for pool in wanted[layer]:
                    parts[(layer, pool)].append(pool_activations(act, pool).double().cpu().numpy())
            batch_done()
    return {key: np.concatenate(chunks) for key, chunks in parts.items()}


def compute_group(requests: Sequence[Request], env: Any) -> dict[Request, Result]:
    """Handler of "universality": one image sample per first model (the group's), and one
    pass per model over it, capturing every layer the group asks of that model."""
    wanted: dict[tuple[str, str], dict[str, set[str]]] = {}  # (source, model) -> layer -> pools
    for request in requests:
        if not isinstance(request, UniversalityRequest):
            raise TypeError(f"universality handler got a {request.kind} request")
        source = request.model_a  # both models see the first model's images
        for model, layer in (
            (request.model_a, request.layer_a),
            (request.model_b, request.layer_b),
        ):
            wanted.setdefault((source, model), {}).setdefault(layer, set()).add(request.pool)
    images: dict[str, torch.Tensor] = {}
    acts: dict[tuple[str, str, str, str], np.ndarray] = {}
    # Progress in batches of all the passes: the preview's Ctrl-C stops a computation at its
    # next report, and a pass over a sample takes seconds.
    per_pass = math.ceil(int(env.sample_size) / _BATCH)
    total, done = per_pass * len(wanted), [0]

    def batch_done() -> None:
        done[0] = min(done[0] + 1, total)
        env.progress("universality", done[0], total)

    for (source, model), layers in wanted.items():
        if source not in images:
            images[source] = sample_images(env.models.get(source), int(env.sample_size), env.device)
        loaded = env.models.get(model)
        found = pooled_layers(loaded.module, loaded.normalize, layers, images[source], batch_done)
        for (layer, pool), values in found.items():
            acts[(source, model, layer, pool)] = values
    results: dict[Request, Result] = {}
    for request in requests:
        if not isinstance(request, UniversalityRequest):  # (checked above; for the type)
            continue
        source = request.model_a
        results[request] = universality(
            acts[(source, request.model_a, request.layer_a, request.pool)],
            acts[(source, request.model_b, request.layer_b, request.pool)],
            images=len(images[source]),
        )
    env.progress("universality", total, total)
    return results


HANDLERS = {"universality": compute_group}
