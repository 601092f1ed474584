"""The model registry: each source loads, nothing ever unpickles code, and every bad input is a
one-line UserError at the model's table in circuitpress.toml."""

from __future__ import annotations

import os
import pickle
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from circuitpress.analysis.models.facts import compute_group
from circuitpress.analysis.models.registry import ModelRegistry, resolve_device
from circuitpress.config import load_config
from circuitpress.errors import UserError
from circuitpress.requests import ModelInfoRequest

NET = """\
from torch import nn

def build():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Sequential(nn.Conv2d(8, 4, 3, padding=1), nn.ReLU()),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2),
    )

def broken():
    raise RuntimeError("no GPU here")

NOT_CALLABLE = 3
"""


def make_site(root: Path, models: str, module: str = "nets") -> Path:
    """A site folder with `module/tiny.py` (a unique top-level name per test: no import clashes)."""
    (root / module).mkdir(parents=True, exist_ok=True)
    (root / module / "__init__.py").write_text("")
    (root / module / "tiny.py").write_text(NET)
    (root / "circuitpress.toml").write_text(
        '[site]\ntitle = "t"\n\n' + textwrap.dedent(models) + "\n[build]\ndataset_sample = 32\n"
    )
    return root


def tiny_state(root: Path, module: str) -> dict[str, torch.Tensor]:
    ns: dict[str, object] = {}
    exec(compile(NET, "tiny", "exec"), ns)
    torch.manual_seed(0)
    return ns["build"]().state_dict()  # type: ignore[operator]  # exec'd: typed object


def error_of(root: Path, name: str) -> UserError:
    with pytest.raises(UserError) as info:
        ModelRegistry(load_config(root), "cpu").get(name)
    return info.value


def line_of(root: Path, name: str) -> int:
    lines = (root / "circuitpress.toml").read_text().splitlines()
    return next(i + 1 for i, text in enumerate(lines) if text.strip() == f"[models.{name}]")


def test_factory_with_safetensors_and_pt(tmp_path: Path) -> None:
    site = make_site(
        tmp_path,
        """\
        [models.st]
        factory = "netsa.tiny:build"
        weights = "w.safetensors"

        [models.pt]
        factory = "netsa.tiny:build"
        weights = "w.pt"
        """,
        module="netsa",
    )
    state = tiny_state(site, "netsa")
    save_file(state, str(site / "w.safetensors"))
    torch.save(state, site / "w.pt")
    registry = ModelRegistry(load_config(site), "cpu")
    for name in ("st", "pt"):
        model = registry.get(name)
        assert model is registry.get(name)  # cached
        assert not model.module.training
        assert all(not p.requires_grad for p in model.module.parameters())
        assert torch.equal(model.module.state_dict()["0.weight"], state["0.weight"])
        assert isinstance(model.layer("2.0"), torch.nn.Conv2d)  # dotted names
        assert model.device == torch.device("cpu")


def test_layer_unknown_is_a_user_error_with_hint(tmp_path: Path) -> None:
    site = make_site(tmp_path, '[models.m]\nfactory = "netsb.tiny:build"\n', module="netsb")
    model = ModelRegistry(load_config(site), "cpu").get("m")
    with pytest.raises(UserError, match=r"no layer '2\.5'.*did you mean.*'2\.0'"):
        model.layer("2.5")


def test_dataset_batches_and_images(tmp_path: Path) -> None:
    site = make_site(
        tmp_path,
        '[models.m]\nfactory = "netsc.tiny:build"\ninput_size = [48, 40]\n',
        module="netsc",
    )
    ds = ModelRegistry(load_config(site), "cpu").get("m").dataset()
    assert len(ds) == 32
    batches = list(ds.batches(10))
    assert [b[0] for b in batches] == [0, 10, 20, 30]
    start, x, labels = batches[1]
    assert x.shape == (10, 3, 48, 40) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and labels is not None
    again = ds.images([12, 11])
    assert again.shape == (2, 48, 40, 3)
    np.testing.assert_array_equal(again[0], x[2].permute(1, 2, 0).numpy())
    assert len(list(ds.batches(10, limit=15))) == 2


