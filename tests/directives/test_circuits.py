"""{weights} and {circuit}: planning, order checks, and the HTML they render."""

from __future__ import annotations

import re

import numpy as np
import pytest

from circuitpress.directives.circuits import CircuitDirective, WeightsDirective
from circuitpress.errors import UserError
from circuitpress.requests import (
    ExamplesRequest,
    Result,
    TopConnectionsRequest,
    UnitRef,
    WeightsRequest,
)

from .circuit_stubs import Ctx, make_call


def unit(layer: str, channel: int) -> UnitRef:
    return UnitRef("toy", layer, ((channel, 1.0),))


def connections(
    layer: str | None, units: list[tuple[int, float]], expanded: bool = False
) -> Result:
    kernels = (
        np.stack([np.full((3, 3), w / 3, np.float32) for _, w in units])
        if units
        else np.zeros((0, 1, 1), np.float32)
    )
    return Result(
        data={
            "layer": layer,
            "expanded": expanded,
            "units": [
                {"channel": c, "norm": abs(w), "sign": 1 if w >= 0 else -1} for c, w in units
            ],
        },
        arrays={"kernels": kernels},
    )


def test_weights_pair_waits_for_layer_order_then_renders_expanded() -> None:
    d = WeightsDirective()
    ctx = Ctx()
    call = make_call(d, "toy/conv1:3 -> conv3:2", body="The <kernel>.")
    d.plan(call, ctx)
    assert not any(isinstance(r, WeightsRequest) for r in ctx.requests)  # order not known yet
    d.follow_up(call, ctx)
    request = WeightsRequest(unit("conv1", 3), unit("conv3", 2))
    assert ctx.requests[-1] == request
    kernel = np.array([[0.5, -1.0], [0.25, 0.0]], np.float32)
    ctx.results[request] = Result(
        data={
            "expanded": True,
            "norm": 1.146,
            "max_abs": 1.0,
            "path": ["conv1", "relu1", "pool1", "conv2", "relu2", "conv3"],
        },
        arrays={"kernel": kernel},
    )
    html = d.render(call, ctx)
    assert 'data-expanded="true"' in html and ">expanded<" in html
    assert "largest |w| 1" in html and "norm 1.146" in html
    assert 'href="/units/toy/conv1/3/"' in html and 'href="/units/toy/conv3/2/"' in html
    # One symmetric scale: -1 is full blue, +0.5 is half red.
    assert 'fill="#2166ac"' in html
    assert "<figcaption>The &lt;kernel&gt;.</figcaption>" in html


@pytest.mark.parametrize(
    "argument, message",
    [
        ("toy/conv3:1 -> toy/conv1:2", "layer 'conv3' comes after 'conv1'"),
        ("toy/conv1:1 -> other/conv2:2", "are in different models"),
        ("toy/conv2:1 -> toy/conv2:2", "in the same layer"),
        ("toy/conv1:1 => toy/conv2:2", "two features joined by '->'"),
    ],
)
def test_weights_bad_pairs_name_file_and_line(argument: str, message: str) -> None:
    d = WeightsDirective()
    ctx = Ctx()
    call = make_call(d, argument, line=7)
    with pytest.raises(UserError) as err:
        d.plan(call, ctx)
        d.follow_up(call, ctx)
    assert message in err.value.message
    assert err.value.format().startswith("content/test.md:7: ")


def test_weights_top_grid_mentions_every_input() -> None:
    d = WeightsDirective()
    ctx = Ctx()
    call = make_call(d, "* -> conv2:4", {"top": "3"})
    d.plan(call, ctx)
    request = TopConnectionsRequest(unit("conv2", 4), n=3)
    assert request in ctx.requests
    ctx.results[request] = connections("conv1", [(2, 0.9), (0, -0.6), (3, 0.1)])
    d.follow_up(call, ctx)
    assert {unit("conv1", c) for c in (2, 0, 3)} <= set(ctx.mentions)
    html = d.render(call, ctx)
    assert html.count('class="cp-weights-cell"') == 3
    assert "inhibitory" in html and "excitatory" in html
    assert 'src="/assets/thumb-conv1-2.png"' in html


def test_top_option_needs_a_star() -> None:
    d = WeightsDirective()
    call = make_call(d, "conv1:1 -> conv2:2", {"top": "3"}, line=4)
    with pytest.raises(UserError, match="':top:' needs"):
        d.plan(call, Ctx())


