"""Reading and editing a language model's activations by hook name, through TransformerLens'
own `run_with_hooks` (its hooks are removed when the call returns, so an edit never leaks).

A layer is a hook name (`blocks.0.mlp.hook_post`: [B, T, units]) or an attention layer
`blocks.L.attn`, whose units are its heads: a head's activation at a token is the norm of what
it writes into the residual stream there, |z_h W_O[h]|.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import torch

from circuitpress.analysis.lm.loader import LMModel, attn_index, head_output_norms
from circuitpress.requests import UnitRef

Hook = tuple[str, Callable[..., Any]]


def hook_name(layer: str) -> str:
    """The hook a layer is read from: heads from `hook_z`, any other layer from itself."""
    return f"{layer}.hook_z" if attn_index(layer) is not None else layer


def ablation_hooks(
    model: LMModel, units: Iterable[UnitRef], means: dict[str, torch.Tensor] | None = None
) -> list[Hook]:
    """Hooks that zero (or set to their dataset mean, `means[hook]`) the given heads and
    neurons: a head through its `hook_z`, a neuron through its layer's hook."""
    by_hook: dict[str, list[int]] = {}
    for ref in units:
        by_hook.setdefault(hook_name(ref.layer), []).extend(ref.channels)
    hooks: list[Hook] = []
    for name, channels in by_hook.items():
        index = torch.tensor(sorted(set(channels)), device=model.device)
        is_head = name.endswith(".hook_z")
        mean = None if means is None else means.get(name)

        def edit(
            tensor: torch.Tensor,
            hook: Any = None,
            index: torch.Tensor = index,
            is_head: bool = is_head,
            mean: torch.Tensor | None = mean,
        ) -> torch.Tensor:
            tensor = tensor.clone()
            if is_head:  # [B, T, H, d_head]
                tensor[:, :, index, :] = 0.0 if mean is None else mean[index].to(tensor.dtype)
            else:  # [B, T, C]
                tensor[..., index] = 0.0 if mean is None else mean[index].to(tensor.dtype)
            return tensor

        hooks.append((name, edit))
    return hooks


def run(
    model: LMModel,
    tokens: torch.Tensor,
    layers: Sequence[str] = (),
    edits: Sequence[Hook] = (),
    logits: bool = True,
) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """One forward pass: the logits (None when not wanted: the pass stops after the last block
    read) and each layer's units [B, T, units] (heads: their output norms [B, T, H])."""
    store: dict[str, torch.Tensor] = {}
    names = list(dict.fromkeys(hook_name(layer) for layer in layers))

    hooks = [*edits, *((n, keeper(store, n)) for n in names)]
    stop = None
    if not logits and names:
        last = max(_block_of(n) for n in names)
        if last is not None and last + 1 < model.n_layers:
            stop = last + 1
    with torch.no_grad():
        out = model.bridge.run_with_hooks(
            tokens,
            fwd_hooks=hooks,
            return_type="logits" if logits and stop is None else None,
            stop_at_layer=stop,
        )
    acts: dict[str, torch.Tensor] = {}
    for layer in layers:
        value = store[hook_name(layer)]
        index = attn_index(layer)
        acts[layer] = head_output_norms(model, value, index) if index is not None else value
    return (out if logits and stop is None else None), acts


def keeper(store: dict[str, torch.Tensor], name: str) -> Callable[..., None]:
    """A hook that keeps its tensor under the name it was asked for (the bridge calls hooks
    with their canonical name, `blocks.0.mlp.out.hook_in` for `blocks.0.mlp.hook_post`)."""

    def keep(tensor: torch.Tensor, hook: Any = None) -> None:
        store[name] = tensor.detach()

    return keep


def _block_of(name: str) -> int:
    parts = name.split(".")
    if parts[0] == "blocks" and len(parts) > 1 and parts[1].isdigit():
        return int(parts[1])
    return 10**6  # hooks after the blocks (ln_final, unembed): the whole pass


def unit_values(acts: dict[str, torch.Tensor], ref: UnitRef) -> torch.Tensor:
    """A unit's (or direction's) activation at every token: [B, T]."""
    layer = acts[ref.layer]
    total = torch.zeros(layer.shape[:2], dtype=layer.dtype, device=layer.device)
    for channel, coef in ref.terms:
        total = total + coef * layer[..., channel]
    return total


def attention_patterns(
    model: LMModel, tokens: torch.Tensor, edits: Sequence[Hook] = ()
) -> torch.Tensor:
    """Every head's pattern: [B, layers, heads, query, key] (one pass, hooks on hook_pattern)."""
    store: dict[str, torch.Tensor] = {}
    names = [f"blocks.{i}.attn.hook_pattern" for i in range(model.n_layers)]
    hooks = [*edits, *((n, keeper(store, n)) for n in names)]
    with torch.no_grad():
        model.bridge.run_with_hooks(tokens, fwd_hooks=hooks, return_type=None)
    return torch.stack([store[n] for n in names], dim=1)
