"""Modes for the length of a block: eval without weight gradients, channels-last weights, and
an allocator that keeps the memory an optimisation frees.

Each is restored on exit, whatever happens inside the block, so an analysis never leaves a
loaded model in another state than it found it.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import torch
from torch import nn

T = TypeVar("T")


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
def channels_last(module: nn.Module, enabled: bool = True) -> Iterator[bool]:
    """Convolution weights in channels-last layout inside the block, restored afterwards.

    oneDNN (CPU) and cuDNN run convolutions and pooling faster on NHWC tensors (about 15% on
    the zoo models on a CPU core); yields whether the model has 4-D weights worth converting
    (False, and nothing changed, when not `enabled`).
    """
    has_conv = enabled and any(p.dim() == 4 for p in module.parameters())
    if not has_conv:
        yield False
        return
    module.to(memory_format=torch.channels_last)
    try:
        yield True
    finally:
        module.to(memory_format=torch.contiguous_format)


def in_either_layout(run: Callable[[bool], T]) -> T:
    """`run(True)`: a pass with the model channels-last (`channels_last(model, enabled)`);
    where the model's own code cannot take channels-last activations (a `.view` after a conv
    raises), `run(False)`, the model as it ships. A failure of both is the model's error."""
    from circuitpress.analysis.models.capture import ForwardError

    try:
        return run(True)
    except ForwardError:
        return run(False)


def nhwc_input(x: torch.Tensor, nhwc: bool) -> torch.Tensor:
    """An image batch in the layout of a model inside `channels_last` (`nhwc`: what it
    yielded): a model with channels-last weights runs fastest on channels-last inputs."""
    if nhwc and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


# glibc's mallopt parameters (malloc.h) and the values restored after the block.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
AFTER_MMAP_THRESHOLD = 32 * 2**20  # the ceiling of glibc's own dynamic threshold (64-bit)
AFTER_TRIM_THRESHOLD = 2 * AFTER_MMAP_THRESHOLD  # what its dynamic rule pairs with it
DEFAULT_MMAP_MAX = 65536
_lock = threading.Lock()
_holders = 0


def _glibc() -> Any | None:
    """The C library if it is glibc (whose malloc `kept_memory` tunes), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, ValueError, AttributeError):
        return None
    return libc


@contextmanager
def kept_memory(enabled: bool = True) -> Iterator[bool]:
    """Inside the block, glibc's malloc keeps the memory that is freed for reuse instead of
    handing it back to the kernel; yields whether it does (Linux with glibc only).

    Every optimisation step allocates and frees the same large tensors (activations, their
    gradients). glibc serves blocks over its mmap threshold with fresh mappings and returns
    the free top of its heap past the trim threshold, so each step page-faults all of them in
    again: on one CPU core 10-20% of a shapes-a step and ~10% of an InceptionV1 step were the
    kernel zeroing pages (`ru_minflt` ~5,000 and ~60,000 per step). Here every block comes from
    the heap and none goes back while the block runs; on exit the mmap and trim thresholds are
    set to the values glibc's own dynamic adjustment ends at for large blocks (setting any of
    them turns that adjustment off for good), and `malloc_trim` returns what was kept. Nothing
    computed changes: only where the memory comes from. Nested and concurrent blocks share one
    setting; the last to leave restores it.
    """
    global _holders
    libc = _glibc() if enabled else None
    if libc is None:
        yield False
        return
    with _lock:
        _holders += 1
        if _holders == 1:
            libc.mallopt(M_MMAP_MAX, 0)  # no mmap: large blocks from the heap
            libc.mallopt(M_TRIM_THRESHOLD, -1)  # never trim the heap's free top
    try:
        yield True
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.mallopt(M_MMAP_THRESHOLD, AFTER_MMAP_THRESHOLD)
                libc.mallopt(M_TRIM_THRESHOLD, AFTER_TRIM_THRESHOLD)
                libc.malloc_trim(0)