def circuit_ctx() -> tuple[CircuitDirective, Ctx, object]:
    d = CircuitDirective()
    ctx = Ctx()
    call = make_call(d, "conv3:2", {"inputs": "2", "depth": "2"}, body="A circuit.")
    d.plan(call, ctx)
    return d, ctx, call


def test_circuit_walks_one_layer_per_round_and_mentions_every_node() -> None:
    d, ctx, call = circuit_ctx()
    root = TopConnectionsRequest(unit("conv3", 2), n=2)
    assert root in ctx.requests and ExamplesRequest(unit("conv3", 2)) in ctx.requests
    d.follow_up(call, ctx)  # no result yet: asks again for the root's inputs
    assert ctx.requests[-1] == root
    ctx.results[root] = connections("conv2", [(4, 0.8), (1, -0.5)], expanded=False)
    ctx.requests.clear()
    d.follow_up(call, ctx)
    assert TopConnectionsRequest(unit("conv2", 4), n=2) in ctx.requests
    assert TopConnectionsRequest(unit("conv2", 1), n=2) in ctx.requests
    ctx.results[TopConnectionsRequest(unit("conv2", 4), n=2)] = connections(
        "conv1", [(0, 0.3), (3, 0.2)]
    )
    ctx.results[TopConnectionsRequest(unit("conv2", 1), n=2)] = connections(
        "conv1", [(0, -0.4), (2, 0.1)]
    )
    ctx.mentions.clear()
    d.follow_up(call, ctx)
    nodes = {
        unit("conv2", 4),
        unit("conv2", 1),
        unit("conv1", 0),
        unit("conv1", 3),
        unit("conv1", 2),
    }
    assert nodes <= set(ctx.mentions)
    html = d.render(call, ctx)
    # Every node is a link to its unit page (usable without JS and by keyboard).
    links = re.findall(r'<a class="cp-node"[^>]*href="([^"]+)"', html)
    assert sorted(links) == sorted(
        f"/units/toy/{r.layer}/{r.channel}/" for r in nodes | {unit("conv3", 2)}
    )
    assert html.count('class="cp-edge ') == 6
    assert "cp-edge-negative" in html and "cp-edge-positive" in html
    assert re.search(r'data-kernel="\[\[0\.2667,', html)
    assert "<figcaption>A circuit.</figcaption>" in html


def test_circuit_units_option_is_checked_against_the_layer() -> None:
    d = CircuitDirective()
    ctx = Ctx()
    call = make_call(d, "conv2:1", {"units": "0, 9"}, line=3)
    d.plan(call, ctx)
    ctx.results[TopConnectionsRequest(unit("conv2", 1), n=4)] = connections("conv1", [(0, 1.0)])
    with pytest.raises(UserError) as err:
        d.follow_up(call, ctx)
    assert (
        err.value.line == 4
        and "':units:'" in err.value.message
        and "no unit 9" in err.value.message
    )


def test_circuit_chosen_units_use_their_weights() -> None:
    d = CircuitDirective()
    ctx = Ctx()
    call = make_call(d, "conv2:1", {"units": "3,0"})
    d.plan(call, ctx)
    ctx.results[TopConnectionsRequest(unit("conv2", 1), n=4)] = connections("conv1", [(0, 1.0)])
    d.follow_up(call, ctx)
    wanted = [
        WeightsRequest(unit("conv1", 3), unit("conv2", 1)),
        WeightsRequest(unit("conv1", 0), unit("conv2", 1)),
    ]
    assert all(w in ctx.requests for w in wanted)
    for w, k in zip(wanted, (-1.0, 2.0), strict=True):
        ctx.results[w] = Result(
            data={"norm": abs(k) * 3, "sign": 1 if k >= 0 else -1, "expanded": False},
            arrays={"kernel": np.full((3, 3), k, np.float32)},
        )
    html = d.render(call, ctx)
    assert 'data-src="toy/conv1:3"' in html and 'data-src="toy/conv1:0"' in html
    assert 'data-weight="-3"' in html


def test_circuit_rejects_directions() -> None:
    d = CircuitDirective()
    with pytest.raises(UserError, match="direction"):
        d.plan(make_call(d, "conv2:0.5*1+0.5*2"), Ctx())
