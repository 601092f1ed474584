"""Feature visualization on tiny models with fixed seeds: the objective improves, batching
changes nothing, seeds decide images, hooks never leak."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from circuitpress.analysis.methods.featurevis import (
    ImageSpec,
    Objective,
    Transforms,
    TransformSpec,
    diversity_penalty,
    visualize,
)
from circuitpress.requests import FeatureVisRequest, UnitRef


def tiny() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3, padding=1),
        nn.ReLU(),
    )


def ref(
    unit: int | tuple[tuple[int, float], ...], position: tuple[int, int] | None = None
) -> UnitRef:
    terms = ((unit, 1.0),) if isinstance(unit, int) else unit
    return UnitRef("tiny", "4", terms, position)


def req(r: UnitRef, **kw: object) -> FeatureVisRequest:
    base: dict[str, object] = {"size": 32, "steps": 24, "lr": 0.05}
    base.update(kw)
    return FeatureVisRequest(r, **base)  # type: ignore[arg-type]  # values typed object


@pytest.mark.parametrize(
    "unit",
    [ref(3), ref(5, (4, 7)), ref(((1, 0.7), (6, -0.4))), ref(2)],
    ids=["channel", "neuron", "direction", "negative"],
)
def test_objective_improves(unit: UnitRef) -> None:
    model = tiny()
    negative = unit.channel == 2
    request = req(unit, negative=negative)
    # A negative visualization needs a layer that can go below zero: the pre-ReLU conv.
    layer = "3" if negative else "4"  # names in model.named_modules()
    result = visualize(model, layer, [request])[request]
    assert result.data["loss_end"] < result.data["loss_start"] - 1e-3
    # The reported activation is the unit's own (unsigned) peak, or trough, on the final image.
    act = result.data["activation"][0]
    assert (act < 0) if negative else (act > 0)
    images = result.arrays["images"]
    assert images.shape == (1, 32, 32, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_batched_equals_one_by_one() -> None:
    model = tiny()
    requests = [req(ref(c), seed=c % 2) for c in range(5)] + [req(ref(4, (2, 3)), seed=7)]
    batched = visualize(model, "4", requests)
    for r in (requests[1], requests[4], requests[5]):
        alone = visualize(model, "4", [r])[r]
        np.testing.assert_allclose(alone.arrays["images"], batched[r].arrays["images"], atol=2e-4)
        assert alone.data["activation"][0] == pytest.approx(
            batched[r].data["activation"][0], rel=1e-3, abs=1e-5
        )


def test_heterogeneous_requests_share_one_batch_and_equal_their_images_alone() -> None:
    """Steps, seeds, signs and diversity may differ within a batch: each image is taken at its
    own step count and equals the same request computed alone."""
    model = tiny()
    requests = [
        req(ref(3), steps=8),
        req(ref(3), steps=24, negative=True),
        req(ref(5), steps=16, diversity=3, seed=2),
        req(ref(4, (2, 3)), steps=24, seed=7),
        req(ref(((1, 0.7), (6, -0.4))), steps=0),
        req(ref(7), steps=16),
    ]
    work: list[tuple[int, int]] = []
    batched = visualize(model, "4", requests, progress=lambda d, t: work.append((d, t)))
    assert set(batched) == set(requests)
    # Image-steps: each image costs its own steps, no more (finished images leave the batch).
    assert work[-1] == (8 + 24 + 3 * 16 + 24 + 0 + 16,) * 2
    for r in requests:
        alone = visualize(model, "4", [r])[r]
        np.testing.assert_allclose(alone.arrays["images"], batched[r].arrays["images"], atol=2e-4)
        np.testing.assert_allclose(
            alone.data["activation"], batched[r].data["activation"], rtol=1e-3, atol=1e-5
        )
        assert alone.data["loss_end"] == pytest.approx(batched[r].data["loss_end"], abs=1e-4)


def test_mixed_objectives_share_one_batch_and_equal_their_images_alone() -> None:
    """Images maximising the plain mean (lucent's objective) and the default positive part,
    in one batch on a pre-ReLU conv (where the two differ), with other signs, steps, a
    direction, a neuron and diversity: each equals the same request alone, and the objective
    changes the image."""
    model = tiny()
    requests = [
        req(ref(3), steps=16, objective="mean"),
        req(ref(3), steps=16),  # the same unit and seed, the default objective
        req(ref(5), steps=24, negative=True, objective="mean"),
        req(ref(((1, 0.7), (6, -0.4))), steps=8, seed=3, objective="mean"),
        req(ref(4, (2, 3)), steps=16, seed=7, objective="mean"),
        req(ref(7), steps=24, seed=1),
    ]
    for batch in (requests, [*requests, req(ref(2), steps=8, diversity=2)]):
        # Without diversity the conv computes each image's unit map alone (unit_conv); with it,
        # the full layer: both paths carry each image's objective.
        batched = visualize(model, "3", batch)
        assert set(batched) == set(batch)
        for r in batch:
            alone = visualize(model, "3", [r])[r]
            np.testing.assert_allclose(
                alone.arrays["images"], batched[r].arrays["images"], atol=2e-4
            )
            np.testing.assert_allclose(
                alone.data["activation"], batched[r].data["activation"], rtol=1e-3, atol=1e-5
            )
            assert alone.data["loss_end"] == pytest.approx(batched[r].data["loss_end"], abs=1e-4)
    mean, positive = (batched[r].arrays["images"] for r in requests[:2])
    assert np.abs(mean - positive).max() > 0.05


def test_plain_mean_objective_is_lucents_channel_objective() -> None:
    """Objective "mean": the loss and its gradient are lucent's `objectives.channel` (a
    direction: the plain mean of its weighted channels, lucent's `channel_weight` times the
    channel count); negative flips it; a neuron and the default objective are unchanged."""
    from lucent.optvis import objectives

    torch.manual_seed(2)
    base = torch.randn(4, 8, 5, 5)
    specs = [
        ImageSpec(ref(2), False, 0, objective="mean"),
        ImageSpec(ref(6), True, 0, objective="mean"),
        ImageSpec(ref(((1, 0.7), (6, -0.4))), False, 0, objective="mean"),
        ImageSpec(ref(3, (1, 4)), False, 0, objective="mean"),
    ]
    default = ImageSpec(ref(2), False, 0)
    vec = torch.zeros(8)
    vec[1], vec[6] = 0.7, -0.4
    theirs = [
        objectives.channel("x", 2, batch=0),
        -objectives.channel("x", 6, batch=1),
        8 * objectives.channel_weight("x", vec, batch=2),
        objectives.neuron("x", 3, x=4, y=1, batch=3),
    ]
    for layout in (torch.contiguous_format, torch.channels_last):  # both gather paths
        acts = base.clone().contiguous(memory_format=layout).requires_grad_(True)
        ours = Objective(specs, torch.device("cpu")).loss(acts)
        for i, objective in enumerate(theirs):
            other = base.clone().requires_grad_(True)
            expected = objective(lambda name, a=other: a)
            assert ours[i].item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-7)
            (grad,) = torch.autograd.grad(ours[i], acts, retain_graph=True)
            expected.backward()
            torch.testing.assert_close(grad, other.grad, rtol=1e-5, atol=1e-7)
    # The default objective is unchanged: the positive part plus a tenth of the mean.
    (loss,) = Objective([default], torch.device("cpu")).loss(base[:1])
    assert float(loss) == pytest.approx(
        -(base[0, 2].clamp_min(0).mean() + 0.1 * base[0, 2].mean()).item()
    )


def test_fewer_steps_is_the_start_of_more_steps() -> None:
    """An 8-step image is where the 24-step image of the same request was at step 8: the
    transforms an image draws do not depend on how many steps it runs."""
    from circuitpress.analysis.methods.featurevis import _transform_params

    spec = [ImageSpec(ref(3), False, 0)]
    long, short = (_transform_params(spec, n, TransformSpec()) for n in (200, 70))
    assert torch.equal(long[:, :70], short)


def test_seed_decides_the_image() -> None:
    model = tiny()
    a, b, c = req(ref(3), seed=1), req(ref(3), seed=1, lr=0.05), req(ref(3), seed=2)
    first = visualize(model, "4", [a])[a].arrays["images"]
    again = visualize(model, "4", [b])[b].arrays["images"]
    other = visualize(model, "4", [c])[c].arrays["images"]
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 0.05


def test_diversity_matches_lucent_and_separates_images() -> None:
    from lucent.optvis import objectives

    torch.manual_seed(1)
    acts = torch.rand(7, 5, 6, 6)
    blocks = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    ours = diversity_penalty(acts, blocks, 2)
    for block, rows in ((0, slice(0, 3)), (1, slice(3, 7))):
        theirs = objectives.diversity("x")(lambda name, a=acts[rows]: a)
        assert float(ours[block]) == pytest.approx(-float(theirs), rel=1e-5)

    model = tiny()
    r = req(ref(3), diversity=3, steps=16)
    out = visualize(model, "4", [r])[r]
    images = out.arrays["images"]
    assert images.shape == (3, 32, 32, 3) and len(out.data["activation"]) == 3
    assert (
        min(np.abs(images[i] - images[j]).mean() for i in range(3) for j in range(i + 1, 3)) > 0.01
    )


def test_objective_gathers_each_images_unit() -> None:
    acts = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    specs = [ImageSpec(ref(2), False, 0), ImageSpec(ref(((0, 1.0), (1, -2.0)), (1, 0)), True, 0)]
    obj = Objective(specs, torch.device("cpu"))
    got = obj.activation(acts)
    assert float(got[0]) == pytest.approx(acts[0, 2].max().item())  # a channel reports its peak
    neuron = (acts[1, 0, 1, 0] - 2 * acts[1, 1, 1, 0]).item()
    assert float(got[1]) == pytest.approx(neuron)
    loss = obj.loss(acts)
    assert loss[1] == pytest.approx(neuron)  # negative neuron: minimising its value
    # A channel's loss: minus the mean positive part, plus a little of the raw mean.
    assert loss[0] == pytest.approx(
        -(acts[0, 2].clamp_min(0).mean() + 0.1 * acts[0, 2].mean()).item()
    )


def test_transforms_keep_size_and_are_seeded() -> None:
    specs = [ImageSpec(ref(0), False, 3), ImageSpec(ref(0), False, 4)]
    images = torch.rand(2, 3, 32, 32)
    t1 = Transforms(specs, 32, 5, TransformSpec.for_size(32), torch.device("cpu"))
    t2 = Transforms(specs[:1], 32, 5, TransformSpec.for_size(32), torch.device("cpu"))
    out = t1(images, 2)
    assert out.shape == images.shape
    torch.testing.assert_close(out[:1], t2(images[:1], 2))
    assert not torch.allclose(out, images)  # it does move the image


def test_hooks_are_removed_even_on_error() -> None:
    model = tiny()
    r = req(ref(3), steps=2)
    visualize(model, "4", [r])
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="out of range"):
        visualize(model, "4", [req(ref(40), steps=2)])  # channel out of range
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())  # frozen() restored the flags


def test_large_groups_are_split_keeping_requests_whole() -> None:
    from circuitpress.analysis.methods.featurevis import chunks

    requests = [req(ref(c % 12), seed=c, diversity=1 + c % 3) for c in range(10)]
    parts = chunks(requests, limit=5)
    assert [r for part in parts for r in part] == requests
    assert all(sum(r.diversity for r in part) <= 5 for part in parts)


def test_redirected_relu_keeps_values_and_unblocks_only_blocked_images() -> None:
    from circuitpress.analysis.methods.relu_gradient import redirected_relus

    relu = nn.ReLU()
    x = torch.tensor(
        [[[[-1.0, 2.0]]], [[[-1.0, -3.0]]]], requires_grad=True
    )  # image 1 is all negative
    with redirected_relus(relu) as count:
        out = relu(x)
        (-(out.sum())).backward()  # minimising -sum: the gradient asks every input to rise
    assert count == 1 and "forward" not in relu.__dict__  # restored
    assert torch.equal(out, x.detach().clamp_min(0))
    # Image 0 passes gradient somewhere: the ordinary ReLU gradient. Image 1 passes none:
    # redirected.
    assert x.grad.flatten().tolist() == [0.0, -1.0, -1.0, -1.0]


def test_dead_relu_unit_still_gets_a_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    from circuitpress.analysis.methods import featurevis

    def run(steps: int) -> float:
        model = tiny()
        with torch.no_grad():
            model[3].bias[5] = -0.1  # unit 5 of the last ReLU is now zero on the initial image
        request = req(ref(5), steps=steps, lr=0.1)
        return visualize(model, "4", [request])[request].data["activation"][0]

    assert run(0) == 0.0
    assert run(96) > 0.0
    # The ordinary ReLU gradient would leave it exactly where it started.
    monkeypatch.setattr(featurevis, "redirected_relus", lambda module: contextlib.nullcontext(0))
    assert run(96) == 0.0


def test_every_step_stops_the_forward_at_the_visualised_layer() -> None:
    model = tiny()
    later: list[int] = []
    model[4].register_forward_pre_hook(lambda *_: later.append(1))  # the ReLU after conv model[3]
    visualize(model, "3", [req(ref(3), steps=5)])
    assert later == []  # neither the 5 steps nor the final measurement ran past the layer


def test_parameterisation_is_lucents() -> None:
    from lucent.optvis import param

    from circuitpress.analysis.methods.featurevis import lucent_image

    (theirs,), their_image = param.image(32, batch=3, fft=True, decorrelate=True)
    ours, our_image = lucent_image(32, 3)
    assert ours.device == theirs.device
    assert ours.shape == theirs.shape
    with torch.no_grad():
        ours.copy_(theirs)
    mine, lucents = our_image(), their_image()
    torch.testing.assert_close(mine, lucents, rtol=0, atol=1e-6)
    weights = torch.rand(mine.shape)
    (mine * weights).sum().backward()
    (lucents * weights).sum().backward()
    assert ours.grad is not None and theirs.grad is not None
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-5, atol=1e-9)


def test_transform_grid_is_affine_grids() -> None:
    specs = [ImageSpec(ref(3), False, seed) for seed in range(4)]
    tf = TransformSpec.for_size(32)
    transform = Transforms(specs, 32, 5, tf, torch.device("cpu"))
    captured: dict[str, torch.Tensor] = {}
    original = torch.nn.functional.grid_sample

    def spy(image: torch.Tensor, grid: torch.Tensor, **kw: object) -> torch.Tensor:
        captured["grid"] = grid
        return original(image, grid, **kw)  # type: ignore[arg-type]  # kw typed object

    torch.nn.functional.grid_sample = spy  # type: ignore[assignment]  # a spy, undone below
    try:
        transform(torch.rand(4, 3, 32, 32), 2)
    finally:
        torch.nn.functional.grid_sample = original
    p = transform.params[:, 2]
    full = 32 + 2 * tf.pad
    theta_rad = p[:, 3] * (math.pi / 180.0)
    cos, sin = torch.cos(theta_rad) / p[:, 2], torch.sin(theta_rad) / p[:, 2]
    crop, unit = 32 / full, 2.0 / full
    tx = -(cos * p[:, 4] + sin * p[:, 5]) * unit - p[:, 0] * unit
    ty = -(-sin * p[:, 4] + cos * p[:, 5]) * unit - p[:, 1] * unit
    theta = torch.stack(
        [
            torch.stack([cos * crop, sin * crop, tx], 1),
            torch.stack([-sin * crop, cos * crop, ty], 1),
        ],
        1,
    )
    expected = torch.nn.functional.affine_grid(theta, [4, 3, 32, 32], align_corners=False) * (
        full / 32
    )
    torch.testing.assert_close(captured["grid"], expected, rtol=0, atol=1e-5)


def test_relu_subclasses_keep_their_own_forward() -> None:
    from circuitpress.analysis.methods.relu_gradient import redirected_relus

    class Capped(nn.ReLU):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.clamp(0, 1)

    model = nn.Sequential(Capped(), nn.ReLU())
    with redirected_relus(model) as count:
        assert count == 1 and float(model(torch.tensor([2.0]))) == 1.0
