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
def capture(layers: Sequence[nn.Module], *, stop: bool = True) -> Iterator[list[torch.Tensor | None]]:
    """Record the outputs of `layers` (in the given order) during forwards inside the block.

    With `stop`, the forward ends as soon as all of them fired: use `run` to call the model.
    Hooks are removed when the block exits, whatever happens inside it.
    """
    outputs: list[torch.Tensor | None] = [None] * len(layers)
    pending = [len(layers)]
    handles = []

    def make(i: int) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            if outputs[i] is None:
                pending[0] -= 1
            outputs[i] = output
            if stop and pending[0] == 0:
                raise _StopForward

        return hook

    try:
        for i, layer in enumerate(layers):
            handles.append(layer.register_forward_hook(make(i)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def run(module: nn.Module, x: torch.Tensor, outputs: list[torch.Tensor | None]) -> list[torch.Tensor]:
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