def test_folder_dataset_and_unreadable_image(tmp_path: Path) -> None:
    from PIL import Image

    site = make_site(
        tmp_path,
        '[models.m]\nfactory = "netsd.tiny:build"\ndataset = "data/images"\n',
        module="netsd",
    )
    folder = site / "data" / "images"
    folder.mkdir(parents=True)
    for i, color in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        Image.new("RGB", (80, 50), color).save(folder / f"{i}.png")
    ds = ModelRegistry(load_config(site), "cpu").get("m").dataset()
    assert len(ds) == 3
    _, x, labels = next(ds.batches(8))
    assert x.shape == (3, 3, 64, 64) and labels is None
    assert float(x[1, 1].mean()) == pytest.approx(1.0) and float(x[1, 0].mean()) == pytest.approx(
        0.0
    )
    (folder / "3.png").write_bytes(b"not an image at all")
    ds = ModelRegistry(load_config(site), "cpu").get("m").dataset()
    with pytest.raises(UserError, match=r"data/images/3\.png"):
        list(ds.batches(8))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    proof = tmp_path / "PROOF"

    class Payload:
        def __init__(self, target: Path) -> None:
            self.target = target

        def __reduce__(self):  # type: ignore[no-untyped-def]  # pickle's protocol, untyped
            return (os.system, (f"touch {self.target}",))

    # The payload really runs when unpickled the unsafe way (so the test below can fail) ...
    pickle.loads(pickle.dumps(Payload(proof)))
    assert proof.exists()
    # ... and neither a plain pickle nor a torch zip file carrying it is ever unpickled.
    site = make_site(
        tmp_path,
        """\
        [models.plain]
        factory = "netse.tiny:build"
        weights = "evil.pt"

        [models.zipped]
        factory = "netse.tiny:build"
        weights = "evil.pth"
        """,
        module="netse",
    )
    (site / "evil.pt").write_bytes(pickle.dumps({"0.weight": Payload(marker)}))
    torch.save({"0.weight": Payload(marker)}, site / "evil.pth")
    for name, file in (("plain", "evil.pt"), ("zipped", "evil.pth")):
        err = error_of(site, name)
        assert err.file == "circuitpress.toml" and err.line == line_of(site, name)
        assert file in err.message and "execute code" in err.message
        assert "\n" not in err.format()
    assert not marker.exists()


