"""Forward hooks that are always removed, and forwards that stop at the last layer needed.

lucent's `render_vis` registers hooks on every module and never removes them; here a hook lives
exactly as long as its `with` block. Analyses only need activations up to some layer, so the
forward pass is cut short there (an exception raised from the hook), which saves the cost of
every later layer in both the forward and the backward pass.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import torch
from torch import nn


class _StopForward(Exception):
    """Raised from a hook once every wanted layer has produced its output."""


def as_maps(output: torch.Tensor) -> torch.Tensor:
    """A layer output as [B, C, H, W]: dense outputs [B, C] become 1x1 maps."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    if output.dim() == 2:
        return output[:, :, None, None]
    if output.dim() != 4:
        raise ValueError(f"unsupported layer output shape {tuple(output.shape)}")
    return output


@contextmanager
def capture(
    layers: Sequence[nn.Module], *, stop: bool = True
) -> Iterator[list[torch.Tensor | None]]:
    """Record the outputs of `layers` (in the given order) during forwards inside the block.

    With `stop`, the forward ends as soon as all of them fired: use `run` to call the model.
    Hooks are removed when the block exits, whatever happens inside it.
    """
    outputs: list[torch.Tensor | None] = [None] * len(layers)
    handles = []

    def make(i: int) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            outputs[i] = output
            # Judged from `outputs` itself, which `run` resets before every forward: a counter
            # kept here ran out after the first forward and never stopped another.
            if stop and all(o is not None for o in outputs):
                raise _StopForward

        return hook

    try:
        for i, layer in enumerate(layers):
            handles.append(layer.register_forward_hook(make(i)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def run(
    module: nn.Module, x: torch.Tensor, outputs: list[torch.Tensor | None]
) -> list[torch.Tensor]:
    """Call `module(x)` inside a `capture` block, resetting and returning the captured outputs."""
    for i in range(len(outputs)):
        outputs[i] = None
    try:
        module(x)
    except _StopForward:
        pass
    missing = [i for i, o in enumerate(outputs) if o is None]
    if missing:
        raise RuntimeError(f"layers {missing} did not run in the forward pass")
    return [o for o in outputs if o is not None]


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no weight gradients inside the block; both restored afterwards.

    Feature visualization only needs gradients with respect to the image: skipping the weight
    gradients roughly halves the backward pass.
    """
    was_training = module.training
    flags = [(p, p.requires_grad) for p in module.parameters()]
    try:
        module.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        module.train(was_training)


@contextmanager
def channels_last(module: nn.Module) -> Iterator[bool]:
    """Convolution weights in channels-last layout inside the block, restored afterwards.

    oneDNN (CPU) and cuDNN run convolutions and pooling faster on NHWC tensors (about 15% on
    the zoo models on a CPU core); yields whether the model has 4-D weights worth converting.
    """
    has_conv = any(p.dim() == 4 for p in module.parameters())
    if not has_conv:
        yield False
        return
    module.to(memory_format=torch.channels_last)
    try:
        yield True
    finally:
        module.to(memory_format=torch.contiguous_format)


class _RedirectedReLU(torch.autograd.Function):
    """ReLU whose gradient is redirected for images it would otherwise block entirely.

    Lucid's `redirected_relu_grad`: if a ReLU passes no gradient at all for an image (its
    inputs are all negative where the objective looks), the image could never change that unit,
    and its visualization stays the grey it started as. For such images the gradient is passed
    through as if the ReLU were the identity, except where it would push an already negative
    input further down. Images the ordinary gradient reaches are untouched, and the decision is
    per image, so batching still does not change an image.
    """

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)  # type: ignore[attr-defined]
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors  # type: ignore[attr-defined]
        relu_grad = torch.ops.aten.threshold_backward(grad, x, 0)  # the ordinary ReLU gradient
        # The common case costs one reduction: the redirected gradient is built only for the
        # images that the ordinary one does not reach at all.
        dims = tuple(
            range(1, relu_grad.dim())
        )  # reduced in place: flatten() would copy channels-last
        blocked = torch.nonzero(
            (relu_grad.amax(dim=dims) == 0) & (relu_grad.amin(dim=dims) == 0)
        ).flatten()
        if blocked.numel():
            g, xb = grad[blocked], x[blocked]
            # Descent moves x against the gradient: grad > 0 at x < 0 would push it lower still.
            relu_grad[blocked] = torch.where((xb < 0) & (g > 0), 0.0, g)
        return relu_grad


def _redirected_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return _RedirectedReLU.apply(x)


@contextmanager
def redirected_relus(module: nn.Module) -> Iterator[int]:
    """Every `nn.ReLU` submodule computes the same ReLU with a redirected gradient inside the
    block (forward values are unchanged); yields how many were redirected. Functional
    `F.relu` calls cannot be reached and keep the ordinary gradient."""
    # Exactly nn.ReLU: a subclass may compute something else in its own forward.
    relus = [m for m in module.modules() if type(m) is nn.ReLU]
    saved = [relu.__dict__.get("forward") for relu in relus]
    try:
        for relu in relus:
            # An instance attribute shadows the class's forward; hooks on the module still fire.
            relu.forward = _redirected_forward.__get__(relu)  # type: ignore[method-assign]
        yield len(relus)
    finally:
        for relu, before in zip(relus, saved):
            relu.__dict__.pop("forward", None)
            if before is not None:
                relu.forward = before  # type: ignore[method-assign]
