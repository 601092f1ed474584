"""Helpers shared by the circuits directives (weights, circuit, claim, tuning, universality).

Not a directive module (it has no `register`, and pyproject.toml names no entry point for it):
argument grammar for `A -> B`, layer order from cached model facts, and small HTML pieces.
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import numpy as np

from circuitpress.extensions import DirectiveCall, RenderServices, ResultSource
from circuitpress.render import svg
from circuitpress.requests import ModelInfoRequest, Request, Result, UnitRef

PAIR_HINT = "write EARLIER -> LATER, e.g. shapes-a/conv1:3 -> shapes-a/conv2:7"


def split_pair(text: str, call: DirectiveCall, line: int, what: str) -> tuple[str, str]:
    """`A -> B` into its two sides (the arrow may also be written →)."""
    parts = text.replace("→", "->").split("->")
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        raise call.error(
            f"{what} must be two features joined by '->', got '{text}'", hint=PAIR_HINT, line=line
        )
    return parts[0].strip(), parts[1].strip()


def check_same_model(src: UnitRef, dst: UnitRef, call: DirectiveCall, line: int, what: str) -> None:
    if src.model != dst.model:
        raise call.error(
            f"{what}: '{src}' and '{dst}' are in different models",
            hint="weights connect layers of one model; compare models with {universality}",
            line=line,
        )
    if src.layer == dst.layer:
        raise call.error(
            f"{what}: '{src}' and '{dst}' are in the same layer",
            hint="weights connect an earlier layer to a later one",
            line=line,
        )


def check_units(
    call: DirectiveCall,
    channels: Sequence[int],
    layers: dict[str, dict[str, Any]],
    model: str,
    layer: str,
    *,
    line: int,
    what: str,
) -> None:
    """An error at `line` when a channel is not a unit of `model/layer` (from model facts)."""
    units = int(layers[layer]["units"])
    bad = [c for c in channels if not 0 <= c < units]
    if bad:
        raise call.error(
            f"{what}: {model}/{layer} has no unit {bad[0]}",
            hint=f"it has units 0 to {units - 1}",
            line=line,
        )


def is_kernel_layer(info: dict[str, Any]) -> bool:
    """Whether a layer (its model facts) has weights that are kernels between features: a conv
    or linear layer, as the model facts say."""
    return bool(info["kernel_layer"])


def result_or_none(ctx: ResultSource, request: Request) -> Result | None:
    """A result when this build round has it (a follow-up sees only earlier rounds)."""
    return ctx.result(request) if ctx.has_result(request) else None


def layer_info(ctx: ResultSource, model: str) -> dict[str, dict[str, Any]] | None:
    """`layer name -> info` (in forward order) from the cached model facts, if available."""
    result = result_or_none(ctx, ModelInfoRequest(model))
    if result is None:
        return None
    return {layer["name"]: layer for layer in result.data["layers"]}


def _computed_from(layers: dict[str, dict[str, Any]], src: str, dst: str) -> bool | None:
    """Whether `dst` is computed from `src` by the model facts' dataflow (None: the facts
    have no dataflow, as those cached before it was recorded)."""
    if "inputs" not in layers[dst]:
        return None
    seen, todo = {dst}, [dst]
    while todo:
        for name in layers.get(todo.pop(), {}).get("inputs", []):
            if name == src:
                return True
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return False


def check_order(
    ctx: ResultSource, src: UnitRef, dst: UnitRef, call: DirectiveCall, line: int, what: str
) -> None:
    """An error naming the file, line and option when `src`'s layer does not come first, or
    when the two layers lie on parallel branches (neither is computed from the other)."""
    layers = layer_info(ctx, src.model)
    if layers is None or src.layer not in layers or dst.layer not in layers:
        return
    names = list(layers)
    forward = _computed_from(layers, src.layer, dst.layer)
    backward = _computed_from(layers, dst.layer, src.layer)
    if backward or (forward is None and names.index(src.layer) > names.index(dst.layer)):
        raise call.error(
            f"{what}: layer '{src.layer}' comes after '{dst.layer}' in {src.model}",
            hint=f"the earlier layer goes first: {dst} -> {src}",
            line=line,
        )
    if forward is False:
        feeds = layers[dst.layer].get("input_layer")
        raise call.error(
            f"{what}: layer '{dst.layer}' does not depend on '{src.layer}' in {src.model} "
            "(they are on parallel branches)",
            hint=f"its input is {feeds}" if feeds else "pick layers on one path of the model",
            line=line,
        )


def input_layer(layers: dict[str, dict[str, Any]], layer: str) -> str | None:
    """The layer whose units feed `layer`'s (the model facts' dataflow; facts cached before it
    was recorded: the last conv or linear layer before it)."""
    info = layers[layer]
    if "input_layer" in info:
        return info["input_layer"]
    names = list(layers)
    earlier = [n for n in names[: names.index(layer)] if is_kernel_layer(layers[n])]
    return earlier[-1] if earlier else None


def unit_link(ref: UnitRef, ctx: RenderServices, text: str | None = None) -> str:
    label = escape(text if text is not None else str(ref))
    url = ctx.unit_url(ref)
    return f'<a class="cp-unit-link" href="{escape(url, quote=True)}">{label}</a>' if url else label


def thumb(ref: UnitRef, ctx: RenderServices, size: int = 64) -> str:
    url = ctx.thumbnail_url(ref)
    if not url:
        return (
            '<span class="cp-thumb cp-thumb-missing" '
            f'style="width:{size}px;height:{size}px"></span>'
        )
    return (
        f'<img class="cp-thumb" src="{escape(url, quote=True)}" width="{size}" height="{size}" '
        f'alt="feature visualization of {escape(str(ref), quote=True)}" loading="lazy">'
    )


def kernel_cell(
    kernel: np.ndarray, scale: float, *, pixels: float = 96, label: str = "kernel"
) -> str:
    """A kernel as inline SVG at about `pixels` wide, on the shared symmetric scale."""
    import numpy as np  # only where results are drawn: prose builds never import it

    k = np.asarray(kernel, dtype=np.float64)
    cell = max(2.0, pixels / max(k.shape[1], 1))
    return svg.kernel_svg(k.tolist(), scale, cell=cell, label=label)


def kernel_json(kernel: np.ndarray) -> str:
    """Compact JSON of a kernel for data attributes (4 significant digits)."""
    import numpy as np  # only where results are drawn: prose builds never import it

    return json.dumps(
        [[float(f"{v:.4g}") for v in row] for row in np.asarray(kernel, dtype=np.float64)],
        separators=(",", ":"),
    )


def channel_ref(model: str, layer: str, channel: int) -> UnitRef:
    return UnitRef(model, layer, ((int(channel), 1.0),))


def symmetric_scale(kernels: Sequence[np.ndarray]) -> float:
    import numpy as np

    values = [float(np.abs(k).max()) for k in kernels if np.asarray(k).size]
    return max(values, default=0.0) or 1.0
