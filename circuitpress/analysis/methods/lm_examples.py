"""Token examples of a language model's units, and the small pictures of its units' chips.

`compute_group` streams the model's dataset once for every examples request of the model: each
batch of token windows is one forward pass whose hooks read every requested layer, and each
request keeps its running top-k windows (the window's strongest token decides). The result
carries, per example, the tokens around the strongest one with their activations (for the
text figure), plus a strip image and heat map per example, so chips and unit pages built for
images show a language model's examples too.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from circuitpress.analysis.lm import activations
from circuitpress.analysis.lm.loader import LMModel, attn_index, lm_models
from circuitpress.errors import UserError
from circuitpress.requests import (
    ExamplesRequest,
    FeatureVisRequest,
    Request,
    Result,
    TopConnectionsRequest,
    UnitRef,
)

CONTEXT = 16  # tokens kept on each side of the strongest one (`:context:` shows fewer)
BATCH = 64
STRIP = 6  # pixels per token in the strip pictures


def compute_group(requests: Sequence[ExamplesRequest], env: Any) -> dict[Request, Result]:
    model = lm_models(env).get(requests[0].ref.model)
    tokens, lengths = model.windows()
    return top_examples(model, requests, tokens, lengths, env)


def top_examples(
    model: LMModel,
    requests: Sequence[ExamplesRequest],
    tokens: np.ndarray,
    lengths: np.ndarray,
    env: Any = None,
    batch: int = BATCH,
) -> dict[Request, Result]:
    layers = list(dict.fromkeys(r.ref.layer for r in requests))
    best: dict[ExamplesRequest, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    n = len(tokens)
    positions = torch.arange(tokens.shape[1])
    for start in range(0, n, batch):
        x = torch.from_numpy(tokens[start : start + batch]).to(model.device)
        valid = positions[None, :] < torch.from_numpy(lengths[start : start + batch])[:, None]
        valid[:, 0] = False  # BOS is no example: every unit sees the same token there
        _, acts = activations.run(model, x, layers, logits=False)
        for req in requests:
            values = activations.unit_values(acts, req.ref).float().cpu()
            values = values.masked_fill(~valid, float("-inf"))
            scores, where = values.max(dim=1)
            index = torch.arange(start, start + len(x))
            if req in best:
                s0, i0, p0 = best[req]
                scores, index, where = (
                    torch.cat([s0, scores]),
                    torch.cat([i0, index]),
                    torch.cat([p0, where]),
                )
            keep = torch.topk(scores, min(req.k, len(scores))).indices
            best[req] = (scores[keep], index[keep], where[keep])
        if env is not None:
            env.progress("examples", min(n, start + batch), n)
    if env is not None:
        env.batches = (n + batch - 1) // batch
    out: dict[Request, Result] = {}
    for req in requests:
        scores, index, where = best[req]
        out[req] = _result(model, req.ref, tokens, lengths, scores, index, where)
    return out


def _result(
    model: LMModel,
    ref: UnitRef,
    tokens: np.ndarray,
    lengths: np.ndarray,
    scores: torch.Tensor,
    index: torch.Tensor,
    where: torch.Tensor,
) -> Result:
    # The activations of the chosen windows, once more (a handful of windows: cheap), so the
    # stream keeps only scores and indices.
    chosen = [int(i) for i in index]
    contexts: list[dict[str, Any]] = []
    if chosen:
        x = torch.from_numpy(tokens[chosen]).to(model.device)
        _, acts = activations.run(model, x, [ref.layer], logits=False)
        values = activations.unit_values(acts, ref).float().cpu().numpy()
        for row, (i, pos) in enumerate(zip(chosen, where.tolist(), strict=True)):
            lo, hi = max(1, pos - CONTEXT), min(int(lengths[i]), pos + CONTEXT + 1)
            ids = tokens[i, lo:hi]
            contexts.append(
                {
                    "tokens": model.token_texts(ids),
                    "activations": [float(v) for v in values[row, lo:hi]],
                    "focus": int(pos - lo),
                    "window": i,
                    "position": int(pos),
                }
            )
    top = max([abs(v) for c in contexts for v in c["activations"]] + [1e-12])
    images, heats = _strips(contexts, top)
    return Result(
        data={
            "values": [float(s) for s in scores],
            "indices": chosen,
            "positions": [int(p) for p in where],
            "boxes": [],
            "contexts": contexts,
            "max_abs": float(top),
            "windows": int(len(tokens)),
            "tokens": True,
        },
        arrays={"images": images, "heatmaps": heats},
    )


def _strips(contexts: list[dict[str, Any]], top: float) -> tuple[np.ndarray, np.ndarray]:
    """A picture per example for image-shaped views: one cell per token, shaded by activation."""
    width = (2 * CONTEXT + 1) * STRIP
    images = np.full((len(contexts), STRIP * 2, width, 3), 0.96, dtype=np.float32)
    heats = np.zeros((len(contexts), STRIP * 2, width), dtype=np.float32)
    for i, c in enumerate(contexts):
        offset = CONTEXT - c["focus"]
        for j, v in enumerate(c["activations"]):
            x0 = (offset + j) * STRIP
            heats[i, :, x0 : x0 + STRIP - 1] = max(0.0, v) / top
    return images, heats


# --- pictures for chips and unit pages ------------------------------------------------------------


def compute_pictures(requests: Sequence[FeatureVisRequest], env: Any) -> dict[Request, Result]:
    """A language model's unit has no feature visualization; its picture is what it does on the
    probe sequences (repeated random tokens): a head's attention pattern (query x key), or a
    neuron's or direction's activation over the tokens (one row per sequence)."""
    model = lm_models(env).get(requests[0].ref.model)
    probes = torch.from_numpy(model.probes()).to(model.device)
    patterns = activations.attention_patterns(model, probes).cpu().numpy()
    layers = list(dict.fromkeys(r.ref.layer for r in requests if not r.ref.head))
    acts = activations.run(model, probes, layers, logits=False)[1] if layers else {}
    out: dict[Request, Result] = {}
    for req in requests:
        ref = req.ref
        pictures = []
        values = []
        for n in range(req.diversity):
            if ref.head:
                layer = attn_index(ref.layer) or 0
                grid = patterns[n % len(patterns), layer, ref.terms[0][0]]
                grid = grid / max(float(grid.max()), 1e-12)
                values.append(float(grid.mean()))
            else:
                rows = activations.unit_values(acts, ref).float().cpu().numpy()
                rows = -rows if req.negative else rows
                grid = np.clip(rows / max(float(np.abs(rows).max()), 1e-12), 0.0, 1.0)
                values.append(float(rows.max()))
            pictures.append(_heat_picture(grid, req.size or 64))
        out[req] = Result(
            data={
                "activation": values,
                "loss_start": 0.0,
                "loss_end": 0.0,
                "size": int(pictures[0].shape[0]),
                "picture": "attention pattern" if ref.head else "activation on probe tokens",
            },
            arrays={"images": np.stack(pictures).astype(np.float32)},
        )
    return out


def _heat_picture(grid: np.ndarray, size: int) -> np.ndarray:
    """A 0..1 grid as a square RGB picture (white to deep blue), nearest-neighbour scaled."""
    h, w = grid.shape
    ys = (np.arange(size) * h // size).clip(0, h - 1)
    xs = (np.arange(size) * w // size).clip(0, w - 1)
    g = grid[ys][:, xs][..., None]
    white, blue = np.array([1.0, 1.0, 1.0]), np.array([0.09, 0.27, 0.67])
    return (white * (1 - g) + blue * g).astype(np.float32)


def compute_connections(
    requests: Sequence[TopConnectionsRequest], env: Any
) -> dict[Request, Result]:
    """A language model's units have no kernels: unit pages show no connection lists (`{circuit}`
    of a head shows its composition with earlier heads instead)."""
    return {
        req: Result(
            data={"layer": req.ref.layer, "expanded": False, "units": []},
            arrays={"kernels": np.zeros((0, 1, 1), dtype=np.float32)},
        )
        for req in requests
    }


def compute_unsupported(requests: Sequence[Request], env: Any) -> dict[Request, Result]:
    kind = requests[0].kind
    raise UserError(
        f"'{kind}' is not available for language models ({', '.join(requests[0].models)})",
        hint="use {examples}, {attention}, {heads}, {logits}, {circuit} of a head, and {claim} "
        "with :ablate: heads and :measure: induction-score, loss or loss:repeated",
    )
