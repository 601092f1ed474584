"""Weights and expanded weights on small hand-checkable models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from circuitpress.analysis.methods.weights import (
    Connections,
    LayerGraph,
    compute_group,
    gradient_rows,
    linearized,
    strongest,
)
from circuitpress.errors import UserError
from circuitpress.requests import TopConnectionsRequest, UnitRef, WeightsRequest

from .circuit_toys import ToyNet, env_with


def ref(layer: str, *terms: tuple[int, float], model: str = "toy") -> UnitRef:
    return UnitRef(model, layer, tuple(terms))


def unit(layer: str, channel: int) -> UnitRef:
    return ref(layer, (channel, 1.0))


def linear_chain() -> nn.Sequential:
    """Only 1x1 convs and ReLUs: expanded weights must be plain matrix products."""
    torch.manual_seed(3)
    net = nn.Sequential()
    net.add_module("conv1", nn.Conv2d(3, 4, 1))
    net.add_module("relu1", nn.ReLU())
    net.add_module("conv2", nn.Conv2d(4, 5, 1))
    net.add_module("relu2", nn.ReLU())
    net.add_module("conv3", nn.Conv2d(5, 6, 1))
    return net.eval()


def matrix(conv: nn.Conv2d) -> np.ndarray:
    return conv.weight.detach()[:, :, 0, 0].numpy().astype(np.float64)


def test_expanded_weights_equal_the_product_of_weight_matrices() -> None:
    net = linear_chain()
    conn = Connections(net, torch.zeros(1, 3, 9, 9))
    assert conn.expanded("conv1", "conv3")
    rows = conn.rows("conv1", "conv3", range(6))
    assert rows.shape == (6, 4, 1, 1)
    product = matrix(net.conv3) @ matrix(net.conv2)
    np.testing.assert_allclose(rows[:, :, 0, 0], product, rtol=1e-5, atol=1e-6)
    # Two layers back: the product of all three matrices, from the input side.
    rows = conn.rows("relu1", "conv3", [2])
    np.testing.assert_allclose(rows[0, :, 0, 0], product[2], rtol=1e-5, atol=1e-6)


def test_expanded_weights_of_spatial_kernels_compose_the_kernels() -> None:
    net = ToyNet()
    conn = Connections(net, torch.zeros(1, 3, 16, 16))
    rows = conn.rows("pool1", "conv3", range(6))
    w3 = matrix(net.conv3)
    w2 = net.conv2.weight.detach().numpy()
    expected = np.einsum("jm,mikl->jikl", w3, w2)
    np.testing.assert_allclose(rows, expected, rtol=1e-5, atol=1e-6)


def test_adjacent_layers_give_the_kernel_itself() -> None:
    net = ToyNet()
    conn = Connections(net, torch.zeros(1, 3, 16, 16))
    assert not conn.expanded("conv1", "conv2")  # ReLU and max-pool between: still adjacent
    kernel = conn.kernel(unit("conv1", 2), unit("conv2", 4))
    np.testing.assert_array_equal(kernel, net.conv2.weight.detach()[4, 2].numpy())
    # The gradient route (used for expanded weights) agrees with the kernel where no pooling
    # stretches it: conv2 -> conv3 is a 1x1 conv behind a ReLU.
    grad = gradient_rows(
        linearized(net), conn.graph, "conv2", "conv3", [4], torch.zeros(1, 3, 16, 16)
    )
    np.testing.assert_allclose(
        grad[0, :, 4, 4].numpy(), net.conv3.weight.detach()[4, :, 0, 0].numpy(), rtol=1e-6
    )
    assert float(grad[0].abs().sum()) == pytest.approx(
        float(net.conv3.weight.detach()[4].abs().sum()), rel=1e-5
    )


def test_max_pool_becomes_average_pool_and_relu_identity() -> None:
    net = ToyNet()
    twin = linearized(net)
    kinds = {name: type(m).__name__ for name, m in twin.named_modules()}
    assert kinds["relu1"] == "Identity" and kinds["pool1"] == "AvgPool2d"
    assert type(net.pool1).__name__ == "MaxPool2d"  # the original is untouched


def test_expanded_weights_across_a_pool_stretch_the_kernel() -> None:
    net = ToyNet()
    conn = Connections(net, torch.zeros(1, 3, 16, 16))
    kernel = conn.kernel(unit("conv1", 0), unit("conv3", 1))
    # A 3x3 kernel at half resolution covers 6x6 pixels of conv1's map.
    assert kernel.shape == (6, 6)
    assert conn.expanded("conv1", "conv3")


def test_directions_combine_by_linearity() -> None:
    net = ToyNet()
    conn = Connections(net, torch.zeros(1, 3, 16, 16))
    direction = ref("conv3", (1, 0.5), (4, -2.0))
    src = ref("conv2", (0, 1.0), (3, 0.25))
    combined = conn.kernel(src, direction)
    parts = sum(
        cd * cs * conn.kernel(unit("conv2", s), unit("conv3", d))
        for d, cd in direction.terms
        for s, cs in src.terms
    )
    np.testing.assert_allclose(combined, parts, rtol=1e-5, atol=1e-7)


def test_wrong_order_is_a_user_error() -> None:
    net = ToyNet()
    conn = Connections(net, torch.zeros(1, 3, 16, 16))
    with pytest.raises(UserError, match="does not come before"):
        conn.kernel(unit("conv3", 0), unit("conv2", 0))


def test_layer_graph_order_and_neighbours() -> None:
    graph = LayerGraph.of(ToyNet(), torch.zeros(1, 3, 16, 16))
    assert graph.order[:4] == ["conv1", "relu1", "pool1", "conv2"]
    assert graph.previous_feature("conv2") == "conv1"
    assert graph.previous_feature("conv1") is None
    assert graph.next_feature("conv3") == "head"
    assert graph.shapes["pool1"] == (4, 8, 8)


def test_strongest_orders_by_norm_with_sign() -> None:
    kernels = np.array([[[0.1]], [[-3.0]], [[2.0]], [[0.0]]], np.float32)
    top = strongest(kernels, 2)
    assert [(u["channel"], u["sign"]) for u in top] == [(1, -1), (2, 1)]
    assert top[0]["norm"] == pytest.approx(3.0)


def test_handler_weights_and_connections() -> None:
    net = ToyNet()
    env = env_with(toy=net)
    w = WeightsRequest(unit("conv1", 1), unit("conv2", 3))
    inputs = TopConnectionsRequest(unit("conv2", 3), n=3)
    outputs = TopConnectionsRequest(unit("conv2", 3), n=2, direction="outputs")
    first = TopConnectionsRequest(unit("conv1", 0), n=3)
    results = compute_group([w, inputs, outputs, first], env)
    kernel = net.conv2.weight.detach()[3].numpy()
    np.testing.assert_array_equal(results[w].arrays["kernel"], kernel[1])
    assert results[w].data["expanded"] is False
    assert results[w].data["sign"] == (1 if kernel[1].sum() >= 0 else -1)
    assert results[w].data["path"] == ["conv1", "relu1", "pool1", "conv2"]
    data = results[inputs].data
    assert data["layer"] == "conv1" and len(data["units"]) == 3
    norms = np.sqrt((kernel**2).sum((1, 2)))
    assert [u["channel"] for u in data["units"]] == list(np.argsort(-norms)[:3])
    np.testing.assert_array_equal(
        results[inputs].arrays["kernels"][0], kernel[data["units"][0]["channel"]]
    )
    out = results[outputs].data
    assert out["layer"] == "conv3" and len(out["units"]) == 2
    w3 = net.conv3.weight.detach()[:, 3, 0, 0].abs().numpy()
    assert out["units"][0]["channel"] == int(np.argmax(w3))
    assert results[first].data == {"layer": None, "expanded": False, "units": []}
    assert env.calls[-1] == ("weights toy", 4, 4)
