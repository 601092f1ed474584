"""Weights-only analyses of a language model: direct logit attribution and head composition.

`{logits} REF`: the unit's output direction in the residual stream (an MLP neuron's row of
W_out, a residual dimension itself, a head's mean output on the dataset) through the
unembedding W_U; the final LayerNorm's scale is left out, as in a plain DLA table.
`{circuit} HEAD`: TransformerLens' `all_composition_scores("Q" | "K" | "V")` (Elhage et al.
2021: |W_A W_B|_F / (|W_A|_F |W_B|_F)) between the head and every head of earlier layers.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from circuitpress.analysis.lm.loader import LMModel, attn_index, lm_models
from circuitpress.errors import UserError
from circuitpress.requests import CompositionRequest, LogitsRequest, Request, Result, UnitRef

BASELINE_SAMPLES = 64


def output_direction(model: LMModel, ref: UnitRef) -> torch.Tensor:
    """The residual-stream direction [d_model] a unit writes (or is, for residual layers)."""
    parts = ref.layer.split(".")
    d_model = int(model.cfg.d_model)
    bridge = model.bridge
    index = attn_index(ref.layer)
    if index is not None:
        # A head's direct effect depends on its input: its mean output over the dataset.
        tokens, lengths = model.windows()
        x = torch.from_numpy(tokens[:64]).to(model.device)
        store: dict[str, torch.Tensor] = {}

        def keep(tensor: torch.Tensor, hook: Any) -> None:
            store["z"] = tensor.detach()

        with torch.no_grad():
            bridge.run_with_hooks(x, fwd_hooks=[(f"{ref.layer}.hook_z", keep)], return_type=None)
        mask = torch.arange(x.shape[1])[None, :] < torch.from_numpy(lengths[:64])[:, None]
        total = torch.zeros(d_model, device=model.device)
        for head, coef in ref.terms:
            out = store["z"][:, :, head, :] @ bridge.W_O[index, head]  # [B, T, d_model]
            total = total + coef * out[mask.to(out.device)].mean(0)
        return total.cpu()
    if (
        len(parts) >= 3
        and parts[0] == "blocks"
        and parts[2] == "mlp"
        and parts[-1]
        in (
            "hook_post",
            "hook_pre",
        )
    ):
        w_out = bridge.W_out[int(parts[1])].detach().float().cpu()  # [d_mlp, d_model]
        return sum((coef * w_out[ch] for ch, coef in ref.terms), torch.zeros(d_model))
    units = d_model
    if max(ref.channels) < units and _is_residual(ref.layer):
        direction = torch.zeros(d_model)
        for ch, coef in ref.terms:
            direction[ch] = coef
        return direction
    raise UserError(
        f"'{ref}': no direct path from '{ref.layer}' to the logits",
        hint="use an MLP neuron (blocks.L.mlp.hook_post:N), a residual-stream layer or a head",
    )


def _is_residual(layer: str) -> bool:
    last = layer.rsplit(".", 1)[-1]
    return last in (
        "hook_resid_pre",
        "hook_resid_mid",
        "hook_resid_post",
        "hook_attn_out",
        "hook_mlp_out",
        "hook_embed",
        "hook_pos_embed",
    )


def compute_group(requests: Sequence[LogitsRequest], env: Any) -> dict[Request, Result]:
    model = lm_models(env).get(requests[0].ref.model)
    w_u = model.bridge.W_U.detach().float().cpu()  # [d_model, vocab]
    special = model.special_ids()
    out: dict[Request, Result] = {}
    for req in requests:
        with torch.no_grad():
            logits = output_direction(model, req.ref).float().cpu() @ w_u
        for i in special:
            if 0 <= i < len(logits):
                logits[i] = float("nan")
        order = torch.argsort(torch.nan_to_num(logits, nan=0.0), descending=True)
        ranked = [int(i) for i in order if not torch.isnan(logits[i])]
        k = min(req.k, len(ranked) // 2)

        out[req] = Result(
            data={
                "top": _rows(model, logits, ranked[:k]),
                "bottom": _rows(model, logits, ranked[::-1][:k]),
                "vocab": len(ranked),
            }
        )
    return out


def _rows(model: LMModel, logits: torch.Tensor, ids: list[int]) -> list[dict[str, Any]]:
    texts = model.token_texts(ids)
    return [
        {"token": t, "id": i, "value": float(logits[i])} for t, i in zip(texts, ids, strict=True)
    ]


def random_baseline(model: LMModel, seed: int = 0) -> float:
    """The mean composition score of random Gaussian weights of the model's shapes."""
    gen = torch.Generator().manual_seed(seed)
    d, dh = int(model.cfg.d_model), int(model.cfg.d_head)
    scores = []
    for _ in range(BASELINE_SAMPLES):
        a = torch.randn(d, dh, generator=gen) @ torch.randn(dh, d, generator=gen)
        b = torch.randn(d, dh, generator=gen) @ torch.randn(dh, d, generator=gen)
        scores.append(float((a @ b).norm() / (a.norm() * b.norm())))
    return sum(scores) / len(scores)


def compute_composition(requests: Sequence[CompositionRequest], env: Any) -> dict[Request, Result]:
    model = lm_models(env).get(requests[0].ref.model)
    with torch.no_grad():
        modes = {m: model.bridge.all_composition_scores(m).scores.float().cpu() for m in "QKV"}
    baseline = random_baseline(model)
    out: dict[Request, Result] = {}
    for req in requests:
        layer, head = attn_index(req.ref.layer) or 0, req.ref.terms[0][0]
        inputs: list[dict[str, Any]] = []
        for l1 in range(layer):
            for h1 in range(model.n_heads):
                q, k, v = (float(modes[m][l1, h1, layer, head]) for m in "QKV")
                inputs.append({"layer": f"blocks.{l1}.attn", "head": h1, "q": q, "k": k, "v": v})
        inputs.sort(key=lambda e: -max(e["q"], e["k"], e["v"]))
        out[req] = Result(data={"inputs": inputs, "baseline": baseline})
    return out
