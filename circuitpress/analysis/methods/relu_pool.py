"""A ReLU followed by a max-pool, computed as the pool then the ReLU, for feature visualization.

ReLU is monotone, so max-pooling commutes with it: `pool(relu(x)) == relu(pool(x))`, value for
value. The right-hand side runs the ReLU (forward, backward and the redirected gradient's
per-image check) on the pooled tensor: a quarter of the elements behind a 2x2 pool. On shapes-a
(`conv1 -> relu1 -> pool1`, 32 images of 64 px) that is most of the memory traffic between
its two convolutions; torchvision's ResNets start with the same pair.

The gradient is the unfused one, bit for bit (`_PooledReLU`), also the redirected gradient of
`redirected_relus`:
- a window whose maximum is positive sends its gradient to the same input as before (its
  argmax is the argmax of the ReLU'd window), where the ReLU passes it;
- a window whose maximum is <= 0 passes nothing either way (the unfused ReLU blocks its
  argmax, an input <= 0; here the ReLU of the pooled value does);
- so the input gradient is the unfused one bit for bit, and the images it leaves with no
  gradient at all are found on it; for those (the redirected gradient, rare) the unfused
  computation is run as it was.
Forward values are equal, except that a window whose maximum is -0.0 gives -0.0 here and +0.0
unfused (equal as numbers).

Applied only where it cannot change what anything sees: an exact `nn.ReLU` and an exact
`nn.MaxPool2d` (no indices returned), each called once in the pass and neither hooked, the pool
reading the ReLU's output and no other torch call in the pass reading it (counted in a probe
pass by a `TorchFunctionMode`, so `.detach()` or a no-grad read counts too), neither of them
the layer being visualized.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from circuitpress.analysis.methods.dataflow import tensors_in
from circuitpress.analysis.methods.relu_gradient import blocked_images, is_redirected
from circuitpress.analysis.models.capture import capture


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _pool_args(pool: nn.MaxPool2d) -> tuple[Any, ...]:
    stride = pool.stride if pool.stride is not None else pool.kernel_size
    return (pool.kernel_size, stride, pool.padding, pool.dilation, pool.ceil_mode)


class _PooledReLU(torch.autograd.Function):
    """`relu(max_pool(x))` with the gradient of `max_pool(relu(x))`, redirected (as
    `redirected_relus` does) where `redirect` is set."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, pool: nn.MaxPool2d, redirect: bool) -> torch.Tensor:
        args = _pool_args(pool)
        pooled, index = torch.ops.aten.max_pool2d_with_indices(x, *args)
        ctx.args, ctx.redirect = args, redirect
        ctx.save_for_backward(x, pooled, index)
        return pooled.clamp_min(0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        x, pooled, index = ctx.saved_tensors
        args = ctx.args
        passed = torch.ops.aten.threshold_backward(grad, pooled, 0)
        out = torch.ops.aten.max_pool2d_with_indices_backward(passed, x, *args, index)
        if not ctx.redirect:
            return out, None, None
        # `out` is the unfused ReLU's gradient bit for bit, so its zero images are the unfused
        # check's; where windows do not overlap, `passed` is zero exactly where `out` is (each
        # input gets at most one window's gradient), and is 1/4 of the size to scan.
        kernel, stride = _pair(args[0]), _pair(args[1])
        overlap = any(s < k for s, k in zip(stride, kernel, strict=True))
        blocked = blocked_images(out if overlap else passed)
        if blocked.numel():
            # The images no gradient reaches: the unfused redirected gradient, as it was.
            xb = x[blocked]
            relu_b = xb.clamp_min(0)
            _, index_b = torch.ops.aten.max_pool2d_with_indices(relu_b, *args)
            g = torch.ops.aten.max_pool2d_with_indices_backward(
                grad[blocked], relu_b, *args, index_b
            )
            out[blocked] = torch.where((xb < 0) & (g > 0), 0.0, g)
        return out, None, None


class _Readers(TorchFunctionMode):
    """Counts the torch calls that read each watched tensor (autograd or not: `.detach()`,
    `.item()`, a comparison, a call under `no_grad` all count)."""

    def __init__(self) -> None:
        super().__init__()
        self.watched: dict[int, tuple[torch.Tensor, list[int]]] = {}

    def watch(self, t: torch.Tensor) -> None:
        self.watched[id(t)] = (t, [0])

    def reads(self, t: torch.Tensor) -> int:
        entry = self.watched.get(id(t))
        return entry[1][0] if entry is not None and entry[0] is t else -1

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        if self.watched and getattr(func, "__name__", "") != "__get__":  # not attribute reads
            for t in tensors_in((args, kwargs)):
                entry = self.watched.get(id(t))
                if entry is not None and entry[0] is t:
                    entry[1][0] += 1
        return func(*args, **kwargs)


def _hooked(module: nn.Module) -> bool:
    """Whether anything but this module's own code sees its inputs or output."""
    from torch.nn.modules import module as module_globals

    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or module_globals._global_forward_hooks
        or module_globals._global_forward_pre_hooks
    )


