"""Weights between features: the kernels themselves, or expanded weights across layers.

For two adjacent layers (the second a conv or linear layer whose input is the first layer's
output, through nothing but non-linearities and pooling) the connection from channel i to
channel j is the kernel W[j, i] itself. For layers further apart we compute *expanded weights*
("Visualizing Weights", Voss et al., Distill 2021): the gradient of the later unit at the centre
of its map with respect to the earlier layer's output, through a copy of the model in which each
non-linearity is replaced by the closest linear operation (ReLU -> identity, max-pool ->
average-pool). On a linear path this is exactly the product of the weight matrices; directions
(linear combinations of channels) follow by linearity.

Handlers: `compute_group(requests, env)` for the kinds "weights" and "connections".
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Sequence, cast

import numpy as np
import torch
from torch import nn

from circuitpress.analysis.models.capture import capture, execution_order
from circuitpress.errors import UserError, choices_hint
from circuitpress.requests import Request, Result, TopConnectionsRequest, UnitRef, WeightsRequest

# Modules that keep channels apart (so the next layer's kernel still reads the same channels).
_PASS_THROUGH = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.Dropout,
    nn.Dropout2d,
    nn.Identity,
)
# Layers whose weights are kernels between features: W[j, i] connects channel i of the layer
# before to channel j of this one. Model facts report them (`kernel_layer`) for the directives.
KERNEL_LAYERS = (nn.Conv2d, nn.Linear)
_CHUNK = 32  # dst channels per backward pass: bounds memory on large layers


def is_kernel_layer(module: nn.Module) -> bool:
    """Whether `module`'s weights are kernels between features (a conv or linear layer)."""
    return isinstance(module, KERNEL_LAYERS)


def _is_relu_like(module: nn.Module) -> bool:
    # lucent's InceptionV1 wraps its ReLUs in its own classes (ReluLayer, RedirectedReluLayer).
    return isinstance(module, (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU)) or (
        "relu" in type(module).__name__.lower() and not any(True for _ in module.parameters())
    )


def _linear_stand_in(module: nn.Module) -> nn.Module | None:
    """The closest linear operation to a non-linear module, or None to keep it."""
    if _is_relu_like(module):
        return nn.Identity()
    if isinstance(module, nn.MaxPool2d):
        return nn.AvgPool2d(
            module.kernel_size,
            module.stride,
            module.padding,
            ceil_mode=module.ceil_mode,
            count_include_pad=False,
        )
    if isinstance(module, nn.AdaptiveMaxPool2d):
        return nn.AdaptiveAvgPool2d(module.output_size)
    return None


def linearized(model: nn.Module, *, absolute: bool = False) -> nn.Module:
    """A deep copy of `model` with every non-linearity swapped for its linear stand-in.

    With `absolute`, every parameter is replaced by its absolute value: then every path carries
    a positive gradient, and the gradient's support is exactly the receptive field."""
    twin = copy.deepcopy(model).eval()
    for parent in list(twin.modules()):
        for name, child in list(parent.named_children()):
            stand_in = _linear_stand_in(child)
            if stand_in is not None:
                setattr(parent, name, stand_in)
    if absolute:
        with torch.no_grad():
            for p in twin.parameters():
                # + a little: a weight that happens to be zero must not shrink the footprint.
                p.abs_().add_(1e-3)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


