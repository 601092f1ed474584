"""The visualized conv computes each image's own unit map alone: the same maps and input
gradients as the full layer read at the unit, for small kernels (taps) and large ones (FFT)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from circuitpress.analysis.methods.featurevis import visualize
from circuitpress.analysis.methods.unit_conv import applies, unit_filters, unit_maps_only
from circuitpress.requests import FeatureVisRequest, UnitRef


def _units(conv: nn.Conv2d, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: a single channel, or a direction of three channels (padded with weight 0)."""
    channels = torch.zeros(batch, 3, dtype=torch.long)
    weights = torch.zeros(batch, 3)
    for i in range(batch):
        if i % 2:
            channels[i] = torch.tensor([i % conv.out_channels, 0, 2])
            weights[i] = torch.tensor([0.7, -0.4, 1.3])
        else:
            channels[i, 0], weights[i, 0] = i % conv.out_channels, 1.0
    return channels, weights


@pytest.mark.parametrize(
    "cin,cout,k,size,bias",
    [(16, 32, 3, 12, True), (3, 16, 7, 20, True), (4, 6, 5, 9, False), (2, 3, 1, 6, True)],
    ids=["3x3 taps", "7x7 fft", "5x5 fft no bias", "1x1 taps"],
)
def test_unit_maps_and_gradients_equal_the_full_layers(
    cin: int, cout: int, k: int, size: int, bias: bool
) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias).requires_grad_(False)
    assert applies(conv)
    batch = 6
    channels, weights = _units(conv, batch)
    x = torch.randn(batch, cin, size, size).contiguous(memory_format=torch.channels_last)
    g = torch.randn(batch, size, size)

    full_x = x.clone().requires_grad_(True)
    full = conv(full_x)
    expected = (full[torch.arange(batch)[:, None], channels] * weights[:, :, None, None]).sum(1)
    (expected * g).sum().backward()

    filters = unit_filters(conv, channels, weights)
    own_x = x.clone().requires_grad_(True)
    with unit_maps_only(conv, lambda: filters):
        own = conv(own_x)
    assert own.shape == (batch, 1, size, size)
    (own[:, 0] * g).sum().backward()
    assert "forward" not in conv.__dict__  # restored
    torch.testing.assert_close(own[:, 0], expected, rtol=1e-5, atol=1e-5)
    assert full_x.grad is not None and own_x.grad is not None
    torch.testing.assert_close(own_x.grad, full_x.grad, rtol=1e-5, atol=1e-5)


def test_only_plain_same_convolutions_qualify() -> None:
    frozen = {"bias": True}
    assert not applies(nn.Conv2d(3, 4, 3, padding=1))  # weights still train
    for conv in (
        nn.Conv2d(3, 4, 3, padding=0, **frozen),
        nn.Conv2d(3, 4, 3, padding=1, stride=2, **frozen),
        nn.Conv2d(4, 4, 3, padding=1, groups=2, **frozen),
        nn.Conv2d(3, 4, 3, padding=2, dilation=2, **frozen),
        nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect", **frozen),
        nn.Conv2d(3, 4, 4, padding="same", **frozen),
    ):
        conv.requires_grad_(False)
        assert not applies(conv), conv


def _shapes_a() -> nn.Module:
    from circuitpress.analysis.models.zoo.models import build_model

    torch.manual_seed(3)
    return build_model("shapes-a").eval()


def _norm(x: torch.Tensor) -> torch.Tensor:
    return (x - 0.5) / 0.25


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
def test_images_equal_those_of_the_full_layer(layer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch whose layer computes unit maps alone makes the images the full layer makes
    (channels, a neuron, a negative, a direction, lucent's plain-mean objective), within float
    noise over the steps."""
    from circuitpress.analysis.methods import featurevis

    model = _shapes_a()
    requests = [
        FeatureVisRequest(UnitRef("shapes-a", layer, ((3, 1.0),)), 32, 12),
        FeatureVisRequest(UnitRef("shapes-a", layer, ((5, 1.0),)), 32, 12, negative=True),
        FeatureVisRequest(UnitRef("shapes-a", layer, ((1, 1.0),), position=(4, 6)), 32, 12),
        FeatureVisRequest(UnitRef("shapes-a", layer, ((0, 0.6), (7, -0.8))), 32, 12, seed=4),
        FeatureVisRequest(UnitRef("shapes-a", layer, ((3, 1.0),)), 32, 12, objective="mean"),
    ]
    used: list[bool] = []
    real = featurevis.unit_maps_only

    def spy(conv: nn.Conv2d, filters: object) -> object:
        used.append(True)
        return real(conv, filters)  # type: ignore[arg-type]

    monkeypatch.setattr(featurevis, "unit_maps_only", spy)
    direct = visualize(model, layer, requests, normalize=_norm)
    assert used == [True]
    monkeypatch.setattr(featurevis, "unit_conv_applies", lambda conv: False)
    full = visualize(model, layer, requests, normalize=_norm)
    assert used == [True]  # the second run used the full layer
    for r in requests:
        np.testing.assert_allclose(direct[r].arrays["images"], full[r].arrays["images"], atol=2e-3)
        np.testing.assert_allclose(
            direct[r].data["activation"], full[r].data["activation"], rtol=1e-3, atol=1e-4
        )


def test_a_batch_with_diversity_keeps_the_full_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    from circuitpress.analysis.methods import featurevis

    used: list[bool] = []
    monkeypatch.setattr(
        featurevis,
        "unit_maps_only",
        lambda *a: used.append(True),  # would fail if entered
    )
    requests = [
        FeatureVisRequest(UnitRef("shapes-a", "conv2", ((3, 1.0),)), 32, 4),
        FeatureVisRequest(UnitRef("shapes-a", "conv2", ((4, 1.0),)), 32, 4, diversity=2),
    ]
    out = visualize(_shapes_a(), "conv2", requests, normalize=_norm)
    assert used == [] and set(out) == set(requests)


def test_a_unit_out_of_range_is_still_an_error() -> None:
    request = FeatureVisRequest(UnitRef("shapes-a", "conv2", ((99, 1.0),)), 32, 2)
    with pytest.raises(ValueError, match="unit 99 out of range: the layer has 32 channels"):
        visualize(_shapes_a(), "conv2", [request], normalize=_norm)
