"""Universality: match the units of two layers by activation correlation (handler of
"universality").

Both layers see the same images (the first model's dataset sample); each unit's response to an
image is its spatially averaged activation. The Pearson correlation of every pair of units
across images gives a [Ca, Cb] matrix; a one-to-one matching maximises the summed correlation
(the Hungarian algorithm, scipy's `linear_sum_assignment` on -r), and each unit of A also gets
its best match in B regardless of the others (as in Li et al., 2015, "Convergent learning").
A unit that never varies on the sample (a dead unit) correlates 0 with everything.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from circuitpress.analysis.tap import run
from circuitpress.requests import Request, Result, UniversalityRequest

_BATCH = 64


def pooled(model: nn.Module, normalize: Any, layer: str, images: torch.Tensor) -> np.ndarray:
    """[N, C] spatially averaged activations of `layer`."""
    out = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(images), _BATCH):
            seen, _ = run(model, normalize(images[start : start + _BATCH]), [layer])
            act = seen[layer]
            out.append((act.flatten(2).mean(2) if act.dim() == 4 else act).double().cpu().numpy())
    return np.concatenate(out)


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
        ({"a": int(i), "b": int(j), "r": float(r[i, j])} for i, j in zip(rows, cols)),
        key=lambda p: (-p["r"], p["a"]),
    )
    best = [{"b": int(np.argmax(row)), "r": float(np.max(row))} for row in r]
    mean = float(np.mean([p["r"] for p in pairs])) if pairs else 0.0
    return {"pairs": pairs, "best_a": best, "mean_matched": mean}


def universality(acts_a: np.ndarray, acts_b: np.ndarray) -> Result:
    r = correlation(acts_a, acts_b)
    data = match(r)
    data["samples"] = int(len(acts_a))
    return Result(data=data, arrays={"correlation": r.astype(np.float32)})


def sample_images(loaded: Any, limit: int, device: Any) -> torch.Tensor:
    batches = [images for _start, images, _labels in loaded.dataset().batches(_BATCH, limit)]
    return torch.cat(batches).to(device)


def compute_group(requests: Sequence[Request], env: Any) -> dict[Request, Result]:
    """Handler of "universality": one image sample and one pass per (model, layer) pair."""
    results: dict[Request, Result] = {}
    images: dict[str, torch.Tensor] = {}
    acts: dict[tuple[str, str, str], np.ndarray] = {}
    for i, request in enumerate(requests):
        if not isinstance(request, UniversalityRequest):
            raise TypeError(f"universality handler got a {request.kind} request")
        source = request.model_a  # both models see the first model's images
        if source not in images:
            images[source] = sample_images(env.models.get(source), int(env.sample_size), env.device)
        for model, layer in ((request.model_a, request.layer_a), (request.model_b, request.layer_b)):
            key = (source, model, layer)
            if key not in acts:
                loaded = env.models.get(model)
                acts[key] = pooled(loaded.module, loaded.normalize, layer, images[source])
        results[request] = universality(acts[(source, request.model_a, request.layer_a)], acts[(source, request.model_b, request.layer_b)])
        env.progress("universality", i + 1, len(requests))
    return results


HANDLERS = {"universality": compute_group}