def relu_pool_pairs(
    model: nn.Module, layer: str, probe: torch.Tensor
) -> list[tuple[nn.ReLU, nn.MaxPool2d]]:
    """The (ReLU, max-pool) pairs of `model` that may run fused in a pass that ends at `layer`
    (see the module's docstring), found by one pass on `probe`: the ReLU's output is read by
    exactly one torch call in the pass, the pool's."""
    modules = dict(model.named_modules())
    target = modules.get(layer)
    watched = [
        m
        for m in modules.values()
        if (type(m) is nn.ReLU or (type(m) is nn.MaxPool2d and not m.return_indices))
        and m is not target
        and not _hooked(m)
    ]
    if not any(type(m) is nn.ReLU for m in watched):
        return []
    calls: dict[nn.Module, int] = {}
    outputs: dict[nn.Module, torch.Tensor] = {}
    inputs: dict[nn.Module, torch.Tensor] = {}
    readers = _Readers()

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        calls[module] = calls.get(module, 0) + 1
        if isinstance(output, torch.Tensor) and args and isinstance(args[0], torch.Tensor):
            inputs[module], outputs[module] = args[0], output
            if type(module) is nn.ReLU:
                readers.watch(output)

    handles = [m.register_forward_hook(hook) for m in watched]
    try:
        with torch.enable_grad(), capture(model, [layer]) as cap, readers:
            cap.run(probe.detach().clone().requires_grad_(True))
    finally:
        for h in handles:
            h.remove()
    pairs = []
    for relu in (m for m in watched if type(m) is nn.ReLU and calls.get(m) == 1):
        out = outputs.get(relu)
        if out is None or readers.reads(out) != 1:
            continue
        for pool in (m for m in watched if type(m) is nn.MaxPool2d and calls.get(m) == 1):
            if inputs.get(pool) is out:  # the one read is the pool's
                pairs.append((relu, pool))
    return pairs


def _identity(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return x


def _fused_forward(pool: nn.MaxPool2d, redirect: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled() or not x.requires_grad:
            return F.relu(F.max_pool2d(x, *_pool_args(pool)))
        return _PooledReLU.apply(x, pool, redirect)

    return forward


@contextmanager
def pooled_relus(model: nn.Module, layer: str, probe: torch.Tensor) -> Iterator[int]:
    """Inside the block, each fusable (ReLU, max-pool) pair of a pass to `layer` runs as the
    pool then the ReLU, with the ReLU's gradient bit for bit (the redirected one where the ReLU
    is inside `redirected_relus`); yields how many pairs. Restored on exit, whatever happens
    inside."""
    pairs = relu_pool_pairs(model, layer, probe)
    saved = [(m, m.__dict__.get("forward")) for pair in pairs for m in pair]
    try:
        for relu, pool in pairs:
            # Instance forwards shadow the classes' (mypy forbids assigning to a method).
            redirect = is_redirected(relu)  # the gradient the ReLU computes now, kept
            relu.forward = _identity.__get__(relu)  # type: ignore[method-assign]
            pool.forward = _fused_forward(pool, redirect)  # type: ignore[method-assign,assignment]
        yield len(pairs)
    finally:
        for module, before in saved:
            module.__dict__.pop("forward", None)
            if before is not None:
                module.forward = before  # type: ignore[method-assign]
