"""Issue 10, points 1 and 2: real architectures (torchvision GoogLeNet and ResNet-18, lucent's
InceptionV1) with seeded random weights, no download.

Layers are every module output (blocks, concats, wrappers); connections follow the true
dataflow through branches, concatenations and residual adds, checked against answers derived
by hand from the weight tensors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from click.testing import CliRunner
from torch import nn

from circuitpress.analysis.methods.dataflow import Dataflow
from circuitpress.analysis.methods.weights import Connections, compute_group, strongest
from circuitpress.analysis.models.facts import layer_facts
from circuitpress.errors import UserError
from circuitpress.markup.refs import resolve_ref
from circuitpress.requests import TopConnectionsRequest, UnitRef, WeightsRequest

from .circuit_toys import Env, Loaded, Models, ToyDataset

SIZE = 64  # both torchvision nets take 64x64 images (adaptive average pool at the end)


def _randomise_batch_norms(net: nn.Module, seed: int) -> nn.Module:
    """Random running statistics and affine parameters: a BN that is not the identity, so the
    hand-derived answers must fold its scale in."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return net.eval()


@pytest.fixture(scope="module")
def googlenet() -> nn.Module:
    torch.manual_seed(0)
    net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True)
    return _randomise_batch_norms(net, 1)


@pytest.fixture(scope="module")
def resnet18() -> nn.Module:
    torch.manual_seed(0)
    return _randomise_batch_norms(torchvision.models.resnet18(weights=None), 2)


def _env(name: str, net: nn.Module) -> Env:
    loaded = Loaded(net, ToyDataset(n=4, size=SIZE), input_shape=(3, SIZE, SIZE))
    return Env(Models({name: loaded}))


def _unit(model: str, layer: str, channel: int) -> UnitRef:
    return UnitRef(model, layer, ((channel, 1.0),))


