"""Input sizes everywhere: thumbnails, feature vis, examples and tuning use the size the model
takes; a size it cannot take is one located line; token layers (a ViT's blocks) are channels
over tokens. Real models with seeded random weights, built in the test's site folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from circuitpress.analysis.engine import compute
from circuitpress.cli import cli
from circuitpress.config import load_config
from circuitpress.requests import ExamplesRequest, FeatureVisRequest, TuningRequest, UnitRef

NETS = """\
import torch
from torch import nn


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 16), nn.ReLU(), nn.Linear(16, 4))


def vit() -> nn.Module:
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.VisionTransformer(
        image_size=32, patch_size=4, num_layers=2, num_heads=2, hidden_dim=64, mlp_dim=128,
        num_classes=10,
    )
"""

CONFIG = """\
[site]
title = "sizes"
[models.mlp]
factory = "nets:mlp"
input_size = [32, 32]
[models.vit]
factory = "nets:vit"
[build]
dataset_sample = 16
"""


def site(tmp_path: Path, body: str = "") -> Path:
    root = tmp_path / "site"
    (root / "content").mkdir(parents=True)
    (root / "nets.py").write_text(NETS, encoding="utf-8")
    (root / "circuitpress.toml").write_text(CONFIG, encoding="utf-8")
    front = "---\ntitle: A\npublished: 2026-01-01\n---\n\n"
    (root / "content" / "a.md").write_text(front + textwrap.dedent(body), encoding="utf-8")
    return root


def test_a_size_the_model_cannot_take_is_one_located_line(tmp_path: Path) -> None:
    root = site(tmp_path, ":::{feature} mlp/1:3\n:steps: 4\n:size: 64\n:::\n")
    result = CliRunner().invoke(cli, ["build", str(root), "--quiet"])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("content/a.md:6: the model's forward pass fails on a 3x64x64 input")
    assert "mat1 and mat2" in lines[0] and "input_size" in lines[0]


@pytest.mark.slow
def test_an_mlp_of_32px_inputs_gets_its_figures_and_unit_pages(tmp_path: Path) -> None:
    # Unit-page thumbnails were always 64 px: this crashed with "mat1 and mat2 shapes".
    root = site(tmp_path, ":::{feature} mlp/1:3\n:steps: 8\n:::\n\nSee {unit}`mlp/3:1`.\n")
    result = CliRunner().invoke(cli, ["build", str(root), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (root / "_site" / "units" / "mlp" / "1" / "3" / "index.html").is_file()
    assert (root / "_site" / "units" / "mlp" / "3" / "1" / "index.html").is_file()


def test_a_vit_without_input_size_runs_at_its_own_image_size(tmp_path: Path) -> None:
    config = load_config(site(tmp_path))
    ref = UnitRef("vit", "encoder.layers.encoder_layer_1", ((5, 1.0),))
    fv = FeatureVisRequest(ref, steps=6)
    examples = ExamplesRequest(ref, k=3)
    tuning = TuningRequest(ref, "orientation", steps=6)
    results = compute([fv, examples, tuning], config, device="cpu", threads=1)

    images = results[fv].arrays["images"]
    assert images.shape == (1, 32, 32, 3) and results[fv].data["size"] == 32
    assert results[fv].data["loss_end"] < results[fv].data["loss_start"]  # it optimised

    # Examples: the strongest token's patch (4 px patches of an 8x8 grid after the class
    # token; crops at least a quarter of the image), the activation laid over its patch.
    ex = results[examples]
    assert ex.arrays["images"].shape == (3, 8, 8, 3)
    for (token, column), (y0, x0, y1, x1) in zip(
        ex.data["positions"], ex.data["boxes"], strict=True
    ):
        assert column == 0 and 0 <= token < 65
        if token == 0:  # the class token: the whole image
            assert (y0, x0, y1, x1) == (0, 0, 32, 32)
            continue
        row, col = divmod(token - 1, 8)
        cy, cx = row * 4 + 2, col * 4 + 2
        assert y0 <= cy < y1 and x0 <= cx < x1 and (y1 - y0, x1 - x0) == (8, 8)
    values = ex.data["values"]
    assert values == sorted(values, reverse=True)

    curve = results[tuning].data
    assert len(curve["response"]) == 6 and np.isfinite(curve["response"]).all()
    assert curve["position"] == [1 + 4 * 8 + 4, 0]  # the token of the centre patch


@pytest.mark.slow
def test_lucent_inception_at_128_px_tunes_without_a_full_forward(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    modelzoo = pytest.importorskip("lucent.modelzoo")
    torch.manual_seed(0)
    net = modelzoo.inceptionv1(pretrained=False)
    root = tmp_path / "site"
    root.mkdir()
    torch.save(net.state_dict(), root / "inception.pt")
    (root / "circuitpress.toml").write_text(
        '[site]\ntitle = "x"\n[models.inception]\nlucent = "inceptionv1"\n'
        'weights = "inception.pt"\ninput_size = [128, 128]\n',
        encoding="utf-8",
    )
    config = load_config(root)
    ref = UnitRef("inception", "mixed3b", ((7, 1.0),))
    request = TuningRequest(ref, "orientation", steps=4)
    result = compute([request], config, device="cpu", threads=1)[request]
    assert len(result.data["response"]) == 4 and result.arrays["stimuli"].shape[1:] == (128, 128, 3)


@pytest.mark.slow
def test_a_vit_site_builds_with_the_unit_page_of_a_token_layer(tmp_path: Path) -> None:
    # The unit page's default connections on a token-shaped layer used to fail the build
    # ("weights and connections need a map"); the page now shows no connections instead.
    layer = "encoder.layers.encoder_layer_1"
    root = site(tmp_path, f":::{{feature}} vit/{layer}:5\n:steps: 8\n:::\n")
    result = CliRunner().invoke(cli, ["build", str(root), "--quiet"])
    assert result.exit_code == 0, result.output
    page = root / "_site" / "units" / "vit" / layer / "5" / "index.html"
    assert page.is_file()
    assert "<img" in page.read_text(encoding="utf-8")
