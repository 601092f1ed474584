"""Matching units across models by activation correlation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circuitpress.analysis.methods.universality import (
    compute_group,
    correlation,
    match,
    pool_activations,
)
from circuitpress.requests import UnitRef, UniversalityRequest

from .circuit_toys import ToyNet, env_with


def test_a_model_with_itself_matches_every_unit_with_r_1() -> None:
    env = env_with(a=ToyNet(seed=1))
    result = compute_group([UniversalityRequest("a", "conv2", "a", "conv2")], env)
    data = next(iter(result.values())).data
    assert len(data["pairs"]) == 5
    for pair in data["pairs"]:
        assert pair["a"] == pair["b"]
        assert pair["r"] == pytest.approx(1.0, abs=1e-9)
    assert data["mean_matched"] == pytest.approx(1.0)
    assert data["samples"] == 96


def test_permuted_copy_is_recovered() -> None:
    a = ToyNet(seed=1)
    b = ToyNet(seed=1)
    perm = torch.tensor([3, 0, 2, 1])
    with torch.no_grad():
        b.conv1.weight[:] = a.conv1.weight[perm]
        b.conv1.bias[:] = a.conv1.bias[perm]
    env = env_with(a=a, b=b)
    result = compute_group([UniversalityRequest("a", "conv1", "b", "conv1")], env)
    data = next(iter(result.values())).data
    inverse = {int(p): i for i, p in enumerate(perm)}
    assert {p["a"]: p["b"] for p in data["pairs"]} == inverse
    assert [d["b"] for d in data["best_a"]] == [inverse[i] for i in range(4)]


def test_different_seeds_correlate_less_and_pairs_are_sorted() -> None:
    env = env_with(a=ToyNet(seed=1), b=ToyNet(seed=2))
    req = UniversalityRequest("a", "conv3", "b", "conv3")
    result = compute_group([req], env)[req]
    rs = [p["r"] for p in result.data["pairs"]]
    assert rs == sorted(rs, reverse=True)
    assert result.arrays["correlation"].shape == (6, 6)
    assert result.data["mean_matched"] < 0.999


def test_correlation_handles_dead_units_and_rectangular_matching() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 3))
    b = np.concatenate([a[:, [2, 0]] * 2 + 1, np.zeros((50, 1)), -a[:, [1]]], axis=1)
    r = correlation(a, b)
    assert r.shape == (3, 4)
    np.testing.assert_allclose(r[:, 2], 0.0)
    data = match(r)
    # Unit 1 only anti-correlates (with b3): the matching prefers the dead unit (r = 0) to r = -1,
    # while its best match alone is still the least bad one.
    assert {(p["a"], p["b"]) for p in data["pairs"]} == {(2, 0), (0, 1), (1, 2)}
    assert data["pairs"][-1]["r"] == pytest.approx(0.0)
    assert data["best_a"][0] == {"b": 1, "r": pytest.approx(1.0)}


def test_pools_give_one_sample_per_image_or_per_position() -> None:
    act = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    assert pool_activations(act, "max").tolist() == [[3, 7, 11], [15, 19, 23]]
    assert pool_activations(act, "mean").tolist() == [[1.5, 5.5, 9.5], [13.5, 17.5, 21.5]]
    per_position = pool_activations(act, "positions")
    assert per_position.shape == (8, 3) and per_position[1].tolist() == [1, 5, 9]


def test_pool_is_part_of_the_request_and_changes_the_result() -> None:
    env = env_with(a=ToyNet(seed=1), b=ToyNet(seed=2))
    reqs = [
        UniversalityRequest("a", "conv1", "b", "conv1", pool)
        for pool in ("max", "mean", "positions")
    ]
    assert len({r.key() for r in reqs}) == 3
    results = compute_group(reqs, env)
    by_pool = {r.pool: results[r] for r in reqs}
    assert by_pool["max"].data["samples"] == by_pool["mean"].data["samples"] == 96
    assert by_pool["positions"].data["samples"] > 96 and by_pool["positions"].data["images"] == 96
    assert not np.allclose(
        by_pool["max"].arrays["correlation"], by_pool["mean"].arrays["correlation"]
    )


def test_positions_are_a_bounded_grid_of_each_map() -> None:
    from circuitpress.analysis.methods.universality import POSITIONS_PER_IMAGE

    act = torch.zeros(2, 3, 64, 64)
    samples = pool_activations(act, "positions")
    assert samples.shape == (2 * 16 * 16, 3) and 16 * 16 <= POSITIONS_PER_IMAGE
    assert pool_activations(torch.zeros(2, 3, 8, 8), "positions").shape == (
        2 * 64,
        3,
    )  # small maps whole


def test_a_group_runs_one_pass_per_model_for_all_its_layers_and_pools() -> None:
    a, b, c = ToyNet(seed=1), ToyNet(seed=2), ToyNet(seed=3)
    env = env_with(a=a, b=b, c=c)
    reqs = [
        UniversalityRequest("a", "conv1", "b", "conv1"),
        UniversalityRequest("a", "conv1", "b", "conv1", "mean"),
        UniversalityRequest("a", "conv2", "b", "conv2"),
        UniversalityRequest("a", "conv1", "c", "conv1"),
    ]
    # The group key: one group per image sample (the first model's), whatever model B is.
    assert len({r.group_key() for r in reqs}) == 1
    batches = {name: 0 for name in "abc"}
    for name, model in (("a", a), ("b", b), ("c", c)):
        model.register_forward_pre_hook(
            lambda *_, name=name: batches.__setitem__(name, batches[name] + 1)
        )
    together = compute_group(reqs, env)
    # 96 toy images in batches of 64: two forward calls per model, not two per layer and pool.
    assert batches == {"a": 2, "b": 2, "c": 2}
    for r in reqs:
        alone = compute_group([r], env)[r]
        assert np.array_equal(alone.arrays["correlation"], together[r].arrays["correlation"])
        assert alone.data == together[r].data


class ViewNet(torch.nn.Module):
    """A model whose own code flattens with `.view`, which channels-last activations refuse."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.conv1 = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 16 * 16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv1(x))
        return self.fc(y.view(y.shape[0], -1))


def test_a_model_that_cannot_run_channels_last_is_run_as_it_ships() -> None:
    from circuitpress.analysis.methods.claims import Measure, evaluate

    model = ViewNet().eval()
    env = env_with(a=model)
    result = compute_group([UniversalityRequest("a", "fc", "a", "fc")], env)
    assert next(iter(result.values())).data["mean_matched"] == pytest.approx(1.0)
    images = torch.rand(8, 3, 16, 16)
    value = evaluate(
        model, lambda x: x, Measure(ref=UnitRef("a", "fc", ((2, 1.0),))), [(images, None)], {}
    )
    with torch.no_grad():
        expected = float(model(images)[:, 2].mean())
    assert value == pytest.approx(expected, rel=1e-5)
