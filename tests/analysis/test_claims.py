"""Claims: edits change what they must, and never leak into other requests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circuitpress.analysis.methods import claims, tuning, weights
from circuitpress.errors import UserError
from circuitpress.requests import ClaimRequest, TopConnectionsRequest, TuningRequest, UnitRef

from .circuit_toys import ToyNet, env_with, state


def unit(layer: str, channel: int) -> UnitRef:
    return UnitRef("toy", layer, ((channel, 1.0),))


def layer_units(layer: str, *channels: int) -> UnitRef:
    return UnitRef("toy", layer, tuple((c, 1.0) for c in channels))


def strongest_input(net: ToyNet, dst: int) -> int:
    w = net.conv3.weight.detach()[dst, :, 0, 0]
    return int(torch.argmax(w))


def test_ablating_a_units_inputs_decreases_it_and_others_stay_unchanged() -> None:
    net = ToyNet(seed=4)
    env = env_with(toy=net)
    with torch.no_grad():  # conv3:0 reads only conv2:1, positively; conv2 units fire on everything
        net.conv3.weight.zero_()
        net.conv3.weight[0, 1] = 1.0
        net.conv3.bias.zero_()
        net.conv2.bias.fill_(1.0)
    ablate = ClaimRequest("toy", unit("conv3", 0), ablate=(unit("conv2", 1),))
    other = ClaimRequest("toy", unit("conv3", 0), ablate=(unit("conv2", 3),))
    cut = ClaimRequest(
        "toy", unit("conv3", 0), ablate_weights=((unit("conv2", 1), unit("conv3", 0)),)
    )
    results = claims.compute_group([ablate, other, cut], env)
    assert results[ablate].data["before"] > 0.5
    assert results[ablate].data["after"] == pytest.approx(0.0, abs=1e-6)
    assert results[ablate].data["change"] == pytest.approx(-1.0)
    assert results[other].data["after"] == pytest.approx(results[other].data["before"])
    assert results[cut].data["after"] == pytest.approx(0.0, abs=1e-6)
    assert results[cut].data["samples"] == 96
    assert results[ablate].data["measure"] == "toy/conv3:0"  # the unit as text


def test_an_edit_never_leaks_into_later_requests() -> None:
    net = ToyNet(seed=5)
    env = env_with(toy=net)
    before_state = state(net)
    tune = TuningRequest(unit("conv3", 2), "orientation", steps=8)
    conn = TopConnectionsRequest(unit("conv3", 2), n=3)
    baseline_tuning = tuning.compute_group([tune], env)[tune]
    baseline_conn = weights.compute_group([conn], env)[conn]
    edit = ClaimRequest(
        "toy",
        unit("conv3", 2),
        ablate=(layer_units("conv2", 0, 1, 2, 3, 4),),
        ablate_weights=((unit("conv2", strongest_input(net, 2)), unit("conv3", 2)),),
    )
    result = claims.compute_group([edit], env)[edit]
    assert result.data["after"] != pytest.approx(result.data["before"])
    for key, value in state(net).items():
        assert torch.equal(value, before_state[key]), key
    assert not any(m._forward_hooks for m in net.modules())
    again_tuning = tuning.compute_group([tune], env)[tune]
    again_conn = weights.compute_group([conn], env)[conn]
    assert again_tuning.data["response"] == baseline_tuning.data["response"]
    assert again_conn.data == baseline_conn.data
    np.testing.assert_array_equal(again_conn.arrays["kernels"], baseline_conn.arrays["kernels"])


def test_accuracy_and_class_accuracy() -> None:
    net = ToyNet(seed=6)
    env = env_with(toy=net)
    with torch.no_grad():  # a classifier that always says "red"
        net.head.weight.zero_()
        net.head.bias[:] = torch.tensor([0.0, 1.0])
    labels = env.models.get("toy").data.labels
    acc = ClaimRequest("toy", "accuracy", ablate=(layer_units("conv3", 0, 1),))
    red = ClaimRequest("toy", "accuracy:red", ablate=(layer_units("conv3", 0, 1),))
    blue = ClaimRequest("toy", "accuracy:0")
    results = claims.compute_group([acc, red, blue], env)
    assert results[acc].data["before"] == pytest.approx(float((labels == 1).float().mean()))
    assert results[red].data["before"] == pytest.approx(1.0)
    assert results[blue].data["before"] == pytest.approx(0.0)
    # How many images each measure averaged over: all of them, or those of the class.
    assert results[acc].data["measured"] == len(labels)
    assert results[red].data["measured"] == int((labels == 1).sum()) < len(labels)


def test_stimulus_measure_uses_the_sweep() -> None:
    env = env_with(toy=ToyNet(seed=7))
    req = ClaimRequest("toy", unit("conv2", 1), ablate=(unit("conv1", 0),), stimulus="orientation")
    data = claims.compute_group([req], env)[req].data
    assert data["samples"] == 24


@pytest.mark.parametrize(
    "request_, message",
    [
        (
            ClaimRequest("toy", unit("conv2", 1), ablate=(unit("conv1", 9),)),
            "unit 9 of 'conv1' does not exist",
        ),
        (ClaimRequest("toy", "accuracy:green"), "unknown class 'green'"),
        # A unit comes parsed (a UnitRef): analysis reads no reference text.
        (ClaimRequest("toy", "toy/conv2:1"), "unknown measure 'toy/conv2:1'"),
        (
            ClaimRequest(
                "toy", unit("conv3", 1), ablate_weights=((unit("conv1", 0), unit("conv3", 1)),)
            ),
            "not adjacent",
        ),
        (
            ClaimRequest(
                "toy", unit("conv2", 1), ablate_weights=((unit("conv3", 0), unit("conv2", 1)),)
            ),
            "does not come before",
        ),
    ],
)
def test_bad_claims_are_user_errors(request_: ClaimRequest, message: str) -> None:
    env = env_with(toy=ToyNet())
    with pytest.raises(UserError, match=message):
        claims.compute_group([request_], env)