@pytest.mark.parametrize(
    ("table", "setup", "pattern"),
    [
        ('zoo = "shapes-z"', None, "unknown zoo model 'shapes-z'.*did you mean"),
        (
            'factory = "netsf.tiny:build"\nweights = "missing.safetensors"',
            None,
            "'missing.safetensors' not found",
        ),
        (
            'factory = "netsf.tiny:build"\nweights = "w.safetensors"',
            "corrupt",
            "not a valid safetensors file",
        ),
        ('factory = "netsf.tiny:build"\nweights = "w.pt"', "corrupt-pt", "cannot be read"),
        (
            'factory = "netsf.nope:build"',
            None,
            "cannot import factory 'netsf.nope:build'.*ModuleNotFoundError",
        ),
        ('factory = "netsf.tiny:missing"', None, "cannot import factory.*AttributeError"),
        ('factory = "netsf.tiny:broken"', None, "factory 'netsf.tiny:broken' failed.*no GPU here"),
        ('factory = "netsf.tiny:NOT_CALLABLE"', None, "is not callable"),
        (
            'factory = "netsf.tiny:build"\nweights = "w.safetensors"',
            "mismatch",
            r"do not fit.*shape mismatch 0\.weight",
        ),
        (
            'factory = "netsf.tiny:build"\nweights = "w.safetensors"',
            "missing-key",
            r"do not fit.*missing 5\.bias",
        ),
        (
            'factory = "netsf.tiny:build"\nweights = "w.pt"',
            "not-state-dict",
            "does not hold a state dict",
        ),
        ('factory = "netsf.tiny:build"\nweights = "w.onnx"', "onnx", "unknown format '.onnx'"),
        (
            'lucent = "inceptionv1"',
            None,
            "needs a local weights file.*inception5h.pth.*set weights",
        ),
        ('lucent = "inceptionv9"', None, "lucent has no model 'inceptionv9'"),
    ],
)
def test_bad_inputs_are_one_line_errors_at_the_model_table(
    tmp_path: Path, table: str, setup: str | None, pattern: str
) -> None:
    site = make_site(tmp_path, f"[models.x]\n{table}\n", module="netsf")
    state = tiny_state(site, "netsf")
    if setup == "corrupt":
        (site / "w.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    elif setup == "corrupt-pt":
        (site / "w.pt").write_bytes(b"PK\x03\x04 truncated zip")
    elif setup == "mismatch":
        state["0.weight"] = torch.zeros(8, 3, 5, 5)
        save_file(state, str(site / "w.safetensors"))
    elif setup == "missing-key":
        del state["5.bias"]
        save_file(state, str(site / "w.safetensors"))
    elif setup == "not-state-dict":
        torch.save([1, 2, 3], site / "w.pt")
    elif setup == "onnx":
        (site / "w.onnx").write_bytes(b"onnx")
    err = error_of(site, "x")
    assert err.file == "circuitpress.toml" and err.line == 4
    assert err.hint
    assert "\n" not in err.format()
    import re

    assert re.search(pattern, err.format()), err.format()


def test_unknown_model_name(tmp_path: Path) -> None:
    site = make_site(tmp_path, '[models.alpha]\nfactory = "netsg.tiny:build"\n', module="netsg")
    with pytest.raises(UserError, match="unknown model 'alphq'.*did you mean 'alpha'"):
        ModelRegistry(load_config(site), "cpu").get("alphq")


def test_checkpoint_wrapping_a_state_dict_is_accepted(tmp_path: Path) -> None:
    site = make_site(
        tmp_path, '[models.m]\nfactory = "netsh.tiny:build"\nweights = "ckpt.pt"\n', module="netsh"
    )
    state = tiny_state(site, "netsh")
    torch.save({"state_dict": state, "epoch": 3}, site / "ckpt.pt")
    model = ModelRegistry(load_config(site), "cpu").get("m")
    assert torch.equal(model.module.state_dict()["5.bias"], state["5.bias"])


def test_a_second_site_with_the_same_module_name_gets_its_own(tmp_path: Path) -> None:
    one = make_site(
        tmp_path / "one", '[models.m]\nfactory = "shared_nets.tiny:build"\n', module="shared_nets"
    )
    two = make_site(
        tmp_path / "two", '[models.m]\nfactory = "shared_nets.tiny:build"\n', module="shared_nets"
    )
    (two / "shared_nets" / "tiny.py").write_text(NET.replace("nn.Linear(4, 2)", "nn.Linear(4, 5)"))
    assert ModelRegistry(load_config(one), "cpu").get("m").module[5].out_features == 2
    assert ModelRegistry(load_config(two), "cpu").get("m").module[5].out_features == 5


def test_model_info_and_hooks_are_removed(tmp_path: Path) -> None:
    site = make_site(tmp_path, '[models.m]\nfactory = "netsi.tiny:build"\n', module="netsi")
    registry = ModelRegistry(load_config(site), "cpu")

    class Env:
        models = registry
        device = registry.device

    req = ModelInfoRequest(model="m")
    data = compute_group([req], Env())[req].data
    layers = {layer["name"]: layer for layer in data["layers"]}
    assert {k: layers["0"][k] for k in ("name", "type", "shape", "units", "kernel_layer")} == {
        "name": "0",
        "type": "Conv2d",
        "shape": [8, 64, 64],
        "units": 8,
        "kernel_layer": True,
    }
    assert layers["0"]["input_layer"] is None and layers["2.0"]["input_layer"] == "0"
    assert layers["2.0"]["shape"] == [4, 64, 64] and layers["5"]["shape"] == [2]
    # Kernel layers (conv, linear) are those whose weights the weights analysis reads.
    assert [n for n, layer in layers.items() if layer["kernel_layer"]] == ["0", "2.0", "5"]
    # Every module output is a layer, containers included (issue 10).
    assert layers["2"]["shape"] == [4, 64, 64] and layers["2"]["kernel_layer"] is False
    assert data["input_shape"] == [3, 64, 64] and data["params"] == 8 * 27 + 8 + 4 * 72 + 4 + 10
    assert "procedural 'shapes'" in data["dataset"]
    assert all(not m._forward_hooks for m in registry.get("m").module.modules())


def test_devices() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="'cuda' is not available"):
            resolve_device("cuda")


@pytest.mark.slow
def test_lucent_inceptionv1_from_a_local_file(tmp_path: Path) -> None:
    from lucent.modelzoo import inceptionv1

    site = tmp_path
    (site / "circuitpress.toml").write_text(
        '[site]\ntitle = "t"\n'
        '[models.inc]\nlucent = "inceptionv1"\nweights = "inception.safetensors"\n'
    )
    torch.manual_seed(0)
    save_file(inceptionv1(pretrained=False).state_dict(), str(site / "inception.safetensors"))
    model = ModelRegistry(load_config(site), "cpu").get("inc")
    assert model.preprocessing.input_size == (224, 224) and model.preprocessing.input_range == (
        -117.0,
        138.0,
    )
    assert isinstance(model.layer("mixed4a"), torch.nn.Module)
