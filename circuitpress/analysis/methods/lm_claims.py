"""Claims about a language model: a measure before and after ablating heads or neurons.

Measures: `loss` (mean next-token cross-entropy on the dataset sample), `loss:repeated` (on
the second half of the probe sequences, where only copying from the first half helps),
`induction-score` / `previous-token-score` of one head (or the model's best head), as
`heads.head_scores` computes them. Ablation is zero or mean (the unit's mean over the dataset
sample) through TransformerLens hooks that live for one pass. With `compare`, "before" is the
other model's unablated measure: the one-layer control against the two-layer model.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch.nn import functional as F

from circuitpress.analysis.lm import activations
from circuitpress.analysis.lm.loader import LMModel, attn_index, lm_models
from circuitpress.analysis.methods.heads import head_scores
from circuitpress.requests import LMClaimRequest, Request, Result, UnitRef

BATCH = 64
SCORES = {"induction-score": "induction", "previous-token-score": "previous-token"}


def dataset_loss(model: LMModel, edits: Sequence[activations.Hook] = ()) -> tuple[float, int]:
    """Mean next-token loss over the dataset windows (padding excluded) and the token count."""
    tokens, lengths = model.windows()
    total, count = 0.0, 0
    for start in range(0, len(tokens), BATCH):
        x = torch.from_numpy(tokens[start : start + BATCH]).to(model.device)
        n = torch.from_numpy(lengths[start : start + BATCH]).to(model.device)
        with torch.no_grad():
            logits = model.bridge.run_with_hooks(x, fwd_hooks=list(edits), return_type="logits")
        losses = F.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(), x[:, 1:].flatten(), reduction="none"
        ).view(len(x), -1)
        mask = torch.arange(x.shape[1] - 1, device=x.device)[None, :] < (n[:, None] - 1)
        total += float(losses[mask].sum())
        count += int(mask.sum())
    return total / max(count, 1), count


def repeated_loss(model: LMModel, edits: Sequence[activations.Hook] = ()) -> tuple[float, int]:
    """Mean loss on the second copy of each probe sequence (its first token excluded: it
    cannot be predicted from the first copy alone)."""
    probes = torch.from_numpy(model.probes()).to(model.device)
    length = model.probe_length()
    with torch.no_grad():
        logits = model.bridge.run_with_hooks(probes, fwd_hooks=list(edits), return_type="logits")
    # Position p predicts token p + 1; the second copy starts at 1 + L.
    start = 1 + length
    pred = logits[:, start : 2 * length].float()
    target = probes[:, start + 1 : 2 * length + 1]
    loss = F.cross_entropy(pred.flatten(0, 1), target.flatten())
    return float(loss), int(target.numel())


def unit_means(model: LMModel, units: Sequence[UnitRef]) -> dict[str, torch.Tensor]:
    """Each ablated hook's mean over the dataset tokens (heads: their z, [H, d_head])."""
    tokens, lengths = model.windows()
    names = list(dict.fromkeys(activations.hook_name(u.layer) for u in units))
    sums: dict[str, torch.Tensor] = {}
    count = 0
    for start in range(0, len(tokens), BATCH):
        x = torch.from_numpy(tokens[start : start + BATCH]).to(model.device)
        mask = (
            torch.arange(x.shape[1])[None, :]
            < torch.from_numpy(lengths[start : start + BATCH])[:, None]
        )
        store: dict[str, torch.Tensor] = {}
        hooks = [(n, activations.keeper(store, n)) for n in names]
        with torch.no_grad():
            model.bridge.run_with_hooks(x, fwd_hooks=hooks, return_type=None)
        m = mask.to(x.device)
        for n in names:
            part = store[n][m].sum(0)
            sums[n] = sums[n] + part if n in sums else part
        count += int(m.sum())
    return {n: s / max(count, 1) for n, s in sums.items()}


def measure(
    model: LMModel, req: LMClaimRequest, edits: Sequence[activations.Hook]
) -> tuple[float, int]:
    if req.measure == "loss":
        return dataset_loss(model, edits)
    if req.measure == "loss:repeated":
        return repeated_loss(model, edits)
    name = SCORES[req.measure]
    scores = head_scores(model, edits, names=(name,))[name]
    samples = int(len(model.probes()))
    if req.head is None or req.head.model != model.name:
        return float(scores.max()), samples
    layer = attn_index(req.head.layer) or 0
    return float(scores[layer, req.head.terms[0][0]]), samples


def compute_group(requests: Sequence[LMClaimRequest], env: Any) -> dict[Request, Result]:
    out: dict[Request, Result] = {}
    registry = lm_models(env)
    for req in requests:
        model = registry.get(req.model)
        means = unit_means(model, req.ablate) if req.mode == "mean" and req.ablate else None
        edits = activations.ablation_hooks(model, req.ablate, means) if req.ablate else []
        if req.compare is not None:
            before, _ = measure(registry.get(req.compare), req, [])
        else:
            before, _ = measure(model, req, [])
        after, samples = measure(model, req, edits)
        change = (after - before) / abs(before) if before else 0.0
        out[req] = Result(
            data={
                "before": before,
                "after": after,
                "change": change,
                "measure": req.measure,
                "samples": samples,
            }
        )
    return out
