"""Fingerprints: stable, sensitive to what matters, computed without importing torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from circuitpress.analysis.models import fingerprint as fp
from circuitpress.config import load_config
from circuitpress.errors import UserError


def site(root: Path, models: str, sample: int = 64) -> Path:
    (root / "circuitpress.toml").write_text(
        f'[site]\ntitle = "t"\n\n{models}\n[build]\ndataset_sample = {sample}\n'
    )
    return root


def fingerprints(root: Path, name: str = "m") -> tuple[str, str]:
    config = load_config(root)
    model = config.models[name]
    return fp.model_fingerprint(model, config), fp.dataset_fingerprint(model, config)


def test_factory_weights_fingerprint_follows_the_bytes(tmp_path: Path) -> None:
    site(tmp_path, '[models.m]\nfactory = "nets:build"\nweights = "w.safetensors"\n')
    (tmp_path / "nets.py").write_text("def build(): ...\n")
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"\x00" * 1000)
    first = fingerprints(tmp_path)
    assert fingerprints(tmp_path) == first  # stable
    weights.write_bytes(b"\x00" * 999 + b"\x01")
    os.utime(weights, ns=(1, 1))  # even with an old mtime the size/mtime key changed
    second = fingerprints(tmp_path)
    assert second[0] != first[0] and second[1] == first[1]
    (tmp_path / "nets.py").write_text("def build(): return 1\n")  # the architecture's source
    assert fingerprints(tmp_path)[0] != second[0]


def test_preprocessing_and_source_enter_the_model_fingerprint(tmp_path: Path) -> None:
    site(
        tmp_path,
        '[models.m]\nfactory = "nets:build"\n\n'
        '[models.n]\nfactory = "nets:build"\nmean = [0.4, 0.4, 0.4]\n',
    )
    config = load_config(tmp_path)
    a = fp.model_fingerprint(config.models["m"], config)
    b = fp.model_fingerprint(config.models["n"], config)
    assert a != b


def test_procedural_dataset_fingerprint(tmp_path: Path) -> None:
    site(tmp_path, '[models.m]\nfactory = "nets:build"\n', sample=64)
    a = fingerprints(tmp_path)[1]
    site(tmp_path, '[models.m]\nfactory = "nets:build"\n', sample=128)
    b = fingerprints(tmp_path)[1]
    site(tmp_path, '[models.m]\nfactory = "nets:build"\ninput_size = [32, 32]\n', sample=128)
    c = fingerprints(tmp_path)[1]
    assert len({a, b, c}) == 3


def test_generator_version_enters_the_dataset_fingerprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from circuitpress.analysis.models import procedural

    site(tmp_path, '[models.m]\nfactory = "nets:build"\n')
    before = fingerprints(tmp_path)[1]
    monkeypatch.setattr(procedural, "GENERATOR_VERSION", "999")
    assert fingerprints(tmp_path)[1] != before


def test_folder_dataset_fingerprint_follows_names_and_contents(tmp_path: Path) -> None:
    site(tmp_path, '[models.m]\nfactory = "nets:build"\ndataset = "imgs"\n')
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"one")
    (folder / "notes.txt").write_text("ignored")
    first = fingerprints(tmp_path)[1]
    (folder / "notes.txt").write_text("still ignored")
    assert fingerprints(tmp_path)[1] == first
    (folder / "a.png").write_bytes(b"two")
    second = fingerprints(tmp_path)[1]
    (folder / "a.png").rename(folder / "b.png")
    third = fingerprints(tmp_path)[1]
    assert len({first, second, third}) == 3


def test_missing_weights_is_a_user_error_at_the_model_line(tmp_path: Path) -> None:
    site(tmp_path, '[models.m]\nfactory = "nets:build"\nweights = "gone.safetensors"\n')
    with pytest.raises(UserError) as info:
        fingerprints(tmp_path)
    assert info.value.file == "circuitpress.toml" and info.value.line == 4
    assert "gone.safetensors" in info.value.message


def test_lucent_without_weights_and_unknown_zoo_and_bad_dataset(tmp_path: Path) -> None:
    site(tmp_path, '[models.m]\nlucent = "inceptionv1"\n')
    with pytest.raises(UserError, match="local weights file"):
        fingerprints(tmp_path)
    site(tmp_path, '[models.m]\nzoo = "shapes-q"\n')
    with pytest.raises(UserError, match="unknown zoo model"):
        fingerprints(tmp_path)
    site(tmp_path, '[models.m]\nfactory = "nets:build"\ndataset = "nowhere/images"\n')
    with pytest.raises(UserError, match="neither a procedural dataset nor a folder"):
        fingerprints(tmp_path)


def test_zoo_fingerprint_uses_the_shipped_weights(tmp_path: Path) -> None:
    from circuitpress.analysis.models.zoo import weights_path

    if not weights_path("shapes-a").is_file():
        pytest.skip("zoo weights not trained yet")
    site(tmp_path, '[models.a]\nzoo = "shapes-a"\n\n[models.b]\nzoo = "shapes-b"\n')
    a, da = fingerprints(tmp_path, "a")
    b, db = fingerprints(tmp_path, "b")
    assert a != b and da == db


def test_fingerprint_module_does_not_import_torch(tmp_path: Path) -> None:
    site(tmp_path, '[models.m]\nfactory = "nets:build"\n')
    code = (
        "import sys; from circuitpress.config import load_config; "
        "from circuitpress.analysis.models.fingerprint import "
        "model_fingerprint, dataset_fingerprint; "
        f"c = load_config({str(tmp_path)!r}); m = c.models['m']; "
        "model_fingerprint(m, c); dataset_fingerprint(m, c); "
        "print('torch' in sys.modules, 'lucent' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
