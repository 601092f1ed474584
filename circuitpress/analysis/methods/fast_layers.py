"""Local response normalisation computed faster, for the length of a run (the same sums).

`F.local_response_norm` squares its input, sums each channel's window of neighbours with
`avg_pool3d` over a zero-padded channel axis, and divides by the window's size. On a
channels-last tensor that pooling runs a slow generic kernel: in lucent's InceptionV1 (two
LRNs, over 64 and 192 channels) it took a fifth of a feature-visualization step, forward and
backward. Here the window sums are one 1x1 convolution with a banded 0/1 channel matrix
(`band`): row c holds ones at channels c - size//2 … c + (size-1)//2, cut off at the edges
exactly where the zero padding would be, so every sum has the same terms (products by 1 are
exact, by 0 add nothing); only the order of the additions may differ. The rest is
`F.local_response_norm`'s own arithmetic, in its order: divide by `size`, times alpha, plus k,
to the power beta, the input divided by that. Autograd differentiates those same operations.

LRN is usually a functional call inside a module's `forward` (lucent's InceptionV1,
`nn.LocalResponseNorm`, lucent's `LocalResponseNormLayer`), so `fast_local_response_norms`
gives each such module, for the block, an instance `forward` that is its class's own function
with `torch.nn.functional` replaced, in the function's globals only, by a namespace whose
`local_response_norm` is the one here (everything else is `torch.nn.functional`'s). Other
modules, other instances and other threads are untouched.
"""

from __future__ import annotations

import types
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.nn import functional as F

_BANDS: dict[tuple[int, int, torch.dtype, torch.device], torch.Tensor] = {}


def band(channels: int, size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[C, C, 1, 1]: 1 where input channel j is in output channel c's window, else 0."""
    key = (channels, size, dtype, device)
    weight = _BANDS.get(key)
    if weight is None:
        i = torch.arange(channels, device=device)
        offset = i[None, :] - i[:, None]  # j - c
        window = (offset >= -(size // 2)) & (offset <= (size - 1) // 2)
        weight = window.to(dtype)[:, :, None, None]
        if len(_BANDS) > 64:
            _BANDS.clear()
        _BANDS[key] = weight
    return weight


def fast_local_response_norm(
    input: torch.Tensor,
    size: int,
    alpha: float = 1e-4,
    beta: float = 0.75,
    k: float = 1.0,
) -> torch.Tensor:
    """`F.local_response_norm` for [B, C, H, W] floating-point tensors (the window sums as a
    banded 1x1 convolution); anything else goes to `F.local_response_norm` itself."""
    if (
        type(input) is not torch.Tensor
        or input.dim() != 4
        or not input.is_floating_point()
        or input.numel() == 0
    ):
        return F.local_response_norm(input, size, alpha=alpha, beta=beta, k=k)
    div = input.mul(input)
    div = F.conv2d(div, band(input.shape[1], size, input.dtype, input.device))
    div = div.div(size)  # avg_pool3d's divisor: the padded window's size, at the edges too
    div = div.mul(alpha).add(k).pow(beta)
    return input / div


class _Functional(types.ModuleType):
    """`torch.nn.functional`, except `local_response_norm`."""

    local_response_norm = staticmethod(fast_local_response_norm)

    def __getattr__(self, name: str) -> Any:
        return getattr(F, name)


_FUNCTIONAL = _Functional("torch.nn.functional")


def _names(code: types.CodeType) -> set[str]:
    """The global and attribute names a function's code (and code nested in it) uses."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _patched_forward(module: nn.Module) -> Callable[..., Any] | None:
    """The class's `forward` reading the fast LRN, bound to `module`; None if it calls no
    `local_response_norm` of `torch.nn.functional` through a global name."""
    forward = getattr(type(module), "forward", None)
    if not isinstance(forward, types.FunctionType):
        return None
    names = _names(forward.__code__)
    if "local_response_norm" not in names:
        return None
    globals_ = dict(forward.__globals__)
    replaced = False
    for name in names:
        value = globals_.get(name)
        if value is F:
            globals_[name] = _FUNCTIONAL
            replaced = True
        elif value is F.local_response_norm:
            globals_[name] = fast_local_response_norm
            replaced = True
    if not replaced:
        return None
    patched = types.FunctionType(
        forward.__code__, globals_, forward.__name__, forward.__defaults__, forward.__closure__
    )
    patched.__kwdefaults__ = forward.__kwdefaults__
    patched.__qualname__ = forward.__qualname__
    return patched.__get__(module)


@contextmanager
def fast_local_response_norms(module: nn.Module) -> Iterator[int]:
    """Inside the block, every submodule whose `forward` calls `F.local_response_norm`
    computes it with `fast_local_response_norm`; yields how many were patched. Restored on
    exit, whatever happens inside."""
    patched: list[nn.Module] = []
    try:
        for m in module.modules():
            if "forward" in m.__dict__:
                continue  # an instance-level forward is someone else's: leave it alone
            forward = _patched_forward(m)
            if forward is None:
                continue
            # An instance attribute shadows the class's forward; hooks on the module still fire.
            m.forward = forward
            patched.append(m)
        yield len(patched)
    finally:
        for m in patched:
            m.__dict__.pop("forward", None)