@dataclass
class LayerGraph:
    """The layers of a model in the order their outputs appear, with output shapes."""

    order: list[str]
    shapes: dict[str, tuple[int, ...]]
    modules: dict[str, nn.Module]

    @classmethod
    def of(cls, model: nn.Module, probe: torch.Tensor) -> "LayerGraph":
        order, shapes = execution_order(model, probe)
        return cls(order, shapes, dict(model.named_modules()))

    def position(self, layer: str) -> int:
        if layer not in self.shapes:
            raise UserError(
                f"the model has no layer '{layer}'", hint=choices_hint(layer, self.order)
            )
        return self.order.index(layer)

    def check_order(self, src: str, dst: str) -> None:
        """An error unless `src` produces its output before `dst`."""
        if self.position(src) >= self.position(dst):
            raise UserError(
                f"layer '{src}' does not come before '{dst}'",
                hint="write the earlier layer first: EARLIER -> LATER",
            )

    def between(self, src: str, dst: str) -> list[str]:
        """Leaf modules whose outputs appear after `src`'s and before `dst`'s."""
        lo, hi = self.position(src), self.position(dst)
        return [
            n for n in self.order[lo + 1 : hi] if not any(True for _ in self.modules[n].children())
        ]

    def feature_layers(self) -> list[str]:
        return [n for n in self.order if is_kernel_layer(self.modules[n])]

    def previous_feature(self, layer: str) -> str | None:
        pos = self.position(layer)
        earlier = [
            n
            for n in self.feature_layers()
            if self.order.index(n) < pos and not n.startswith(layer + ".")
        ]
        return earlier[-1] if earlier else None

    def next_feature(self, layer: str) -> str | None:
        pos = self.position(layer)
        later = [
            n
            for n in self.feature_layers()
            if self.order.index(n) > pos and not layer.startswith(n + ".")
        ]
        return later[0] if later else None

    def is_adjacent(self, src: str, dst: str) -> bool:
        """True when `dst`'s own weights connect to `src`'s channels (W[j, i] is the answer)."""
        module = self.modules[dst]
        channels = self.shapes[src][0]
        if isinstance(module, nn.Conv2d):
            if module.groups != 1 or module.in_channels != channels:
                return False
        elif isinstance(module, nn.Linear):
            if len(self.shapes[src]) != 1 or module.in_features != channels:
                return False
        else:
            return False
        return all(isinstance(self.modules[n], _PASS_THROUGH) for n in self.between(src, dst))


