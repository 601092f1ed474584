"""Tuning curves of hand-built units peak where they must."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from circuitpress.analysis.methods.sweeps import sweep
from circuitpress.analysis.methods.tuning import compute_group, tuning
from circuitpress.requests import TuningRequest, UnitRef, canonical_stimulus, parse_stimulus

from .circuit_toys import ToyNet, env_with

SIZE = 32


def edge_unit(angle_deg: float) -> nn.Sequential:
    """One conv unit whose 7x7 kernel is an oriented edge (dark side negative) in a round
    aperture, so that no direction of the pixel grid is favoured."""
    net = nn.Sequential()
    net.add_module("conv1", nn.Conv2d(3, 1, 7, padding=3))
    net.add_module("relu1", nn.ReLU())
    net.add_module("pool1", nn.MaxPool2d(2))
    net.add_module("conv2", nn.Conv2d(1, 1, 3, padding=1))
    a = math.radians(angle_deg)
    c = np.arange(7) - 3.0
    x, y = np.meshgrid(c, c, indexing="xy")
    # Same convention as procedural.edge: bright on the side the normal (sin a, cos a) points to.
    u = x * math.sin(a) + y * math.cos(a)
    kernel = (np.tanh(u) * np.exp(-(x**2 + y**2) / 6.0)).astype(np.float32)
    with torch.no_grad():
        net.conv1.weight[:] = torch.from_numpy(kernel)[None, None].repeat(1, 3, 1, 1) / 3.0
        net.conv1.bias.zero_()
        net.conv2.weight.fill_(1.0 / 9)
        net.conv2.bias.zero_()
    return net.eval()


@pytest.mark.parametrize("angle", [0.0, 45.0, 90.0, 225.0])
def test_edge_unit_tuning_peaks_at_its_orientation(angle: float) -> None:
    net = edge_unit(angle)
    result = tuning(
        net,
        lambda x: x,
        UnitRef("m", "conv1", ((0, 1.0),)),
        "orientation",
        24,
        torch.zeros(1, 3, SIZE, SIZE),
    )
    values = result.data["axes"][0]["values"]
    response = result.data["response"]
    assert values[int(np.argmax(response))] == pytest.approx(angle)
    assert result.data["peak"] == [int(np.argmax(response))]  # the analysis says where it peaks
    # The opposite polarity is the weakest response.
    assert values[int(np.argmin(response))] == pytest.approx((angle + 180.0) % 360.0)
    assert result.arrays["stimuli"].shape == (24, SIZE, SIZE, 3)


def test_deeper_unit_reads_its_receptive_field_centre() -> None:
    net = edge_unit(90.0)
    result = tuning(
        net,
        lambda x: x,
        UnitRef("m", "conv2", ((0, 1.0),)),
        "orientation",
        24,
        torch.zeros(1, 3, SIZE, SIZE),
    )
    assert result.data["position"] == [8, 8]
    y0, x0, y1, x1 = result.data["rf_box"]
    assert (y1 - y0, x1 - x0) == (12, 12)  # 7x7 conv, 2x pool, 3x3 conv
    cy, cx = result.data["rf_center"]
    assert (y0 + y1) / 2 == cy and (x0 + x1) / 2 == cx
    values = result.data["axes"][0]["values"]
    peak = values[int(np.argmax(result.data["response"]))]
    assert abs(peak - 90.0) <= 15.0


def test_neuron_position_moves_the_stimulus() -> None:
    net = edge_unit(90.0)
    ref = UnitRef("m", "conv1", ((0, 1.0),), position=(5, 20))
    result = tuning(net, lambda x: x, ref, "orientation", 8, torch.zeros(1, 3, SIZE, SIZE))
    assert result.data["position"] == [5, 20]
    assert result.data["rf_center"] == [5.5, 20.5]
    assert result.data["axes"][0]["values"][int(np.argmax(result.data["response"]))] == 90.0


def test_sweeps_and_two_dimensional_tuning() -> None:
    assert parse_stimulus("Orientation × curvature") == ("orientation", "curvature")
    assert parse_stimulus("color") == ("colour",)
    assert canonical_stimulus("Angle × Curvature") == "orientation x curvature"
    for bad in ("texture", "colour x frequency", "orientation x curvature x frequency"):
        with pytest.raises(ValueError):
            parse_stimulus(bad)
    s = sweep("curvature", 6, SIZE)
    assert s.images.shape == (6, 8, SIZE, SIZE, 3)
    env = env_with(toy=ToyNet())
    req = TuningRequest(UnitRef("toy", "conv2", ((1, 1.0),)), "orientation x curvature", steps=6)
    colour = TuningRequest(UnitRef("toy", "conv1", ((0, 1.0),)), "colour", steps=12)
    results = compute_group([req, colour], env)
    grid = np.array(results[req].data["response"])
    assert grid.shape == (6, 6)
    assert results[req].data["peak"] == list(np.unravel_index(int(grid.argmax()), grid.shape))
    assert [a["name"] for a in results[req].data["axes"]] == ["orientation", "curvature"]
    assert len(results[colour].data["response"]) == 12
    assert np.ptp(results[colour].data["response"]) > 0  # colour matters to a random conv1 unit
