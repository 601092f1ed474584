"""Model modes for the length of a block: eval without weight gradients, channels-last weights.

Both are restored on exit, whatever happens inside the block, so an analysis never leaves a
loaded model in another state than it found it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


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
