"""Model facts (layers, output shapes, dataflow) for `ModelInfoRequest`: one dummy forward pass.

The result is cached by the model's fingerprint, so resolving feature references and
`circuitpress check` need no torch once a model has been seen.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import torch

from circuitpress.analysis.methods.dataflow import Dataflow, is_kernel_layer
from circuitpress.analysis.models.capture import unit_shape
from circuitpress.analysis.models.registry import LoadedModel, ModelRegistry
from circuitpress.requests import ModelInfoRequest, Request, Result


class Env(Protocol):
    models: ModelRegistry
    device: torch.device


def layer_facts(graph: Dataflow) -> list[dict[str, Any]]:
    """One entry per module of `named_modules()` that ran, in the order outputs appear.

    Every module output is a layer (containers, concat modules, wrappers included). A block
    that returns a tuple or dict, or a module never called, is listed with an `error` that
    says so: a reference to it fails with that line instead of "no such layer"."""
    edges = graph.edges()
    layers: list[dict[str, Any]] = []
    for name in graph.order:
        module = graph.modules[name]
        shape = list(graph.shapes[name])
        entry: dict[str, Any] = {
            "name": name,
            "type": type(module).__name__,
            "shape": shape,
            # Units are channels: tokens [T, C] have C of them (capture.unit_shape).
            "units": int(unit_shape(shape)[0]) if shape else 0,
            "kernel_layer": is_kernel_layer(module),
        }
        if not shape:
            entry["error"] = f"layer '{name}' returns a scalar, not a map or a vector"
        elif name not in graph.node_of:
            entry["error"] = f"layer '{name}' does not depend on the model's input"
        else:
            # The true dataflow, for the directives' checks before any analysis runs.
            entry["inputs"] = edges.get(name, [])
            entry["input_layer"] = graph.input_layer(name)
            entry["output_layer"] = graph.output_layer(name)
        layers.append(entry)
    for name, what in graph.invalid.items():
        if name not in graph.shapes:
            layers.append(
                {
                    "name": name,
                    "type": type(graph.modules[name]).__name__,
                    "shape": None,
                    "units": 0,
                    "kernel_layer": False,
                    "error": f"layer '{name}' returns {what}, not one tensor",
                }
            )
    for name, module in graph.modules.items():
        if name not in graph.shapes and name not in graph.invalid:
            layers.append(
                {
                    "name": name,
                    "type": type(module).__name__,
                    "shape": None,
                    "units": 0,
                    "kernel_layer": False,
                    "error": f"layer '{name}' produced no output in a forward pass "
                    "(is it used in forward()?)",
                }
            )
    return layers


def model_info(model: LoadedModel) -> dict[str, Any]:
    """The data of a ModelInfoRequest result for one loaded model."""
    h, w = model.input_size
    x = torch.full((1, 3, h, w), 0.5, device=model.device)
    graph = Dataflow.trace(model.module, model.normalize(x))
    return {
        "layers": layer_facts(graph),
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
