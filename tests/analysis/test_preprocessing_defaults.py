"""A partial preprocessing table keeps the model kind's other defaults; bad numbers are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from circuitpress.analysis.models.sources import default_preprocessing
from circuitpress.cli import cli
from circuitpress.config import load_config


def models_of(tmp_path: Path, tables: str) -> dict[str, object]:
    (tmp_path / "circuitpress.toml").write_text('[site]\ntitle = "x"\n' + tables, "utf-8")
    return dict(load_config(tmp_path).models)


def test_declaring_only_input_size_keeps_lucents_pixel_range(tmp_path: Path) -> None:
    models = models_of(
        tmp_path,
        '[models.inception]\nlucent = "inceptionv1"\nweights = "w.pth"\ninput_size = [128, 128]\n'
        '[models.resnet]\nlucent = "resnet50"\nweights = "r.pth"\nstd = [0.5, 0.5, 0.5]\n'
        '[models.zoo]\nzoo = "shapes-a"\ninput_range = [0.0, 255.0]\n'
        '[models.mine]\nfactory = "m:build"\ninput_size = [32, 32]\n',
    )
    inception = default_preprocessing(models["inception"])  # type: ignore[arg-type]
    assert inception.input_size == (128, 128) and inception.input_range == (-117.0, 138.0)
    resnet = default_preprocessing(models["resnet"])  # type: ignore[arg-type]
    assert resnet.std == (0.5, 0.5, 0.5) and resnet.mean == (0.485, 0.456, 0.406)
    assert resnet.input_size == (224, 224)
    zoo = default_preprocessing(models["zoo"])  # type: ignore[arg-type]
    assert zoo.input_range == (0.0, 255.0) and zoo.mean == (0.5, 0.5, 0.5)
    mine = default_preprocessing(models["mine"])  # type: ignore[arg-type]
    assert mine.input_size == (32, 32) and mine.input_range == (0.0, 1.0)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("std = [0.5, 0.0, 0.5]", "'std' must be positive"),
        ("input_range = [1.0, 1.0]", "'input_range' is empty"),
        ("mean = [nan, 0.0, 0.0]", "'mean' must be finite"),
    ],
)
def test_bad_preprocessing_is_one_located_line(tmp_path: Path, line: str, expected: str) -> None:
    (tmp_path / "circuitpress.toml").write_text(
        f'[site]\ntitle = "x"\n[models.m]\nzoo = "shapes-a"\n{line}\n', "utf-8"
    )
    result = CliRunner().invoke(cli, ["check", str(tmp_path)])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("circuitpress.toml:5: ") and expected in lines[0]
