"""Lucid's redirected ReLU gradient, for feature visualization (forward values unchanged)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn


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
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        relu_grad = torch.ops.aten.threshold_backward(grad, x, 0)  # the ordinary ReLU gradient
        # The common case costs one reduction: the redirected gradient is built only for the
        # images that the ordinary one does not reach at all. Reduced in place over every
        # dimension but the batch: flatten() would copy a channels-last gradient.
        dims = tuple(range(1, relu_grad.dim()))
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
            # (mypy forbids assigning to a method: here that is the point.)
            relu.forward = _redirected_forward.__get__(relu)  # type: ignore[method-assign]
        yield len(relus)
    finally:
        for relu, before in zip(relus, saved, strict=True):
            relu.__dict__.pop("forward", None)
            if before is not None:  # an instance forward someone set before us comes back
                relu.forward = before  # type: ignore[method-assign]  # (restoring it, as above)
