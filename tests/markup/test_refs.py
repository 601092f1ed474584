import pytest

from circuitpress.errors import UserError
from circuitpress.markup.refs import parse_layer_ref, parse_ref, resolve_ref
from circuitpress.requests import UnitRef, unit_page_path


@pytest.mark.parametrize(
    "text, model, layer, terms, pos",
    [
        ("shapes-a/conv2:7", "shapes-a", "conv2", ((7, 1.0),), None),
        ("conv2:7@3,4", "dflt", "conv2", ((7, 1.0),), (3, 4)),
        ("m/conv2:0.7*3-0.2*7", "m", "conv2", ((3, 0.7), (7, -0.2)), None),
        ("m/features.2.0:12", "m", "features.2.0", ((12, 1.0),), None),
        ("conv1:3+5", "dflt", "conv1", ((3, 1.0), (5, 1.0)), None),
        ("m/mixed4a:-1*2", "m", "mixed4a", ((2, -1.0),), None),
    ],
)
def test_parse_valid(text, model, layer, terms, pos):
    ref = parse_ref(text, "dflt")
    assert (ref.model, ref.layer, ref.terms, ref.position) == (model, layer, terms, pos)
    assert parse_ref(str(ref)) == ref  # canonical text round-trips


@pytest.mark.parametrize(
    "text",
    ["conv2", "m/conv2:", "m/conv2:x", "m/conv2:3*", "m/conv2:3@1", "m/:3", "m/conv2:1*3+2*3"],
)
def test_parse_invalid(text):
    with pytest.raises(UserError):
        parse_ref(text, "dflt")


def test_no_model():
    with pytest.raises(UserError) as info:
        parse_ref("conv2:7")
    assert "model:" in info.value.format()


def test_layer_ref():
    assert parse_layer_ref("shapes-a/conv1") == ("shapes-a", "conv1")
    assert parse_layer_ref("conv1", "m") == ("m", "conv1")
    with pytest.raises(UserError):
        parse_layer_ref("conv1")


LAYERS = {
    "m": {
        "conv1": {"units": 16, "shape": [16, 64, 64]},
        "conv2": {"units": 32, "shape": [32, 32, 32]},
        "head": {"units": 10, "shape": [10]},
    }
}


def test_resolve_hints():
    with pytest.raises(UserError) as info:
        resolve_ref(parse_ref("m/conv3:1"), ["m"], LAYERS)
    assert "no layer 'conv3'" in info.value.message and "conv1" in info.value.hint
    with pytest.raises(UserError) as info:
        resolve_ref(parse_ref("m/conv1:16"), ["m"], LAYERS)
    assert "0 to 15" in info.value.hint
    with pytest.raises(UserError) as info:
        resolve_ref(parse_ref("n/conv1:1"), ["m"], LAYERS)
    assert "unknown model 'n'" in info.value.message
    with pytest.raises(UserError) as info:
        resolve_ref(parse_ref("m/conv2:1@40,2"), ["m"], LAYERS)
    assert "32x32" in info.value.hint
    with pytest.raises(UserError):
        resolve_ref(parse_ref("m/head:1@0,0"), ["m"], LAYERS)
    resolve_ref(parse_ref("m/conv2:0.5*1-0.5*31@3,3"), ["m"], LAYERS)


def test_unit_page_path():
    assert unit_page_path(parse_ref("m/conv2:7@1,2")) == "units/m/conv2/7/"
    assert unit_page_path(parse_ref("m/conv2:1*7-1*3")) is None
    assert UnitRef("m", "c", ((1, 1.0),)).channel == 1
