"""Falsifiable claims: measure a response before and after an edit (handler of "claim").

An edit either zeroes units (a forward hook on their layer) or zeroes the direct kernel from
one unit to another (on a deep copy of the model). Hooks are removed when the measurement ends
and the copy is dropped, so an edit never reaches any other request, even one computed later
from the same loaded model.

Measures:
- a unit (a parsed `UnitRef`): over a dataset sample, each image's strongest response over
  positions (what dataset examples rank by; a neuron `@Y,X` is read at its position), averaged;
  with `stimulus`, the unit's response at its receptive-field centre, averaged over every
  stimulus of the sweep;
- `accuracy` or `accuracy:CLASS`: top-1 accuracy of the model's output on the sample (on the
  images of that class only).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from circuitpress.analysis.methods.tuning import (
    receptive_field,
    stimuli,
    unit_position,
    unit_response,
)
from circuitpress.analysis.methods.weights import LayerGraph, probe_input
from circuitpress.analysis.models.capture import (
    Edit,
    as_maps,
    capture,
    execution_order,
    unit_shape,
)
from circuitpress.analysis.models.modes import channels_last, in_either_layout, nhwc_input
from circuitpress.errors import UserError, choices_hint
from circuitpress.requests import ClaimRequest, Request, Result, UnitRef

Batches = Sequence[tuple[torch.Tensor, torch.Tensor | None]]


@dataclass(frozen=True)
class Measure:
    """What a claim measures: a unit, or the accuracy (of one class when `class_index`)."""

    ref: UnitRef | None = None
    class_index: int | None = None


def class_index(name: str, classes: Sequence[str]) -> int:
    """A class by name or number."""
    if name in classes:
        return list(classes).index(name)
    if name.isdigit() and int(name) < len(classes):
        return int(name)
    raise UserError(
        f"unknown class '{name}' in ':measure: accuracy:{name}'", hint=choices_hint(name, classes)
    )


def measure_of(measure: UnitRef | str, classes: Sequence[str]) -> Measure:
    """A request's measure: its unit, or `accuracy` / `accuracy:CLASS` (a class by name or
    number)."""
    if isinstance(measure, UnitRef):
        return Measure(ref=measure)
    text = measure.strip()
    if text == "accuracy":
        return Measure()
    if text.startswith("accuracy:"):
        return Measure(class_index=class_index(text.split(":", 1)[1].strip(), classes))
    raise UserError(f"unknown measure '{text}'", hint="a unit, or accuracy / accuracy:CLASS")


def ablation_edits(units: Iterable[UnitRef]) -> dict[str, Edit]:
    """One hook per layer that zeroes the listed channels of its output."""
    by_layer: dict[str, list[int]] = {}
    for ref in units:
        by_layer.setdefault(ref.layer, []).extend(ref.channels)

    def zero(channels: list[int]) -> Edit:
        def edit(out: torch.Tensor) -> torch.Tensor:
            out = out.clone()
            out[:, channels] = 0
            return out

        return edit

    return {layer: zero(sorted(set(chs))) for layer, chs in by_layer.items()}


def without_weights(
    model: nn.Module, graph: LayerGraph, pairs: Iterable[tuple[UnitRef, UnitRef]]
) -> nn.Module:
    """A deep copy of `model` with the direct kernels src -> dst set to zero."""
    pairs = list(pairs)
    if not pairs:
        return model
    twin = copy.deepcopy(model).eval()
    modules = dict(twin.named_modules())
    for src, dst in pairs:
        graph.check_order(src.layer, dst.layer)
        if not graph.is_adjacent(src.layer, dst.layer):
            raise UserError(
                f"'{src.layer}' and '{dst.layer}' are not adjacent layers: "
                f"no single kernel connects {src} to {dst}",
                hint="ablate the weights into a layer from the layer just before it, "
                "or ablate units",
            )
        weight = modules[dst.layer].weight
        with torch.no_grad():
            for j in dst.channels:
                for i in src.channels:
                    weight[j, i] = 0
    return twin


def evaluate(
    model: nn.Module,
    normalize: Callable[[torch.Tensor], torch.Tensor],
    measure: Measure,
    batches: Batches,
    edits: dict[str, Edit],
    position: tuple[int, int] | None = None,
    reduce_max: bool = True,
) -> float:
    """The measure on `batches` with `edits` applied for the length of this call (the model
    channels-last, ~25-40% faster on the zoo's models on a CPU core, where it can take it)."""
    return in_either_layout(
        lambda nhwc_ok: _evaluate(
            model, normalize, measure, batches, edits, position, reduce_max, nhwc_ok
        )
    )


def _evaluate(
    model: nn.Module,
    normalize: Callable[[torch.Tensor], torch.Tensor],
    measure: Measure,
    batches: Batches,
    edits: dict[str, Edit],
    position: tuple[int, int] | None,
    reduce_max: bool,
    nhwc_ok: bool,
) -> float:
    total, count = 0.0, 0
    layers = [measure.ref.layer] if measure.ref is not None else []
    with (
        torch.no_grad(),
        channels_last(model, nhwc_ok) as nhwc,
        capture(model, layers, edits=edits) as cap,
    ):
        for batch, labels in batches:
            x = nhwc_input(normalize(batch), nhwc)
            if measure.ref is None:
                logits = cap.forward(x)
                if logits is None or labels is None:
                    raise UserError(
                        "'accuracy' needs a labelled dataset and a model that outputs class scores"
                    )
                hit = logits.argmax(1).cpu() == labels.cpu()
                if measure.class_index is not None:
                    keep = labels.cpu() == measure.class_index
                    hit = hit[keep]
                total += float(hit.float().sum())
                count += int(hit.numel())
                continue
            ref = measure.ref
            (out,) = cap.run(x)
            if position is None and reduce_max:
                # Each image's strongest response over positions or tokens (directions by
                # linearity); a dense layer has one.
                full = as_maps(out)
                coef = torch.as_tensor(
                    [c for _, c in ref.terms], dtype=full.dtype, device=full.device
                )
                maps = (full[:, list(ref.channels)] * coef[None, :, None, None]).sum(1)
                values = maps.flatten(1).max(1).values
            else:
                values = unit_response(out, ref, position)
            total += float(values.sum())
            count += int(values.numel())
    if count == 0:
        raise UserError(
            "the measure saw no images", hint="is the class present in the dataset sample?"
        )
    return total / count


class _Sample:
    """The dataset sample of one model, loaded once for all claims of the group."""

    def __init__(self, loaded: Any, limit: int, device: Any):
        self.batches: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        for _start, images, labels in loaded.dataset().batches(64, limit):
            lab = torch.as_tensor(labels) if labels is not None else None
            self.batches.append((images.to(device), lab))

    @property
    def size(self) -> int:
        return sum(len(x) for x, _ in self.batches)


class Layers:
    """The output shapes of a model's layers, from one pass on the probe that ends at the
    last layer the claims name (a claim measuring accuracy runs the model to its head anyway),
    and the layer graph of weight ablations, made only for those."""

    def __init__(self, model: nn.Module, probe: torch.Tensor, requests: Sequence[ClaimRequest]):
        self.model, self.probe = model, probe
        named = dict(model.named_modules())
        names: set[str] = set()
        whole = False
        for r in requests:
            if isinstance(r.measure, UnitRef):
                names.add(r.measure.layer)
            else:
                whole = True
            names.update(u.layer for u in r.ablate)
            names.update(u.layer for pair in r.ablate_weights for u in pair)
        for name in sorted(names):
            if name not in named or not name:
                raise UserError(
                    f"the model has no layer '{name}'",
                    hint=choices_hint(name, [n for n in named if n]),
                )
        self.order, self.shapes = execution_order(model, probe, None if whole else names)
        self._graph: LayerGraph | None = None

    def shape(self, layer: str) -> tuple[int, ...]:
        if layer not in self.shapes:
            raise UserError(
                f"layer '{layer}' produced no output in a forward pass",
                hint="is it used in forward()?",
            )
        return self.shapes[layer]

    def graph(self) -> LayerGraph:
        if self._graph is None:
            self._graph = LayerGraph.of(self.model, self.probe)
        return self._graph


def claim(
    request: ClaimRequest,
    loaded: Any,
    sample: Callable[[], _Sample],
    layers: Layers,
    probe: torch.Tensor,
    befores: dict[tuple[object, ...], float] | None = None,
) -> Result:
    """One claim: the measure before and after its edits (see `ClaimRequest`). `befores`
    keeps the unedited measure of each (measure, stimulus) for the other claims of the group:
    claims that edit different units of the same measure share its first pass."""
    model: nn.Module = loaded.module.eval()
    measure = measure_of(request.measure, list(getattr(loaded, "classes", ()) or ()))
    if measure.ref is not None:
        layers.shape(measure.ref.layer)
    for ref in request.ablate:
        channels = unit_shape(layers.shape(ref.layer))[0]
        bad = [c for c in ref.channels if not 0 <= c < channels]
        if bad:
            raise UserError(
                f"unit {bad[0]} of '{ref.layer}' does not exist",
                hint=f"it has units 0 to {channels - 1}",
            )
    position = None
    if request.stimulus:
        if measure.ref is None:
            raise UserError("':stimulus:' needs a unit to measure, not accuracy")
        shape = layers.shape(measure.ref.layer)
        image = (int(probe.shape[-2]), int(probe.shape[-1]))
        position = unit_position(measure.ref, shape, image)
        center, _ = receptive_field(model, measure.ref.layer, shape, position, probe)
        images = stimuli(request.stimulus, 24, image, center).images
        flat = (
            torch.from_numpy(images.reshape(-1, *images.shape[-3:]))
            .permute(0, 3, 1, 2)
            .contiguous()
            .to(probe.device)
        )
        batches: Batches = [(flat[i : i + 256], None) for i in range(0, len(flat), 256)]
        samples = len(flat)
    else:
        sampled = sample()
        batches, samples = sampled.batches, sampled.size
    edits = ablation_edits(request.ablate)
    befores = {} if befores is None else befores
    unedited = (str(request.measure), request.stimulus)
    if unedited not in befores:
        befores[unedited] = evaluate(model, loaded.normalize, measure, batches, {}, position)
    before = befores[unedited]
    edited = (
        without_weights(model, layers.graph(), request.ablate_weights)
        if request.ablate_weights
        else model
    )
    after = evaluate(edited, loaded.normalize, measure, batches, edits, position)
    change = (
        (after - before) / abs(before)
        if abs(before) > 1e-12
        else (0.0 if abs(after) <= 1e-12 else float(np.sign(after - before)))
    )
    measured = samples  # images the measure averaged over: those of one class for accuracy:CLASS
    if measure.ref is None and measure.class_index is not None:
        measured = sum(
            int((labels == measure.class_index).sum())
            for _, labels in batches
            if labels is not None
        )
    data = {
        "before": before,
        "after": after,
        "change": change,
        "measure": str(request.measure),
        "samples": samples,
        "measured": measured,
    }
    return Result(data=data)


def _lazy_sample(loaded: Any, limit: int, device: Any) -> Callable[[], _Sample]:
    """The model's dataset sample, loaded on the first call (claims on stimuli need none)."""
    cached: list[_Sample] = []

    def sample() -> _Sample:
        if not cached:
            cached.append(_Sample(loaded, limit, device))
        return cached[0]

    return sample


def compute_group(requests: Sequence[Request], env: Any) -> dict[Request, Result]:
    """Handler of the "claim" kind: all claims of a model share one dataset sample."""
    results: dict[Request, Result] = {}
    by_model: dict[str, list[ClaimRequest]] = {}
    for r in requests:
        if not isinstance(r, ClaimRequest):
            raise TypeError(f"claims handler got a {r.kind} request")
        by_model.setdefault(r.model, []).append(r)
    for name, group in by_model.items():
        loaded = env.models.get(name)
        probe = probe_input(loaded, env.device)
        layers = Layers(loaded.module.eval(), probe, group)
        sample = _lazy_sample(loaded, int(env.sample_size), env.device)
        befores: dict[tuple[object, ...], float] = {}
        for i, request in enumerate(group):
            results[request] = claim(request, loaded, sample, layers, probe, befores)
            env.progress(f"claims {name}", i + 1, len(group))
    return results


HANDLERS = {"claim": compute_group}
