"""Model facts (layers and their output shapes) for `ModelInfoRequest`: one dummy forward pass.

The result is cached by the model's fingerprint, so resolving feature references and
`circuitpress check` need no torch once a model has been seen.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Protocol, Sequence

import torch
from torch import nn

from circuitpress.analysis.models.registry import LoadedModel, ModelRegistry
from circuitpress.requests import ModelInfoRequest, Request, Result

# Module types whose outputs are features worth naming even without parameters of their own.
_FEATURE_TYPES = (
    nn.modules.conv._ConvNd,
    nn.Linear,
    nn.ReLU,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.batchnorm._BatchNorm,
)


class Env(Protocol):
    models: ModelRegistry
    device: torch.device


def _is_feature_module(module: nn.Module) -> bool:
    return isinstance(module, _FEATURE_TYPES) or any(True for _ in module.parameters(recurse=False))


@contextmanager
def _record_shapes(module: nn.Module) -> Iterator[dict[str, list[int]]]:
    """Forward hooks recording each named module's first output shape (without the batch);
    removed on exit, whatever happens."""
    shapes: dict[str, list[int]] = {}
    handles = []

    def hook(name: str):  # type: ignore[no-untyped-def]
        def record(_m: nn.Module, _inp: Any, out: Any) -> None:
            if name not in shapes and isinstance(out, torch.Tensor) and out.dim() >= 2:
                shapes[name] = list(out.shape[1:])

        return record

    for name, sub in module.named_modules():
        if name and _is_feature_module(sub):
            handles.append(sub.register_forward_hook(hook(name)))
    try:
        yield shapes
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def model_info(model: LoadedModel) -> dict[str, Any]:
    """The data of a ModelInfoRequest result for one loaded model."""
    h, w = model.input_size
    x = torch.full((1, 3, h, w), 0.5, device=model.device)
    with _record_shapes(model.module) as shapes:
        model.module(model.normalize(x))
    types = {name: type(sub).__name__ for name, sub in model.module.named_modules()}
    layers = [
        {"name": name, "type": types[name], "shape": shape, "units": int(shape[0])}
        for name, _ in model.module.named_modules()
        if name in shapes
        for shape in [shapes[name]]
    ]
    return {
        "layers": layers,
        "input_shape": [3, h, w],
        "classes": list(model.classes),
        "params": int(sum(p.numel() for p in model.module.parameters())),
        "dataset": model.dataset().description,
        "source": model.config.source,
    }


def compute_group(requests: Sequence[ModelInfoRequest], env: Env) -> dict[Request, Result]:
    """Handler of the 'model-info' kind: one forward pass per distinct model."""
    out: dict[Request, Result] = {}
    by_model: dict[str, dict[str, Any]] = {}
    for req in requests:
        if req.model not in by_model:
            by_model[req.model] = model_info(env.models.get(req.model))
        out[req] = Result(data=by_model[req.model])
    return out


def describe(name: str, data: dict[str, Any]) -> list[str]:
    """Lines for `circuitpress models`: the model, its source and dataset, one line per layer."""
    shape = "x".join(map(str, data["input_shape"]))
    lines = [
        f"{name}  ({data.get('source', '?')}, {data['params']:,} parameters, input {shape})",
        f"  dataset: {data['dataset']}",
    ]
    width = max((len(layer["name"]) for layer in data["layers"]), default=0)
    for layer in data["layers"]:
        shape = "x".join(map(str, layer["shape"]))
        lines.append(
            f"  {layer['name']:<{width}}  {layer['type']:<18} {shape:<12} {layer['units']} units"
        )
    return lines
