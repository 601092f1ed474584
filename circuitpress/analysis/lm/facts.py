"""Model facts of a language model (`ModelInfoRequest`): its hook layers with their unit counts
and each attention layer with its number of heads, from one short forward pass."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from circuitpress.analysis.lm import sources
from circuitpress.analysis.lm.loader import LMModel, lm_models
from circuitpress.requests import ModelInfoRequest, Request, Result

# Hooks of sub-components ('blocks.0.attn.q.hook_in') and per-head tensors are not layers a
# reference names: the familiar TransformerLens names are.
_SKIP = ("hook_in", "hook_out", "hook_scale", "hook_pattern", "hook_attn_scores")


def layer_facts(model: LMModel) -> list[dict[str, Any]]:
    tokens = torch.from_numpy(model.probes()[:1, :8]).to(model.device)
    _, cache = model.bridge.run_with_cache(tokens)
    layers: list[dict[str, Any]] = []
    previous = "tokens"
    seen_attn: set[int] = set()
    for name in cache.keys():
        last = name.rsplit(".", 1)[-1]
        parts = name.split(".")
        if parts[0] == "blocks" and len(parts) > 2 and parts[2] == "attn":
            index = int(parts[1])
            if index not in seen_attn:
                seen_attn.add(index)
                layers.append(
                    {
                        "name": f"blocks.{index}.attn",
                        "type": "attention",
                        "shape": [model.n_heads, model.n_ctx, model.n_ctx],
                        "units": model.n_heads,
                        "heads": model.n_heads,
                        "kernel_layer": False,
                        "input_layer": previous,
                    }
                )
        if not last.startswith("hook_") or last in _SKIP:
            continue
        if any(p in ("q", "k", "v", "o", "qkv", "in", "out") for p in parts[:-1]):
            continue
        shape = list(cache[name].shape[1:])
        if len(shape) != 2:  # per-head tensors (hook_q, hook_z): not a layer of units
            continue
        layers.append(
            {
                "name": name,
                "type": "hook",
                "shape": [model.n_ctx, int(shape[1])],
                "units": int(shape[1]),
                "kernel_layer": False,
                "input_layer": previous,
            }
        )
        previous = name
    return layers


def model_info(model: LMModel) -> dict[str, Any]:
    cfg = model.cfg
    return {
        "kind": "lm",
        "layers": layer_facts(model),
        "input_shape": [model.n_ctx],
        "classes": [],
        "params": int(sum(p.numel() for p in model.bridge.parameters())),
        "dataset": sources.dataset_description(model.config, model.site),
        "source": model.config.source,
        "n_layers": model.n_layers,
        "n_heads": model.n_heads,
        "n_ctx": model.n_ctx,
        "d_model": int(cfg.d_model),
        "vocab": int(cfg.d_vocab),
    }


def compute_group(requests: Sequence[ModelInfoRequest], env: Any) -> dict[Request, Result]:
    out: dict[Request, Result] = {}
    for req in requests:
        out[req] = Result(data=model_info(lm_models(env).get(req.model)))
    return out