def _center(shape: tuple[int, ...]) -> tuple[int, int] | None:
    return (shape[1] // 2, shape[2] // 2) if len(shape) == 3 else None


def _select(
    out: torch.Tensor, channels: Sequence[int], pos: tuple[int, int] | None
) -> torch.Tensor:
    idx = torch.arange(len(channels), device=out.device)
    ch = torch.as_tensor(list(channels), device=out.device)
    if pos is None:
        return out[idx, ch] if out.dim() == 2 else out[idx, ch].flatten(1).mean(1)
    return out[idx, ch, pos[0], pos[1]]


def gradient_rows(
    model: nn.Module,
    graph: LayerGraph,
    src: str | None,
    dst: str,
    channels: Sequence[int],
    probe: torch.Tensor,
    position: tuple[int, int] | None = None,
) -> torch.Tensor:
    """d dst[channels[b]] at `position` (default: the map's centre) / d src output, batched.

    `src` None means the model's input. Returns [len(channels), *src_shape]. Run it on a
    `linearized` model to get expanded weights."""
    pos = position if position is not None else _center(graph.shapes[dst])
    n = len(channels)
    shape = graph.shapes[src] if src is not None else tuple(probe.shape[1:])
    with torch.inference_mode(False), torch.enable_grad():
        free = torch.zeros((n, *shape), device=probe.device, requires_grad=True)
        batch = probe.expand(n, *probe.shape[1:]).clone() if src is not None else free
        with capture(model, [dst], replace={src: free} if src is not None else None) as cap:
            (out,) = cap.run(batch)
        _select(out, channels, pos).sum().backward()
    if free.grad is None:
        raise UserError(
            f"layer '{dst}' does not depend on '{src}'", hint="pick layers on one path of the model"
        )
    return free.grad.detach()


@dataclass
class Connections:
    """Connection tensors of one model, computed once per layer pair and dst channel."""

    model: nn.Module
    probe: torch.Tensor
    graph: LayerGraph = field(init=False)
    _lin: nn.Module | None = field(default=None, init=False)
    _footprints: dict[tuple[str, str], tuple[slice, slice]] = field(
        default_factory=dict, init=False
    )
    _rows: dict[tuple[str, str, int], np.ndarray] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.model.eval()
        self.graph = LayerGraph.of(self.model, self.probe)

    @property
    def lin(self) -> nn.Module:
        if self._lin is None:
            self._lin = linearized(self.model)
        return self._lin

    def expanded(self, src: str, dst: str) -> bool:
        return not self.graph.is_adjacent(src, dst)

    def footprint(self, src: str, dst: str) -> tuple[slice, slice]:
        """Where in `src`'s map the centre unit of `dst` can look (its receptive field there)."""
        key = (src, dst)
        if key not in self._footprints:
            if len(self.graph.shapes[src]) != 3:
                self._footprints[key] = (slice(0, 1), slice(0, 1))
            else:
                absolute = linearized(self.model, absolute=True)
                grad = gradient_rows(
                    absolute, self.graph, src, dst, [0], torch.ones_like(self.probe)
                )
                support = grad[0].abs().sum(0) > 0
                ys, xs = torch.nonzero(support, as_tuple=True)
                if len(ys) == 0:
                    raise UserError(f"layer '{dst}' does not depend on '{src}'")
                self._footprints[key] = (
                    slice(int(ys.min()), int(ys.max()) + 1),
                    slice(int(xs.min()), int(xs.max()) + 1),
                )
        return self._footprints[key]

    def rows(self, src: str, dst: str, channels: Sequence[int]) -> np.ndarray:
        """Kernels from every `src` channel into each of `channels` of `dst`: [n, Csrc, kh, kw]."""
        self.graph.check_order(src, dst)
        todo = [c for c in dict.fromkeys(channels) if (src, dst, c) not in self._rows]
        if todo:
            if not self.expanded(src, dst):
                # Adjacent: `dst` is a kernel layer, and its weight is the answer.
                dst_weight = cast(torch.Tensor, self.graph.modules[dst].weight)
                weight = dst_weight.detach().float().cpu().numpy()
                for c in todo:
                    w = weight[c]
                    self._rows[(src, dst, c)] = w if w.ndim == 3 else w[:, None, None]
            else:
                ys, xs = self.footprint(src, dst)
                for start in range(0, len(todo), _CHUNK):
                    chunk = todo[start : start + _CHUNK]
                    grad = gradient_rows(self.lin, self.graph, src, dst, chunk, self.probe)
                    if grad.dim() == 4:
                        grad = grad[:, :, ys, xs]
                    else:
                        grad = grad[:, :, None, None]
                    for c, g in zip(chunk, grad.cpu().numpy(), strict=True):
                        self._rows[(src, dst, c)] = g.astype(np.float32)
        return np.stack([self._rows[(src, dst, c)] for c in channels])

    def kernel(self, src: UnitRef, dst: UnitRef) -> np.ndarray:
        """The [kh, kw] kernel from feature `src` to feature `dst` (directions by linearity)."""
        rows = self.rows(src.layer, dst.layer, dst.channels)  # [nd, Csrc, kh, kw]
        dst_coef = np.array([c for _, c in dst.terms], np.float32)
        combined = np.tensordot(dst_coef, rows, axes=1)  # [Csrc, kh, kw]
        src_coef = np.array([c for _, c in src.terms], np.float32)
        return np.tensordot(src_coef, combined[list(src.channels)], axes=1).astype(np.float32)

    def inputs_of(self, ref: UnitRef, src: str) -> np.ndarray:
        """Kernels from every channel of `src` into `ref`: [Csrc, kh, kw]."""
        rows = self.rows(src, ref.layer, ref.channels)
        coef = np.array([c for _, c in ref.terms], np.float32)
        return np.tensordot(coef, rows, axes=1).astype(np.float32)

    def outputs_of(self, ref: UnitRef, dst: str) -> np.ndarray:
        """Kernels from `ref` into every channel of `dst`: [Cdst, kh, kw]."""
        rows = self.rows(ref.layer, dst, range(self.graph.shapes[dst][0]))
        coef = np.array([c for _, c in ref.terms], np.float32)
        return np.tensordot(rows[:, list(ref.channels)], coef, axes=([1], [0])).astype(np.float32)


def strongest(kernels: np.ndarray, n: int) -> list[dict[str, Any]]:
    """The `n` channels with the largest kernel norm, strongest first (ties: lower channel)."""
    norms = np.sqrt((kernels.astype(np.float64) ** 2).reshape(len(kernels), -1).sum(1))
    sums = kernels.reshape(len(kernels), -1).sum(1)
    order = sorted(range(len(kernels)), key=lambda i: (-norms[i], i))[:n]
    return [
        {"channel": int(i), "norm": float(norms[i]), "sign": 1 if sums[i] >= 0 else -1}
        for i in order
    ]


def weights_result(conn: Connections, request: WeightsRequest) -> Result:
    if request.src.model != request.dst.model:
        raise UserError(
            f"'{request.src}' and '{request.dst}' are in different models",
            hint="weights connect layers of one model",
        )
    kernel = conn.kernel(request.src, request.dst)
    src, dst = request.src.layer, request.dst.layer
    return Result(
        data={
            "expanded": conn.expanded(src, dst),
            "norm": float(np.sqrt((kernel.astype(np.float64) ** 2).sum())),
            # Excitatory or inhibitory, as `strongest` says of each connection.
            "sign": 1 if kernel.sum() >= 0 else -1,
            "max_abs": float(np.abs(kernel).max()) if kernel.size else 0.0,
            "path": [src, *conn.graph.between(src, dst), dst],
        },
        arrays={"kernel": kernel},
    )


def connections_result(conn: Connections, request: TopConnectionsRequest) -> Result:
    ref = request.ref
    if request.direction not in ("inputs", "outputs"):
        raise UserError(f"unknown direction '{request.direction}'", hint="inputs or outputs")
    inputs = request.direction == "inputs"
    graph = conn.graph
    other = request.other_layer or (
        graph.previous_feature(ref.layer) if inputs else graph.next_feature(ref.layer)
    )
    if other is None:
        return Result(
            data={"layer": None, "expanded": False, "units": []},
            arrays={"kernels": np.zeros((0, 1, 1), np.float32)},
        )
    kernels = conn.inputs_of(ref, other) if inputs else conn.outputs_of(ref, other)
    units = strongest(kernels, request.n)
    src, dst = (other, ref.layer) if inputs else (ref.layer, other)
    return Result(
        data={"layer": other, "expanded": conn.expanded(src, dst), "units": units},
        arrays={"kernels": kernels[[u["channel"] for u in units]].astype(np.float32)},
    )


def probe_input(loaded: Any, device: Any) -> torch.Tensor:
    """A zero image of the model's input size (only its shape matters here)."""
    for attr in ("input_shape", "input_size"):
        size = getattr(loaded, attr, None)
        if size is not None:
            size = tuple(int(s) for s in size)
            shape = size if len(size) == 3 else (3, *size[-2:])
            return torch.zeros((1, *shape), device=device)
    _, images, _ = next(iter(loaded.dataset().batches(1, 1)))
    return torch.zeros_like(images[:1]).to(device)


def compute_group(requests: Sequence[Request], env: Any) -> dict[Request, Result]:
    """Handler of the "weights" and "connections" kinds: one model, one set of tensors."""
    results: dict[Request, Result] = {}
    by_model: dict[str, list[Request]] = {}
    for r in requests:
        by_model.setdefault(r.models[0], []).append(r)
    for model_name, group in by_model.items():
        loaded = env.models.get(model_name)
        conn = Connections(loaded.module, probe_input(loaded, env.device))
        for i, request in enumerate(group):
            if isinstance(request, WeightsRequest):
                results[request] = weights_result(conn, request)
            elif isinstance(request, TopConnectionsRequest):
                results[request] = connections_result(conn, request)
            else:
                raise TypeError(f"weights handler got a {request.kind} request")
            env.progress(f"weights {model_name}", i + 1, len(group))
    return results


HANDLERS = {"weights": compute_group, "connections": compute_group}
