from pathlib import Path

import pytest

from circuitpress.config import base_path_of, load_config
from circuitpress.errors import UserError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "circuitpress.toml").write_text(text)
    return tmp_path


def test_full_config(tmp_path):
    site = write(
        tmp_path,
        """
[site]
title = "Notes"
base_url = "https://example.org/notes"
authors = ["Ada", {name = "Bo", affiliation = "Lab", url = "https://bo.example"}]

[models.shapes-a]
zoo = "shapes-a"

[models.mine]
factory = "nets:build"
weights = "weights/mine.safetensors"
dataset = "data/images"
mean = [0.5, 0.5, 0.5]
std = [0.25, 0.25, 0.25]

[build]
device = "cpu"
""",
    )
    cfg = load_config(site)
    assert cfg.site.title == "Notes"
    assert cfg.base_path == "/notes/"
    assert [a.name for a in cfg.site.authors] == ["Ada", "Bo"]
    assert cfg.site.authors[1].affiliation == "Lab"
    assert cfg.models["shapes-a"].source == "zoo:shapes-a"
    mine = cfg.models["mine"]
    assert mine.weights == (site / "weights/mine.safetensors").resolve()
    assert mine.dataset == str((site / "data/images").resolve())
    assert mine.preprocessing.mean == (0.5, 0.5, 0.5)
    assert mine.line == 10
    assert cfg.build.device == "cpu"


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ('[site]\ntitle = "x"\ntitel = "y"\n', 3, "unknown key 'titel'"),
        ("[site]\ntitle = \n", 2, "invalid TOML"),
        ('[models.a]\nzoo = "x"\nlucent = "y"\n', 1, "exactly one of zoo, lucent, factory"),
        ('[models.a]\nfactory = "nope"\n', 2, "must be 'module:callable'"),
        ('[build]\ndevice = "gpu"\n', 2, "unknown device 'gpu'"),
        ("[build]\njobs = -1\n", 2, "'jobs' must be a whole number"),
        ("[site]\ntitle = 3\n", 2, "'title' must be a string"),
        ('[models.a]\nzoo = "x"\nmean = [1, 2]\n', 3, "'mean' must be a list of 3 numbers"),
    ],
)
def test_config_errors_name_file_and_line(tmp_path, text, line, fragment):
    with pytest.raises(UserError) as info:
        load_config(write(tmp_path, text))
    err = info.value
    assert err.file == "circuitpress.toml"
    assert err.line == line, err.format()
    assert fragment in err.message
    assert "\n" not in err.format()


def test_did_you_mean_for_keys(tmp_path):
    with pytest.raises(UserError) as info:
        load_config(write(tmp_path, '[site]\nbase_ulr = "/"\n'))
    assert "did you mean 'base_url'" in info.value.format()


def test_missing_config(tmp_path):
    with pytest.raises(UserError) as info:
        load_config(tmp_path)
    assert "circuitpress new" in info.value.format()


@pytest.mark.parametrize(
    "url, path",
    [
        ("/", "/"),
        ("", "/"),
        ("https://x.org", "/"),
        ("https://x.org/a/b/", "/a/b/"),
        ("/proj", "/proj/"),
    ],
)
def test_base_path(url, path):
    assert base_path_of(url) == path


def test_analysis_threads_default_to_one_and_zero_means_one_per_core(tmp_path):
    from circuitpress.build.pipeline import _threads

    (tmp_path / "circuitpress.toml").write_text('[site]\ntitle = "t"\n')
    assert load_config(tmp_path).build.jobs == 1
    assert _threads(None, 1) == 1  # the default: one torch thread
    assert _threads(None, 0) is None  # [build] jobs = 0: torch's one per core
    assert _threads(4, 1) == 4 and _threads(0, 1) is None  # --jobs wins
