"""Dataset examples: the streaming top-k equals brute force; crops follow receptive fields."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from circuitpress.analysis.methods.examples import receptive_field, stream_topk, top_examples
from circuitpress.requests import ExamplesRequest, UnitRef


def tiny() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 5, padding=2),  # 0: RF 5
        nn.ReLU(),
        nn.MaxPool2d(2),  # 2: RF 6, stride 2
        nn.Conv2d(8, 12, 3, padding=1),  # 3: RF 10
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(12, 5),  # 6
    )


DATA = torch.rand(150, 3, 32, 32, generator=torch.Generator().manual_seed(5))
LAYERS = {"0": None, "3": None, "6": None}


def batches(size: int = 16):
    return ((s, DATA[s : s + size], None) for s in range(0, len(DATA), size))


def unit(layer: str, terms, position=None) -> UnitRef:
    terms = ((terms, 1.0),) if isinstance(terms, int) else terms
    return UnitRef("tiny", layer, terms, position)


def brute(model: nn.Sequential) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {"0": model[0](DATA), "3": model[:4](DATA), "6": model(DATA)}


@pytest.mark.parametrize("batch", [7, 16, 150])
def test_topk_equals_brute_force(batch: int) -> None:
    model = tiny()
    requests = [
        ExamplesRequest(unit("0", 2), k=5),
        ExamplesRequest(unit("3", 7), k=9),
        ExamplesRequest(unit("3", ((1, 0.5), (4, -0.3))), k=4),
        ExamplesRequest(unit("3", 5, (6, 9)), k=3),
        ExamplesRequest(unit("6", 1), k=6),
    ]
    got = top_examples(model, requests, batches(batch), lambda idx: DATA[idx])
    acts = brute(model)
    expected = [
        acts["0"][:, 2].amax(dim=(1, 2)),
        acts["3"][:, 7].amax(dim=(1, 2)),
        (0.5 * acts["3"][:, 1] - 0.3 * acts["3"][:, 4]).amax(dim=(1, 2)),
        acts["3"][:, 5, 6, 9],
        acts["6"][:, 1],
    ]
    for request, full in zip(requests, expected, strict=True):
        values, indices = torch.topk(full, request.k)
        result = got[request]
        assert result.data["indices"] == indices.tolist()
        np.testing.assert_allclose(result.data["values"], values.numpy(), rtol=1e-5, atol=1e-6)
        assert result.arrays["images"].shape[0] == request.k
        assert result.arrays["heatmaps"].shape == result.arrays["images"].shape[:3]
        assert 0 <= result.arrays["heatmaps"].min() and result.arrays["heatmaps"].max() <= 1


def test_running_state_is_units_by_k() -> None:
    model = tiny()
    refs = [unit("3", c) for c in range(12)]
    state, grids = stream_topk(model, {"3": (refs, 4)}, batches(10))
    layer = state["3"]
    assert layer.values.shape == layer.indices.shape == (12, 4)  # never one row per image
    assert grids["3"] == (16, 16)
    assert layer.all_channels  # every channel in order: no gather


def test_receptive_field_and_crops() -> None:
    model = tiny()
    rf = receptive_field(model, "3", (32, 32))
    assert (rf.height, rf.width) == (10, 10)
    assert (rf.stride_y, rf.stride_x) == (2, 2)
    # Position (8, 8) on the 16x16 grid looks at input pixels 12..21 (centre 17).
    y0, x0, y1, x1 = rf.box(8, 8, (32, 32), minimum=4)
    assert (y0, y1) == (12, 22) and (x0, x1) == (12, 22)
    # At a corner the box keeps its size and shifts inside the image.
    assert rf.box(0, 15, (32, 32), minimum=4) == (0, 22, 10, 32)

    request = ExamplesRequest(unit("3", 7), k=4, crop=True)
    result = top_examples(model, [request], batches(), lambda idx: DATA[idx])[request]
    assert result.arrays["images"].shape == (4, 10, 10, 3)
    for (y, x), box, idx, image in zip(
        result.data["positions"],
        result.data["boxes"],
        result.data["indices"],
        result.arrays["images"],
        strict=True,
    ):
        assert box == list(rf.box(y, x, (32, 32), minimum=8))
        np.testing.assert_array_equal(
            image, DATA[idx, :, box[0] : box[2], box[1] : box[3]].permute(1, 2, 0).numpy()
        )

    whole = ExamplesRequest(unit("3", 7), k=4, crop=False)
    full = top_examples(
        model,
        [whole],
        batches(),
        lambda idx: DATA[idx].numpy().transpose(0, 2, 3, 1),
    )
    assert full[whole].arrays["images"].shape == (4, 32, 32, 3)
    assert full[whole].data["boxes"][0] == [0, 0, 32, 32]


def test_hooks_removed_and_model_untouched() -> None:
    model = tiny()
    request = ExamplesRequest(unit("0", 1), k=2)
    top_examples(model, [request], batches(), lambda idx: DATA[idx])
    assert all(not m._forward_hooks for m in model.modules())
    assert model.training and all(p.requires_grad for p in model.parameters())