def _bn_scale(bn: nn.BatchNorm2d) -> np.ndarray:
    """d BN(x) / dx in eval mode: gamma / sqrt(running_var + eps), per channel."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale.detach().double().numpy()


def _weight(conv: nn.Conv2d) -> np.ndarray:
    return conv.weight.detach().double().numpy()


def _top(kernels: np.ndarray, n: int) -> list[int]:
    return [u["channel"] for u in strongest(kernels.astype(np.float32), n)]


# -- point 1: any module output is a layer ----------------------------------------------------


def test_blocks_and_concats_are_layers(googlenet: nn.Module, resnet18: nn.Module) -> None:
    g_facts = {f["name"]: f for f in layer_facts(Dataflow.trace(googlenet, _probe()))}
    assert g_facts["inception4a"]["shape"] == [512, 4, 4]  # the concat of the four branches
    assert g_facts["inception4a"]["type"] == "Inception"
    assert g_facts["inception4a.branch2"]["shape"] == [208, 4, 4]  # a Sequential
    assert g_facts["inception4a.branch2.1"]["input_layer"] == "inception4a.branch2.0.conv"
    r_facts = {f["name"]: f for f in layer_facts(Dataflow.trace(resnet18, _probe()))}
    assert r_facts["layer3"]["shape"] == [256, 4, 4] and r_facts["layer3"]["units"] == 256
    assert (
        r_facts["layer2.0"]["shape"] == [128, 8, 8] and r_facts["layer2.0"]["type"] == "BasicBlock"
    )
    # Every module of named_modules() is listed: none refused.
    assert set(r_facts) == {n for n, _ in resnet18.named_modules() if n}
    assert set(g_facts) >= {n for n, _ in googlenet.named_modules() if n}
    layers = {"r": r_facts}
    resolve_ref(_unit("r", "layer3", 255), ["r"], layers)
    resolve_ref(_unit("r", "layer2.0", 3), ["r"], layers)
    with pytest.raises(UserError, match="unit 256 out of range"):
        resolve_ref(_unit("r", "layer3", 256), ["r"], layers)


class _Pair(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x.mean((2, 3))


class _TupleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.pair = _Pair()
        self.unused = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps, _ = self.pair(self.conv(x))
        return maps


def test_a_block_returning_a_tuple_is_one_error_naming_it() -> None:
    facts = {
        f["name"]: f for f in layer_facts(Dataflow.trace(_TupleNet(), torch.zeros(1, 3, 8, 8)))
    }
    assert facts["conv"]["shape"] == [4, 6, 6]
    assert facts["pair"]["error"] == (
        "layer 'pair' returns a tuple of 2 values (1x4x6x6, 1x4), not one tensor"
    )
    assert "produced no output" in facts["unused"]["error"]
    with pytest.raises(UserError) as err:
        resolve_ref(_unit("t", "pair", 0), ["t"], {"t": facts})
    assert str(err.value).splitlines() == [
        "layer 'pair' returns a tuple of 2 values (1x4x6x6, 1x4), not one tensor "
        "(name a module inside it that returns a tensor)"
    ]


def _probe() -> torch.Tensor:
    return torch.zeros(1, 3, SIZE, SIZE)


# -- point 2: the true dataflow ----------------------------------------------------------------

GOOGLENET_INPUTS = {  # the layer that really feeds each conv of inception4a
    "inception4a.branch1.conv": "inception3b",
    "inception4a.branch2.0.conv": "inception3b",
    "inception4a.branch2.1.conv": "inception4a.branch2.0.conv",
    "inception4a.branch3.0.conv": "inception3b",
    "inception4a.branch3.1.conv": "inception4a.branch3.0.conv",
    "inception4a.branch4.1.conv": "inception3b",
}
RESNET_INPUTS = {  # ... and of each conv of ResNet-18's layer2
    "layer2.0.conv1": "layer1",
    "layer2.0.conv2": "layer2.0.conv1",
    "layer2.0.downsample.0": "layer1",
    "layer2.1.conv1": "layer2.0",
    "layer2.1.conv2": "layer2.1.conv1",
}


def _unit_pages(name: str, net: nn.Module, convs: list[str]) -> dict[str, dict]:
    """The connection requests of a unit page (inputs and outputs) for unit 3 of each conv."""
    env = _env(name, net)
    requests = {
        (layer, d): TopConnectionsRequest(_unit(name, layer, 3), n=8, direction=d)
        for layer in convs
        for d in ("inputs", "outputs")
    }
    results = compute_group(list(requests.values()), env)
    return {f"{layer} {d}": results[r] for (layer, d), r in requests.items()}


@pytest.mark.slow
def test_every_conv_of_inception4a_gets_its_true_inputs(googlenet: nn.Module) -> None:
    convs = [
        n
        for n, m in googlenet.named_modules()
        if n.startswith("inception4a") and isinstance(m, nn.Conv2d)
    ]
    assert sorted(convs) == sorted(GOOGLENET_INPUTS)
    pages = _unit_pages("g", googlenet, convs)
    for conv, feeds in GOOGLENET_INPUTS.items():
        inputs = pages[f"{conv} inputs"]
        assert inputs.data["layer"] == feeds, conv
        assert len(inputs.data["units"]) == 8
        assert np.isfinite(inputs.arrays["kernels"]).all()
        outputs = pages[f"{conv} outputs"]
        # Every branch ends in the concat, which feeds the next block's convs.
        assert outputs.data["layer"] is not None and outputs.data["layer"].startswith(
            ("inception4a.", "inception4b.")
        ), conv
        assert np.isfinite(outputs.arrays["kernels"]).all()
    # A conv reading the concat reads all 480 of its channels: the kernel is the conv's own.
    w = _weight(googlenet.inception4a.branch1.conv)[3]  # [480, 1, 1]
    concat = pages["inception4a.branch1.conv inputs"]
    assert concat.data["expanded"] is False
    assert [u["channel"] for u in concat.data["units"]] == _top(w, 8)
    np.testing.assert_allclose(
        concat.arrays["kernels"], w[_top(w, 8)].astype(np.float32), rtol=1e-6
    )


def test_a_conv_inside_a_branch_reads_its_own_branch(googlenet: nn.Module) -> None:
    """inception4a.branch2.1.conv (3x3) reads branch2.0 (1x1 conv -> BN -> ReLU): the expanded
    weight at the centre is W_3x3[j, m] times BN's scale of channel m (ReLU as identity)."""
    block = googlenet.inception4a
    expected = _weight(block.branch2[1].conv)[3] * _bn_scale(block.branch2[0].bn)[:, None, None]
    result = _unit_pages("g", googlenet, ["inception4a.branch2.1.conv"])[
        "inception4a.branch2.1.conv inputs"
    ]
    assert result.data["layer"] == "inception4a.branch2.0.conv" and result.data["expanded"]
    top = _top(expected, 8)
    assert [u["channel"] for u in result.data["units"]] == top
    np.testing.assert_allclose(result.arrays["kernels"], expected[top], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_every_conv_of_resnet_layer2_gets_its_true_inputs(resnet18: nn.Module) -> None:
    pages = _unit_pages("r", resnet18, list(RESNET_INPUTS))
    for conv, feeds in RESNET_INPUTS.items():
        assert pages[f"{conv} inputs"].data["layer"] == feeds, conv
        assert np.isfinite(pages[f"{conv} inputs"].arrays["kernels"]).all()
    # The "next" conv is the one the residual stream reaches, never the parallel downsample.
    assert pages["layer2.0.conv2 outputs"].data["layer"] == "layer2.1.conv1"
    assert pages["layer2.0.conv1 outputs"].data["layer"] == "layer2.0.conv2"
    assert pages["layer2.1.conv2 outputs"].data["layer"] == "layer3.0.conv1"
    # layer2.0.conv1 reads layer1's 64 channels directly: its own kernel.
    w = _weight(resnet18.layer2[0].conv1)[3]
    first = pages["layer2.0.conv1 inputs"]
    assert first.data["expanded"] is False
    np.testing.assert_allclose(first.arrays["kernels"], w[_top(w, 8)].astype(np.float32))


def test_resnet_conv2_inputs_and_outputs_by_hand(resnet18: nn.Module) -> None:
    """layer2.0.conv2 reads conv1 through bn1 and a ReLU; it reaches layer2.1.conv1 through
    bn2, the residual add and a ReLU: both are a kernel times a BN scale."""
    block, nxt = resnet18.layer2[0], resnet18.layer2[1]
    pages = _unit_pages("r", resnet18, ["layer2.0.conv2"])
    expected_in = _weight(block.conv2)[3] * _bn_scale(block.bn1)[:, None, None]
    inputs = pages["layer2.0.conv2 inputs"]
    assert inputs.data["expanded"]
    assert [u["channel"] for u in inputs.data["units"]] == _top(expected_in, 8)
    np.testing.assert_allclose(
        inputs.arrays["kernels"], expected_in[_top(expected_in, 8)], rtol=1e-4, atol=1e-6
    )
    # From channel 3 of conv2 into each channel k of the next block's conv1.
    expected_out = _weight(nxt.conv1)[:, 3] * _bn_scale(block.bn2)[3]
    outputs = pages["layer2.0.conv2 outputs"]
    assert [u["channel"] for u in outputs.data["units"]] == _top(expected_out, 8)
    np.testing.assert_allclose(
        outputs.arrays["kernels"], expected_out[_top(expected_out, 8)], rtol=1e-4, atol=1e-6
    )


def test_expanded_weights_across_a_residual_block_carry_the_skip(resnet18: nn.Module) -> None:
    """Voss et al.: through a residual block the expanded weight is the identity of the skip
    plus the branch's path product. With the branch silenced (bn2's gamma and beta 0) only
    the identity is left: channel c to channel c, at the centre."""
    net = _randomise_batch_norms(torchvision.models.resnet18(weights=None), 3)
    with torch.no_grad():
        net.layer2[1].bn2.weight.zero_()
        net.layer2[1].bn2.bias.zero_()
    conn = Connections(net, _probe())
    assert conn.graph.input_layer("layer2") == "layer2.0"
    rows = conn.rows("layer2.0", "layer2", [5])[0]  # [128, kh, kw]
    centre = np.zeros_like(rows)
    ys, xs = conn.footprint("layer2.0", "layer2")
    centre[5, 4 - ys.start, 4 - xs.start] = 1.0  # layer2's 8x8 map: centre (4, 4)
    np.testing.assert_allclose(rows, centre, atol=1e-6)
    # With the branch on, the skip's identity is still part of the answer.
    full = Connections(resnet18, _probe()).rows("layer2.0", "layer2", [5])[0]
    assert full.shape[1:] == (5, 5)  # two 3x3 convs: a 5x5 footprint
    assert not np.allclose(full, rows)


def test_parallel_branches_are_one_error(googlenet: nn.Module) -> None:
    env = _env("g", googlenet)
    request = WeightsRequest(
        _unit("g", "inception4a.branch3.1.conv", 0), _unit("g", "inception4a.branch2.1.conv", 0)
    )
    with pytest.raises(UserError, match="parallel branches") as err:
        compute_group([request], env)
    assert len(str(err.value).splitlines()) == 1
    backwards = WeightsRequest(_unit("g", "inception4b", 0), _unit("g", "inception4a", 0))
    with pytest.raises(UserError, match="does not come before"):
        compute_group([backwards], env)


def test_expanded_weights_through_an_inception_block(googlenet: nn.Module) -> None:
    """From inception3b (the concat feeding the block) to a channel of inception4a that comes
    from branch 1: the 1x1 conv's kernel times its BN scale; channels of branch 2 are the
    product along that branch (1x1 -> BN -> 3x3 -> BN)."""
    block = googlenet.inception4a
    conn = Connections(googlenet, _probe())
    assert conn.graph.input_layer("inception4a") == "inception3b"
    s1 = _bn_scale(block.branch1.bn)
    rows = conn.rows("inception3b", "inception4a", [3])[0]  # channel 3: branch 1's unit 3
    # inception3b -> maxpool3 (as an average pool over its window) -> 1x1 conv -> BN: over
    # the window the weights sum to the conv's kernel times the BN scale.
    expected = _weight(block.branch1.conv)[3, :, 0, 0] * s1[3]
    np.testing.assert_allclose(rows.sum((1, 2)), expected, rtol=1e-4, atol=1e-6)
    # Branch 2's first channel (192 + 0 of the concat): 3x3 kernel through the bottleneck.
    w1 = _weight(block.branch2[0].conv)[:, :, 0, 0] * _bn_scale(block.branch2[0].bn)[:, None]
    w2 = _weight(block.branch2[1].conv)[0] * _bn_scale(block.branch2[1].bn)[0]
    summed = conn.rows("inception3b", "inception4a", [192])[0].sum((1, 2))
    np.testing.assert_allclose(summed, np.einsum("mkl,mi->i", w2, w1), rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_lucent_inceptionv1_units_in_a_branch() -> None:
    """lucent's InceptionV1 at its own 224 px: `mixed4a` (a CatLayer) and the post-ReLU
    `mixed4a_1x1` are layers; mixed4a_1x1 reads all 480 channels of mixed3b; the 3x3 conv of
    mixed4a reads its own bottleneck, and its outputs compute (they crashed: exit 3)."""
    from lucent.modelzoo import inceptionv1

    torch.manual_seed(0)
    net = inceptionv1(pretrained=False).eval()
    probe = torch.zeros(1, 3, 224, 224)
    facts = {f["name"]: f for f in layer_facts(Dataflow.trace(net, probe))}
    assert facts["mixed4a"]["shape"] == [508, 14, 14] and facts["mixed4a"]["type"] == "CatLayer"
    assert facts["mixed4a_1x1"]["input_layer"] == "mixed3b"
    env = Env(Models({"i": Loaded(net, ToyDataset(n=2, size=224), input_shape=(3, 224, 224))}))
    ones = TopConnectionsRequest(_unit("i", "mixed4a_1x1", 5), n=8)
    inputs = TopConnectionsRequest(_unit("i", "mixed4a_3x3_pre_relu_conv", 97), n=8)
    outputs = TopConnectionsRequest(
        _unit("i", "mixed4a_3x3_pre_relu_conv", 97), n=8, direction="outputs"
    )
    results = compute_group([ones, inputs, outputs], env)
    w = _weight(net.mixed4a_1x1_pre_relu_conv)[5]  # [192, 480, 1, 1]
    assert results[ones].data["layer"] == "mixed3b" and not results[ones].data["expanded"]
    assert [u["channel"] for u in results[ones].data["units"]] == _top(w, 8)
    assert results[inputs].data["layer"] == "mixed4a_3x3_bottleneck_pre_relu_conv"
    w3 = _weight(net.mixed4a_3x3_pre_relu_conv)[97]
    assert [u["channel"] for u in results[inputs].data["units"]] == _top(w3, 8)
    assert results[outputs].data["layer"] == "mixed4b_1x1_pre_relu_conv"
    assert np.isfinite(results[outputs].arrays["kernels"]).all()


def _resnet_site(root: Path, page: str = "") -> Path:
    (root / "nets").mkdir(parents=True)
    (root / "nets" / "__init__.py").write_text("")
    (root / "nets" / "res.py").write_text(
        "import torch, torchvision\n\n"
        "def build():\n"
        "    torch.manual_seed(0)\n"
        "    return torchvision.models.resnet18(weights=None, num_classes=3)\n"
    )
    (root / "circuitpress.toml").write_text(
        '[site]\ntitle = "t"\n\n[models.res]\nfactory = "nets.res:build"\n'
        'input_size = [64, 64]\ndataset = "shapes"\n'
    )
    if page:
        (root / "content").mkdir()
        (root / "content" / "a.md").write_text(page)
    return root


def test_models_command_lists_blocks_with_their_inputs(tmp_path: Path) -> None:
    from circuitpress.cli import cli

    _resnet_site(tmp_path)
    result = CliRunner().invoke(cli, ["models", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = {
        line.split()[0]: line.split()
        for line in result.output.splitlines()
        if line.startswith("  ")
    }
    assert rows["layer2.0"][1:3] == ["BasicBlock", "128x8x8"] and rows["layer2.0"][-1] == "layer1"
    assert rows["layer3"][1:4] == ["Sequential", "256x4x4", "256"]
    assert rows["conv1"][-1] == "image"
    assert "layer2.0.conv2 *" in result.output


class _Tokens(nn.Module):
    """A patch embedding and a linear layer on its tokens: [B, 16, 8] outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.patches = nn.Conv2d(3, 8, 4, stride=4)
        self.mix = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(self.patches(x).flatten(2).transpose(1, 2))


def test_token_layers_count_channels_and_refuse_kernels_in_one_line() -> None:
    torch.manual_seed(0)
    net = _Tokens().eval()
    facts = {f["name"]: f for f in layer_facts(Dataflow.trace(net, torch.zeros(1, 3, 16, 16)))}
    assert facts["mix"]["shape"] == [16, 8] and facts["mix"]["units"] == 8  # channels, not tokens
    assert facts["mix"]["input_layer"] == "patches"
    with pytest.raises(UserError, match=r"layer 'mix' has output shape 16x8") as err:
        Connections(net, torch.zeros(1, 3, 16, 16)).rows("patches", "mix", [0])
    assert len(str(err.value).splitlines()) == 1


def test_check_locates_weights_across_parallel_branches(tmp_path: Path) -> None:
    """`{weights}` between the residual branch and the parallel downsample: one located line
    and exit 1 from the model facts alone (the analysis crashed on such pairs: exit 3)."""
    from circuitpress.cli import cli

    page = (
        "---\ntitle: A\n---\n\nText.\n\n"
        "```{weights} res/layer2.0.downsample.0:1 -> res/layer2.0.conv2:3\n```\n"
    )
    site = _resnet_site(tmp_path, page)
    result = CliRunner().invoke(cli, ["check", str(site)])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if "content/a.md" in line]
    assert lines == [
        "content/a.md:7: {weights}: layer 'layer2.0.conv2' does not depend on "
        "'layer2.0.downsample.0' in res (they are on parallel branches) "
        "(its input is layer2.0.conv1)"
    ]


def test_weights_from_a_resnet_bn2_survive_the_in_place_add(resnet18: nn.Module) -> None:
    """bn2's output is what `out += identity` changes in place: the free tensor that replaces
    it for the weights must not be a leaf the model writes into (it failed with "a leaf
    Variable that requires grad is being used in an in-place operation")."""
    conn = Connections(resnet18, _probe())
    kernel = conn.kernel(_unit("r", "layer1.0.bn2", 3), _unit("r", "layer1.1.conv1", 0))
    assert kernel.shape == (3, 3) and np.abs(kernel).sum() > 0
    outputs = conn.outputs_of(_unit("r", "layer1.0.bn2", 3), "layer1.1.conv1")
    assert outputs.shape[0] == 64


def test_a_module_called_twice_is_edited_at_its_first_call_only(resnet18: nn.Module) -> None:
    """torchvision's BasicBlock calls one ReLU twice; `layer1.0.relu` is its first call (after
    bn1). Expanded weights from it to the next block go through conv2 (a 5x5 footprint),
    not the block's output (the 3x3 kernel of the next conv)."""
    conn = Connections(resnet18, _probe())
    dst = _unit("r", "layer1.1.conv1", 0)
    from_relu = conn.kernel(_unit("r", "layer1.0.relu", 0), dst)
    from_block = conn.kernel(_unit("r", "layer1.0", 0), dst)
    assert from_block.shape == (3, 3) and from_relu.shape == (5, 5)


def test_a_forward_error_survives_pickling() -> None:
    """A Ray worker's error reaches the driver pickled: it must arrive as the same one line."""
    import pickle

    from circuitpress.analysis.models.capture import ForwardError

    err = ForwardError(RuntimeError("mat1 and mat2 shapes cannot be multiplied"), (3, 64, 64))
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, UserError) and back.format() == err.format()
    assert "3x64x64" in back.format()
