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
- so an image gets no gradient at all in exactly the same cases, and for those images (the
  redirected gradient, rare) the unfused computation is run as it was.

Applied only where it cannot change what anything sees: an exact `nn.ReLU` and an exact
`nn.MaxPool2d` (no indices returned), each called once in the pass, the pool reading the ReLU's
output and nothing else in the pass reading it (counted in the autograd graph of a probe pass),
neither of them the layer being visualized.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from circuitpress.analysis.methods.relu_gradient import blocked_images, is_redirected
from circuitpress.analysis.models.capture import capture


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
        blocked = blocked_images(passed)
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


def relu_pool_pairs(
    model: nn.Module, layer: str, probe: torch.Tensor
) -> list[tuple[nn.ReLU, nn.MaxPool2d]]:
    """The (ReLU, max-pool) pairs of `model` that may run fused in a pass that ends at `layer`
    (see the module's docstring), found by one pass on `probe` with gradients on."""
    modules = dict(model.named_modules())
    target = modules.get(layer)
    calls: dict[nn.Module, int] = {}
    outputs: dict[nn.Module, torch.Tensor] = {}
    inputs: dict[nn.Module, torch.Tensor] = {}

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        calls[module] = calls.get(module, 0) + 1
        if isinstance(output, torch.Tensor) and args and isinstance(args[0], torch.Tensor):
            inputs[module], outputs[module] = args[0], output

    watched = [
        m
        for m in modules.values()
        if (type(m) is nn.ReLU or (type(m) is nn.MaxPool2d and not m.return_indices))
        and m is not target
    ]
    handles = [m.register_forward_hook(hook) for m in watched]
    try:
        with torch.enable_grad(), capture(model, [layer]) as cap:
            (acts,) = cap.run(probe.detach().clone().requires_grad_(True))
    finally:
        for h in handles:
            h.remove()
    if not isinstance(acts, torch.Tensor) or acts.grad_fn is None:
        return []
    uses = _uses(acts.grad_fn)
    pairs = []
    for pool in (m for m in watched if type(m) is nn.MaxPool2d and calls.get(m) == 1):
        for relu in (m for m in watched if type(m) is nn.ReLU and calls.get(m) == 1):
            out = outputs.get(relu)
            if (
                out is not None
                and inputs.get(pool) is out
                and out.grad_fn is not None
                and uses.get(out.grad_fn, 0) == 1
            ):
                pairs.append((relu, pool))
    return pairs


def _uses(root: Any) -> dict[Any, int]:
    """How many edges of the autograd graph below `root` lead to each node."""
    uses: dict[Any, int] = {}
    seen = {root}
    todo = [root]
    while todo:
        node = todo.pop()
        for nxt, _ in node.next_functions:
            if nxt is None:
                continue
            uses[nxt] = uses.get(nxt, 0) + 1
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return uses


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
