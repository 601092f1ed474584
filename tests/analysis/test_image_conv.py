"""The phase-grid input gradient of a first convolution equals the direct one."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from circuitpress.analysis.methods.image_conv import applies, fast_image_gradients


def frozen_conv(k: int, channels: int = 3, **kw: object) -> nn.Conv2d:
    torch.manual_seed(k)
    conv = nn.Conv2d(channels, 16, k, **kw)  # type: ignore[arg-type]  # kw typed object
    conv.requires_grad_(False)
    return conv


@pytest.mark.parametrize("k", [1, 3, 5, 7, 9])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_gradient_equals_the_direct_one(k: int, layout: torch.memory_format) -> None:
    conv = frozen_conv(k, padding=k // 2).to(memory_format=layout)
    x = torch.rand(3, 3, 12, 18).contiguous(memory_format=layout).requires_grad_(True)
    weights = torch.randn(3, 16, 12, 18)
    (conv(x) * weights).sum().backward()
    direct, x.grad = x.grad.clone(), None
    with fast_image_gradients(conv) as patched:
        out = conv(x)
        (out * weights).sum().backward()
    assert patched == 1 and "forward" not in conv.__dict__
    torch.testing.assert_close(out, nn.functional.conv2d(x, conv.weight, conv.bias, padding=k // 2))
    torch.testing.assert_close(x.grad, direct, rtol=1e-5, atol=1e-5)
    assert x.grad.is_contiguous(memory_format=layout)


@pytest.mark.parametrize(
    ("k", "padding", "height", "width"),
    [(7, 0, 133, 133), (7, 3, 20, 21), (5, 2, 16, 17), (3, 1, 9, 12), (4, 1, 10, 10), (1, 0, 7, 6)],
)
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_stride_two_gradient_equals_the_direct_one(
    k: int, padding: int, height: int, width: int, layout: torch.memory_format
) -> None:
    """lucent's InceptionV1 starts with a 7x7 stride-2 conv on an explicitly padded image."""
    conv = frozen_conv(k, padding=padding, stride=2).to(memory_format=layout)
    x = torch.rand(2, 3, height, width).contiguous(memory_format=layout).requires_grad_(True)
    out = conv(x)
    weights = torch.randn(out.shape)
    (out * weights).sum().backward()
    direct, x.grad = x.grad.clone(), None
    with fast_image_gradients(conv) as patched:
        fast_out = conv(x)
        (fast_out * weights).sum().backward()
    assert patched == 1 and "forward" not in conv.__dict__
    assert torch.equal(fast_out, out)
    torch.testing.assert_close(x.grad, direct, rtol=1e-5, atol=1e-5)
    assert x.grad.is_contiguous(memory_format=layout)


def test_only_convolutions_it_was_written_for() -> None:
    assert applies(frozen_conv(7, padding=3))
    assert not applies(frozen_conv(7, padding=0))  # not "same"
    assert applies(frozen_conv(3, padding=1, stride=2))  # stride 2: any padding
    assert applies(frozen_conv(7, padding=0, stride=2))
    assert not applies(frozen_conv(3, padding=1, stride=3))
    assert not applies(frozen_conv(3, padding=(1, 0), stride=2))
    assert not applies(frozen_conv(3, padding=1, dilation=2))
    assert not applies(frozen_conv(3, channels=16, padding=1))  # not an image-like input
    assert not applies(nn.Conv2d(3, 16, 3, padding=1))  # trainable weights need their gradient
    odd = frozen_conv(3, padding=1)
    x = torch.rand(1, 3, 7, 8, requires_grad=True)  # odd height: the direct gradient
    with fast_image_gradients(odd):
        odd(x).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
