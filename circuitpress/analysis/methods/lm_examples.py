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
    """Every request's top-k windows in one stream: per batch one forward pass (stopped after
    the last block read), then, per layer, all its units at once: a [B, T, units] tensor, the
    window maxima, and a running top-k that keeps each candidate's activations along its window
    (so no second pass is needed for the figures)."""
    refs = list(dict.fromkeys(r.ref for r in requests))
    layers = list(dict.fromkeys(ref.layer for ref in refs))
    by_layer = {layer: [ref for ref in refs if ref.layer == layer] for layer in layers}
    kmax = max(r.k for r in requests)
    n, width = tokens.shape
    # Running top-k per layer: scores [k, R], window index [k, R], rows [k, T, R].
    best: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    positions = torch.arange(width)
    for start in range(0, n, batch):
        x = torch.from_numpy(tokens[start : start + batch]).to(model.device)
        invalid = positions[None, :] >= torch.from_numpy(lengths[start : start + batch])[:, None]
        invalid[:, 0] = True  # BOS is no example: every unit sees the same token there
        _, acts = activations.run(model, x, layers, logits=False)
        index = torch.arange(start, start + len(x))
        for layer, group in by_layer.items():
            rows = _columns(acts[layer], group).float().cpu()  # [B, T, R]
            scores = rows.masked_fill(invalid[:, :, None], float("-inf")).amax(dim=1)  # [B, R]
            windows = index[:, None].expand_as(scores)
            if layer in best:
                s0, w0, r0 = best[layer]
                if not bool((scores > s0[-1]).any()):
                    continue  # nothing in this batch enters any unit's top k
                scores, windows, rows = (
                    torch.cat([s0, scores]),
                    torch.cat([w0, windows]),
                    torch.cat([r0, rows]),
                )
            keep = torch.topk(scores, min(kmax, len(scores)), dim=0).indices  # [k, R]
            best[layer] = (
                scores.gather(0, keep),
                windows.gather(0, keep),
                rows.gather(0, keep[:, None, :].expand(-1, rows.shape[1], -1)),
            )
        if env is not None:
            env.progress("examples", min(n, start + batch), n)
    if env is not None:
        env.batches = (n + batch - 1) // batch
    out: dict[Request, Result] = {}
    for req in requests:
        column = by_layer[req.ref.layer].index(req.ref)
        s, w, r = best[req.ref.layer]
        out[req] = _result(
            model, tokens, lengths, s[: req.k, column], w[: req.k, column], r[: req.k, :, column]
        )
    return out


def _columns(layer: torch.Tensor, refs: list[UnitRef]) -> torch.Tensor:
    """[B, T, R]: each reference's activation (a channel, a head, or a direction)."""
    if all(ref.channel is not None for ref in refs):
        wanted = [int(ref.channel or 0) for ref in refs]
        if wanted == list(range(layer.shape[-1])):  # every unit of the layer, in order
            return layer
        return layer.index_select(-1, torch.tensor(wanted, device=layer.device))
    return torch.stack([activations.unit_values({"x": layer}, _as(ref)) for ref in refs], -1)


def _as(ref: UnitRef) -> UnitRef:
    return UnitRef(ref.model, "x", ref.terms, head=ref.head)


def _result(
    model: LMModel,
    tokens: np.ndarray,
    lengths: np.ndarray,
    scores: torch.Tensor,
    windows: torch.Tensor,
    rows: torch.Tensor,
) -> Result:
    chosen = [int(i) for i in windows]
    masked = rows.clone()
    masked[:, 0] = float("-inf")
    contexts: list[dict[str, Any]] = []
    for row, i in enumerate(chosen):
        length = int(lengths[i])
        pos = int(masked[row, :length].argmax())
        lo, hi = max(1, pos - CONTEXT), min(length, pos + CONTEXT + 1)
        contexts.append(
            {
                "tokens": model.token_texts(tokens[i, lo:hi]),
                "activations": [float(v) for v in rows[row, lo:hi]],
                "focus": int(pos - lo),
                "window": i,
                "position": pos,
            }
        )
    top = max([abs(v) for c in contexts for v in c["activations"]] + [1e-12])
    images, heats = _strips(contexts, top)
    return Result(
        data={
            "values": [float(s) for s in scores],
            "indices": chosen,
            "positions": [c["position"] for c in contexts],
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
