"""A ReLU followed by a max-pool runs as the pool then the ReLU: the same values and gradients,
bit for bit, also the redirected gradient of images no ordinary gradient reaches."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from circuitpress.analysis.methods.relu_gradient import redirected_relus
from circuitpress.analysis.methods.relu_pool import pooled_relus, relu_pool_pairs


class Net(nn.Module):
    def __init__(self, pool: nn.MaxPool2d) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = pool
        self.conv2 = nn.Conv2d(6, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.pool1(self.relu1(self.conv1(x))))


POOLS = [
    nn.MaxPool2d(2),  # shapes-a's: windows apart
    nn.MaxPool2d(3, stride=2, padding=1),  # a ResNet stem's: windows overlap, padded
    nn.MaxPool2d(3, stride=2, ceil_mode=True),
]


def _input_grad(
    model: nn.Module, x: torch.Tensor, weights: torch.Tensor, fused: bool, redirect: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    import contextlib

    x = x.clone().requires_grad_(True)
    with contextlib.ExitStack() as stack:
        if redirect:
            stack.enter_context(redirected_relus(model))
        if fused:
            assert stack.enter_context(pooled_relus(model, "conv2", x[:1])) == 1
        out = model(x)
        (out * weights).sum().backward()
    assert x.grad is not None
    return out.detach(), x.grad


@pytest.mark.parametrize("pool", POOLS, ids=["2x2", "3x3-s2-p1", "3x3-s2-ceil"])
@pytest.mark.parametrize("redirect", [False, True], ids=["plain", "redirected"])
def test_fused_values_and_gradients_are_the_unfused_ones_bit_for_bit(
    pool: nn.MaxPool2d, redirect: bool
) -> None:
    torch.manual_seed(0)
    model = Net(pool).eval()
    x = torch.randn(5, 3, 13, 13)
    with torch.no_grad():
        # Image 2 makes conv1 negative everywhere: the ReLU blocks its gradient entirely, so
        # the redirected gradient is the one that reaches it.
        x[2] = -50.0
        model.conv1.bias.fill_(0.0)
        model.conv1.weight.abs_()
    weights = torch.randn(5, 4, *model(x).shape[2:])
    plain_out, plain_grad = _input_grad(model, x, weights, fused=False, redirect=redirect)
    fused_out, fused_grad = _input_grad(model, x, weights, fused=True, redirect=redirect)
    assert torch.equal(plain_out, fused_out)
    assert torch.equal(plain_grad, fused_grad)
    assert bool(plain_grad[2].abs().sum() > 0) is redirect  # the blocked image, redirected
    assert "forward" not in model.relu1.__dict__ and "forward" not in model.pool1.__dict__


def test_channels_last_gradients_agree_too() -> None:
    torch.manual_seed(1)
    model = Net(nn.MaxPool2d(2)).eval().to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 16, 16).contiguous(memory_format=torch.channels_last)
    weights = torch.randn(4, 4, 8, 8)
    a = _input_grad(model, x, weights, fused=False, redirect=True)
    b = _input_grad(model, x, weights, fused=True, redirect=True)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_shapes_a_pair_is_found_only_below_the_visualised_layer() -> None:
    from circuitpress.analysis.models.zoo.models import build_model

    model = build_model("shapes-a").eval()
    probe = torch.rand(1, 3, 64, 64)
    assert relu_pool_pairs(model, "conv2", probe) == [(model.relu1, model.pool1)]
    # conv3's pass runs both pairs; a pass to relu1 or pool1 must see them as they are.
    assert set(relu_pool_pairs(model, "conv3", probe)) == {
        (model.relu1, model.pool1),
        (model.relu2, model.pool2),
    }
    assert relu_pool_pairs(model, "relu1", probe) == []
    assert relu_pool_pairs(model, "pool1", probe) == []


class TwoReaders(Net):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.relu1(self.conv1(x))
        return self.conv2(self.pool1(r) + r[:, :, ::2, ::2])  # the ReLU's output read twice


class Reused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv3 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One ReLU module, called twice before conv3.
        return self.conv3(self.relu(self.conv2(self.pool(self.relu(self.conv1(x))))))


def test_pairs_whose_relu_output_is_read_elsewhere_or_reused_are_left_alone() -> None:
    probe = torch.rand(1, 3, 8, 8)
    assert relu_pool_pairs(TwoReaders(nn.MaxPool2d(2)), "conv2", probe) == []
    model = Reused()
    assert relu_pool_pairs(model, "conv3", probe) == []
    # A pass that ends at conv2 calls the ReLU once: there the pair is safe to fuse.
    assert relu_pool_pairs(model, "conv2", probe) == [(model.relu, model.pool)]


class SideOutput(Net):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.relu1(self.conv1(x))
        self.side = self.pool1(r)  # the pool's output goes nowhere on the way to conv2
        return self.conv2(r)


class DetachedReader(Net):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.relu1(self.conv1(x))
        return self.conv2(self.pool1(r) / (1 + r.detach().mean()))  # a read autograd never sees


def test_a_relu_output_read_by_anything_else_is_never_fused() -> None:
    probe = torch.rand(1, 3, 8, 8)
    assert relu_pool_pairs(SideOutput(nn.MaxPool2d(2)), "conv2", probe) == []
    assert relu_pool_pairs(DetachedReader(nn.MaxPool2d(2)), "conv2", probe) == []
    hooked = Net(nn.MaxPool2d(2))
    assert relu_pool_pairs(hooked, "conv2", probe) == [(hooked.relu1, hooked.pool1)]
    handle = hooked.relu1.register_forward_hook(lambda m, i, o: o - 0.5)  # sees the ReLU's output
    try:
        assert relu_pool_pairs(hooked, "conv2", probe) == []
    finally:
        handle.remove()


def test_visualize_fuses_shapes_a_and_restores_it() -> None:
    from circuitpress.analysis.methods import relu_pool
    from circuitpress.analysis.methods.featurevis import visualize
    from circuitpress.analysis.models.zoo.models import build_model
    from circuitpress.requests import FeatureVisRequest, UnitRef

    model = build_model("shapes-a").eval()
    found: list[int] = []
    real = relu_pool.relu_pool_pairs

    def spy(*args: object) -> list[tuple[nn.ReLU, nn.MaxPool2d]]:
        pairs = real(*args)  # type: ignore[arg-type]
        found.append(len(pairs))
        return pairs

    relu_pool.relu_pool_pairs = spy  # type: ignore[assignment]
    try:
        request = FeatureVisRequest(UnitRef("shapes-a", "conv2", ((3, 1.0),)), 32, 4)
        visualize(model, "conv2", [request], normalize=lambda x: (x - 0.5) / 0.25)
    finally:
        relu_pool.relu_pool_pairs = real  # type: ignore[assignment]
    assert found == [1]  # relu1 -> pool1, found inside visualize's other swaps
    assert "forward" not in model.relu1.__dict__ and "forward" not in model.pool1.__dict__
