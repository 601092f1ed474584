"""Weights between features: the kernels themselves, or expanded weights across layers.

Which layer feeds which comes from the model's true dataflow (`dataflow.Dataflow`, read from
the autograd graph of a forward pass): through branches, concatenations and residual adds, not
the order modules run in. For two adjacent layers (the second's own conv or linear layer reads
the first layer's output through nothing but ReLUs, pooling and padding) the connection from
channel i to channel j is the kernel W[j, i] itself. Otherwise we compute *expanded weights*
("Visualizing Weights", Voss et al., Distill 2021): the gradient of the later unit at the centre
of its map with respect to the earlier layer's output, through a copy of the model in which each
non-linearity is replaced by the closest linear operation (ReLU -> identity, max-pool ->
average-pool, as modules and as functions). On a linear path this is exactly the product of
the weight matrices; through an Inception block it is the path product along the branch, and
through a residual block the skip's identity plus the branch's product. Directions (linear
combinations of channels) follow by linearity.

Handlers: `compute_group(requests, env)` for the kinds "weights" and "connections".
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any, Sequence, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from circuitpress.analysis.methods.dataflow import (  # noqa: F401 (re-exported for analyses)
    KERNEL_LAYERS,
    Dataflow,
    is_kernel_layer,
    is_relu_like,
)
from circuitpress.analysis.models.capture import capture
from circuitpress.errors import UserError
from circuitpress.requests import Request, Result, TopConnectionsRequest, UnitRef, WeightsRequest

_CHUNK = 32  # dst channels per backward pass: bounds memory on large layers
_LINEAR_FLAG = "_circuitpress_linearized"
LayerGraph = Dataflow  # the name the analyses and tests know the layer graph by


def _linear_stand_in(module: nn.Module) -> nn.Module | None:
    """The closest linear operation to a non-linear module, or None to keep it."""
    if is_relu_like(module):
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


_IDENTITY_FUNCS = {
    F.relu,
    F.relu_,
    torch.relu,
    torch.relu_,
    torch.Tensor.relu,
    torch.Tensor.relu_,
    F.relu6,
    F.leaky_relu,
    F.gelu,
    F.silu,
    F.elu,
}


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str, default: Any) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


class _LinearFunctions(TorchFunctionMode):
    """The linear stand-ins for non-linearities written as functions in a forward()
    (torchvision's GoogLeNet ends each BasicConv2d with F.relu(x, inplace=True)): ReLUs are
    the identity, max-pools average-pools, and lucent's -inf padding before a max-pool 0."""

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = dict(kwargs or {})
        if func in _IDENTITY_FUNCS:
            return args[0] if args else kwargs["input"]
        if func is F.max_pool2d and not _arg(args, kwargs, 6, "return_indices", False):
            x = _arg(args, kwargs, 0, "input", None)
            size = _arg(args, kwargs, 1, "kernel_size", None)
            stride = _arg(args, kwargs, 2, "stride", None)
            padding = _arg(args, kwargs, 3, "padding", 0)
            if _arg(args, kwargs, 4, "dilation", 1) in (1, (1, 1)):
                ceil = _arg(args, kwargs, 5, "ceil_mode", False)
                return F.avg_pool2d(x, size, stride, padding, ceil, count_include_pad=False)
        if func is F.adaptive_max_pool2d and not _arg(args, kwargs, 2, "return_indices", False):
            return F.adaptive_avg_pool2d(args[0], _arg(args, kwargs, 1, "output_size", None))
        if func is F.pad and _arg(args, kwargs, 3, "value", None) == float("-inf"):
            return F.pad(args[0], _arg(args, kwargs, 1, "pad", None), value=0.0)
        return func(*args, **kwargs)


def linearized(model: nn.Module, *, absolute: bool = False) -> nn.Module:
    """A deep copy of `model` with every non-linearity swapped for its linear stand-in.

    Modules are swapped here; ReLUs and max-pools called as functions are swapped while
    `gradient_rows` runs the copy. With `absolute`, every parameter is replaced by its
    absolute value: then every path carries a positive gradient, and the gradient's support
    is exactly the receptive field."""
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
    setattr(twin, _LINEAR_FLAG, True)
    return twin


def _center(shape: tuple[int, ...]) -> tuple[int, int] | None:
    return (shape[1] // 2, shape[2] // 2) if len(shape) == 3 else None


def _one_hots(
    out: torch.Tensor, channels: Sequence[int], pos: tuple[int, int] | None
) -> torch.Tensor:
    """[n, *out.shape]: row b picks channel channels[b] of the batch-1 output `out` at `pos`
    (without a position: a dense unit, or the mean over the map)."""
    grads = torch.zeros((len(channels), *out.shape), device=out.device, dtype=out.dtype)
    for b, c in enumerate(channels):
        if out.dim() == 2:
            grads[b, 0, c] = 1.0
        elif pos is None:
            grads[b, 0, c] = 1.0 / float(out.shape[2] * out.shape[3])
        else:
            grads[b, 0, c, pos[0], pos[1]] = 1.0
    return grads


def gradient_rows(
    model: nn.Module,
    graph: Dataflow,
    src: str | None,
    dst: str,
    channels: Sequence[int],
    probe: torch.Tensor,
    position: tuple[int, int] | None = None,
) -> torch.Tensor:
    """d dst[channels[b]] at `position` (default: the map's centre) / d src output, batched.

    `src` None means the model's input. Returns [len(channels), *src_shape]. Run it on a
    `linearized` model to get expanded weights. One forward pass at batch 1 serves every
    row: the rows are backward passes only (vectorised over rows where autograd can)."""
    pos = position if position is not None else _center(graph.shapes[dst])
    shape = graph.shapes[src] if src is not None else tuple(probe.shape[1:])
    linear = _LinearFunctions() if getattr(model, _LINEAR_FLAG, False) else contextlib.nullcontext()
    with torch.inference_mode(False), torch.enable_grad(), linear:
        free = torch.zeros((1, *shape), device=probe.device, requires_grad=True)
        start = probe[:1].clone() if src is not None else free
        with capture(model, [dst], replace={src: free} if src is not None else None) as cap:
            (out,) = cap.run(start)
        if not out.requires_grad:
            raise UserError(
                f"layer '{dst}' does not depend on '{src}'",
                hint="pick layers on one path of the model",
            )
        grads = _one_hots(out, channels, pos)
        rows: torch.Tensor | None
        try:
            (rows,) = torch.autograd.grad(
                out, free, grads, is_grads_batched=True, allow_unused=True, retain_graph=True
            )
        except RuntimeError:  # an op vmap cannot batch: one backward pass per row
            each = [
                torch.autograd.grad(out, free, g, allow_unused=True, retain_graph=True)[0]
                for g in grads
            ]
            rows = None if any(r is None for r in each) else torch.stack(each)
    if rows is None:
        raise UserError(
            f"layer '{dst}' does not depend on '{src}'", hint="pick layers on one path of the model"
        )
    return rows.detach().reshape(len(channels), *shape)


def _summed_rows(
    model: nn.Module,
    graph: Dataflow,
    src: str,
    dst: str,
    channels: Sequence[int],
    probe: torch.Tensor,
) -> torch.Tensor:
    """d (sum of `channels` of dst at its centre) / d src output, in one backward pass:
    [*src_shape]. For footprints, where only the gradient's support matters."""
    pos = _center(graph.shapes[dst])
    linear = _LinearFunctions() if getattr(model, _LINEAR_FLAG, False) else contextlib.nullcontext()
    with torch.inference_mode(False), torch.enable_grad(), linear:
        free = torch.zeros((1, *graph.shapes[src]), device=probe.device, requires_grad=True)
        with capture(model, [dst], replace={src: free}) as cap:
            (out,) = cap.run(torch.ones_like(probe))
        ch = torch.as_tensor(list(channels), device=out.device)
        picked = out[0, ch] if pos is None else out[0, ch, pos[0], pos[1]]
        if picked.requires_grad:
            picked.sum().backward()
    if free.grad is None:
        raise UserError(f"layer '{dst}' does not depend on '{src}'")
    return free.grad[0].detach()


def _check_shape(graph: Dataflow, layer: str) -> None:
    # Token-shaped layers ([tokens, C]) have no kernel between channels at a map's centre.
    if len(graph.shapes[layer]) not in (1, 3):
        shape = "x".join(map(str, graph.shapes[layer]))
        raise UserError(
            f"layer '{layer}' has output shape {shape}: weights and connections need a map "
            "[C, H, W] or a vector [C]",
            hint="pick a conv or linear layer of a spatial or dense part of the model",
        )


@dataclass
class Connections:
    """Connection tensors of one model, computed once per layer pair and dst channel."""

    model: nn.Module
    probe: torch.Tensor
    graph: Dataflow = field(init=False)
    _lin: nn.Module | None = field(default=None, init=False)
    _abs: nn.Module | None = field(default=None, init=False)
    _footprints: dict[tuple[str, str], tuple[slice, slice]] = field(
        default_factory=dict, init=False
    )
    _rows: dict[tuple[str, str, int], np.ndarray] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.model.eval()
        self.graph = Dataflow.trace(self.model, self.probe)

    @property
    def lin(self) -> nn.Module:
        if self._lin is None:
            self._lin = linearized(self.model)
        return self._lin

    def expanded(self, src: str, dst: str) -> bool:
        return not self.graph.is_adjacent(src, dst)

    def footprint(self, src: str, dst: str) -> tuple[slice, slice]:
        """Where in `src`'s map the centre units of `dst` can look (their receptive field
        there, over all of `dst`'s channels: a concat's branches see different extents)."""
        key = (src, dst)
        if key not in self._footprints:
            if len(self.graph.shapes[src]) != 3:
                self._footprints[key] = (slice(0, 1), slice(0, 1))
            else:
                if self._abs is None:
                    self._abs = linearized(self.model, absolute=True)
                absolute = self._abs
                every = range(self.graph.shapes[dst][0])
                grad = _summed_rows(absolute, self.graph, src, dst, every, self.probe)
                support = grad.abs().sum(0) > 0
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
        _check_shape(self.graph, src)
        _check_shape(self.graph, dst)
        todo = [c for c in dict.fromkeys(channels) if (src, dst, c) not in self._rows]
        if todo:
            if not self.expanded(src, dst):
                # Adjacent: the weight of `dst`'s own conv or linear layer is the answer.
                own = self.graph.modules[cast(str, self.graph.own_kernel(dst))]
                weight = cast(torch.Tensor, own.weight).detach().float().cpu().numpy()
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
    # The true dataflow: the layer that feeds this unit's own weights, or the first conv or
    # linear layer that reads it, whatever order the modules happen to run in.
    other = request.other_layer or (
        graph.input_layer(ref.layer) if inputs else graph.output_layer(ref.layer)
    )
    # A unit page's default connections on a token-shaped layer (a ViT block): there is no
    # kernel between channels, so the page shows none rather than fail the build; an
    # author's explicit layer pair still gets _check_shape's error.
    tokens = request.other_layer is None and any(
        layer is not None and len(graph.shapes.get(layer, ())) not in (1, 3)
        for layer in (ref.layer, other)
    )
    if other is None or tokens:
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
