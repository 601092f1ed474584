"""Model facts (layers and their output shapes) for `ModelInfoRequest`: one dummy forward pass.

The result is cached by the model's fingerprint, so resolving feature references and
`circuitpress check` need no torch once a model has been seen.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import torch
from torch import nn

from circuitpress.analysis.methods.weights import is_kernel_layer
from circuitpress.analysis.models.capture import capture
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


@torch.no_grad()
def model_info(model: LoadedModel) -> dict[str, Any]:
    """The data of a ModelInfoRequest result for one loaded model."""
    h, w = model.input_size
    x = torch.full((1, 3, h, w), 0.5, device=model.device)
    modules = dict(model.module.named_modules())
    features = [name for name, sub in modules.items() if name and _is_feature_module(sub)]
    with capture(model.module, watch=features) as cap:
        cap.forward(model.normalize(x))
    # A layer is a module whose output is a map [C, H, W] or a vector [C] (batch left out).
    shapes = {name: list(shape) for name, shape in cap.shapes.items() if len(shape) >= 1}
    layers = [
        {
            "name": name,
            "type": type(sub).__name__,
            "shape": shape,
            "units": int(shape[0]),
            "kernel_layer": is_kernel_layer(sub),
        }
        for name, sub in modules.items()
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
