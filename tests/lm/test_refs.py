"""Head references parse, print, link and resolve against language-model facts (no torch)."""

from __future__ import annotations

import pytest

from circuitpress.errors import UserError
from circuitpress.markup.refs import parse_ref, resolve_ref
from circuitpress.requests import ExamplesRequest, UnitRef, unit_page_path

LAYERS = {
    "toy": {
        "blocks.0.mlp.hook_post": {"units": 64, "shape": [48, 64]},
        "blocks.1.hook_resid_post": {"units": 32, "shape": [48, 32]},
        "blocks.1.attn": {"units": 4, "heads": 4, "shape": [4, 48, 48]},
    }
}


def test_a_head_parses_prints_and_has_its_page():
    ref = parse_ref("toy/blocks.1.attn:H3")
    assert ref.head and ref.layer == "blocks.1.attn" and ref.channel == 3
    assert str(ref) == "toy/blocks.1.attn:H3"
    assert unit_page_path(ref) == "units/toy/blocks.1.attn/H3/"
    resolve_ref(ref, ["toy"], LAYERS)


def test_neurons_and_directions_of_hook_layers():
    neuron = parse_ref("toy/blocks.0.mlp.hook_post:17")
    assert not neuron.head and unit_page_path(neuron) == "units/toy/blocks.0.mlp.hook_post/17/"
    direction = parse_ref("toy/blocks.1.hook_resid_post:0.5*3-0.2*7")
    assert direction.terms == ((3, 0.5), (7, -0.2))
    for ref in (neuron, direction):
        resolve_ref(ref, ["toy"], LAYERS)


def test_the_head_flag_leaves_other_cache_keys_alone():
    plain = UnitRef("m", "conv1", ((2, 1.0),))
    assert "head" not in plain.to_json()
    assert '"head"' not in ExamplesRequest(plain).key()
    assert '"head":true' in ExamplesRequest(UnitRef("m", "b.attn", ((2, 1.0),), head=True)).key()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("toy/blocks.1.attn:H4", "head H4 out of range for toy/blocks.1.attn"),
        ("toy/blocks.1.attn:2", "the units of 'blocks.1.attn' are attention heads"),
        ("toy/blocks.0.mlp.hook_post:H1", "layer 'blocks.0.mlp.hook_post' has no attention heads"),
        ("toy/blocks.0.mlp.hook_postt:1", "model 'toy' has no layer 'blocks.0.mlp.hook_postt'"),
        ("toy/blocks.0.mlp.hook_post:64", "unit 64 out of range"),
    ],
)
def test_bad_references_name_the_problem(text, message):
    with pytest.raises(UserError) as err:
        resolve_ref(parse_ref(text), ["toy"], LAYERS)
    assert message in str(err.value)


def test_a_head_has_no_position():
    with pytest.raises(UserError, match="a head has no position"):
        parse_ref("toy/blocks.1.attn:H1@2,3")
