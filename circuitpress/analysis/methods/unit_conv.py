"""The visualized conv layer computing only each image's own unit, for feature visualization.

When every image of a batch optimises one unit of a conv layer (a channel, a neuron, or a
direction: a weighted sum of channels, which is itself one linear filter), the objective reads
one map per image, yet the layer computes all C of them, and the backward pass then carries a
gradient that is zero in every other channel through a full convolution. Here the layer's
forward returns each image's unit map alone, [B, 1, H, W], from that image's own filter
(the unit's weights summed over its channels), which is a B-times-smaller convolution:

- a small kernel ("taps", k <= 3): one batched matmul gives every pixel's dot product with
  each of the k*k taps of its image's filter ([B, H*W, k*k], from the channels-last memory as
  it lies), and k*k slice additions add the taps up at their offsets (zero outside: the
  layer's padding);
- a large kernel (an image-facing 7x7 conv1): the same correlation by FFT (torch.fft, exact up
  to float rounding; 3 input channels make the product over channels nearly free).

On shapes-a (32 images, one core), conv2 forward + backward 6.7 -> ~3 ms; conv1 (7x7 on the
64 px image) ~18 -> ~7 ms. Values equal the full layer's unit maps up to float summation order
(tested). Used only where it applies (`applies`): an exact `nn.Conv2d`, stride 1, "same" zero
padding, no dilation or groups, frozen weights, and a batch in which no request asks for
diversity (the diversity penalty reads every channel of the layer).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
from torch import nn

FFT_FROM = 5  # kernel sizes from this on are correlated by FFT


def applies(conv: nn.Module) -> bool:
    """Whether `conv` is a convolution whose unit maps this module computes."""
    if type(conv) is not nn.Conv2d:
        return False
    k, padding = conv.kernel_size, conv.padding
    return (
        not isinstance(padding, str)
        and k[0] == k[1]
        and k[0] % 2 == 1
        and padding == (k[0] // 2, k[0] // 2)
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and not conv.weight.requires_grad
    )


def unit_filters(
    conv: nn.Conv2d, channels: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's unit as one filter: ([B, Cin, k, k], [B]) from the layer's weights, for
    units given as channels [B, T] with weights [B, T] (padding terms have weight 0)."""
    w = conv.weight.detach().contiguous()
    filters = (w[channels] * weights[:, :, None, None, None]).sum(dim=1)
    if conv.bias is None:
        bias = torch.zeros(len(channels), device=w.device, dtype=w.dtype)
    else:
        bias = (conv.bias.detach()[channels] * weights).sum(dim=1)
    return filters, bias


class _TapSum(torch.autograd.Function):
    """[B, k*k, H, W] tap planes -> [B, 1, H, W]: each pixel's k*k taps added at their offsets
    (zero outside the map: the layer's "same" zero padding). Written as k*k slice additions
    (and, backward, k*k slice copies): a tenth of the 0/1 convolution that does the same."""

    @staticmethod
    def forward(ctx: Any, planes: torch.Tensor, k: int) -> torch.Tensor:
        b, _, h, w = planes.shape
        out = planes.new_zeros(b, h, w)
        for (dst_y, dst_x), (src_y, src_x), tap in _shifts(k, h, w):
            out[:, dst_y, dst_x] += planes[:, tap, src_y, src_x]
        ctx.k, ctx.shape = k, planes.shape
        return out[:, None]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        b, taps, h, w = ctx.shape
        planes = grad.new_zeros(b, taps, h, w)
        for (dst_y, dst_x), (src_y, src_x), tap in _shifts(ctx.k, h, w):
            planes[:, tap, src_y, src_x] = grad[:, 0, dst_y, dst_x]
        return planes, None


def _shifts(
    k: int, h: int, w: int
) -> Iterator[tuple[tuple[slice, slice], tuple[slice, slice], int]]:
    """For each tap (i, j): where in the output it adds, where in its plane it reads, its index."""
    p = k // 2
    for i in range(k):
        for j in range(k):
            dy, dx = i - p, j - p
            dst = (slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx)))
            src = (slice(max(0, dy), h + min(0, dy)), slice(max(0, dx), w + min(0, dx)))
            yield dst, src, i * k + j


def _tap_unit_maps(
    x: torch.Tensor, filters: torch.Tensor, bias: torch.Tensor, k: int
) -> torch.Tensor:
    """Each image's unit map for a small kernel: one batched matmul of every pixel with the
    k*k taps of its image's filter, then the taps added at their offsets."""
    b, c, h, w = x.shape
    pixels = x.permute(0, 2, 3, 1).reshape(b, h * w, c)  # a view for channels-last input
    z = torch.bmm(pixels, filters.reshape(b, c, k * k))  # [B, H*W, k*k]
    planes = z.view(b, h, w, k * k).permute(0, 3, 1, 2)
    return _TapSum.apply(planes, k) + bias[:, None, None, None]


def _fft_unit_maps(
    x: torch.Tensor, spectra: torch.Tensor, bias: torch.Tensor, k: int
) -> torch.Tensor:
    """Correlation of each image with its filter by FFT; `spectra` are the flipped filters'
    rfft2 at the padded size."""
    h, w = x.shape[-2:]
    size = (h + k - 1, w + k - 1)
    full = torch.fft.irfft2((torch.fft.rfft2(x, s=size) * spectra).sum(dim=1), s=size)
    p = k // 2
    return (
        full[:, None, k - 1 - p : k - 1 - p + h, k - 1 - p : k - 1 - p + w]
        + bias[:, None, None, None]
    )


Filters = Callable[[], tuple[torch.Tensor, torch.Tensor]]


@contextmanager
def unit_maps_only(conv: nn.Conv2d, filters: Filters) -> Iterator[None]:
    """Inside the block `conv` returns [B, 1, H, W]: image i's map of the unit whose filter
    `filters()` gives as row i (called on every forward: the batch may shrink). Restored on
    exit, whatever happens inside."""
    k = conv.kernel_size[0]
    spectra: list[tuple[torch.Tensor, torch.Tensor]] = []  # (filters, their spectra): the last

    def forward(x: torch.Tensor) -> torch.Tensor:
        weights, bias = filters()
        weights, bias = weights.to(x.dtype), bias.to(x.dtype)
        if k < FFT_FROM:
            return _tap_unit_maps(x, weights, bias, k)
        h, w = x.shape[-2:]
        if not spectra or spectra[0][0] is not weights:  # the batch shrank: new filters
            spectra[:] = [(weights, torch.fft.rfft2(weights.flip(2, 3), s=(h + k - 1, w + k - 1)))]
        return _fft_unit_maps(x, spectra[0][1], bias, k)

    before = conv.__dict__.get("forward")
    try:
        conv.forward = forward  # type: ignore[method-assign,assignment]
        yield
    finally:
        conv.__dict__.pop("forward", None)
        if before is not None:
            conv.forward = before  # type: ignore[method-assign]
