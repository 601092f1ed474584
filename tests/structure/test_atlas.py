"""The atlas pages, built locally without computing (check mode: placeholders for figures),
and the atlas' config and layer checks. The Ray executor's tests are in tests/ray/."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from circuitpress.build.options import BuildOptions
from circuitpress.build.pipeline import SiteBuild
from circuitpress.cli import cli
from circuitpress.config import AtlasLayer, parse_config
from circuitpress.errors import UserError
from circuitpress.requests import UnitRef
from circuitpress.structure.atlas import atlas_path, atlas_units
from tests.conftest import write_site

CONFIG = """\
[site]
title = "Atlas"
[models.shapes-a]
zoo = "shapes-a"
[build]
dataset_sample = 64
[atlas]
layers = [
  "shapes-a/conv1",
  "shapes-a/conv2",
]
"""


def _site(tmp_path: Path, config: str = CONFIG) -> Path:
    return write_site(
        tmp_path / "site",
        {
            "circuitpress.toml": config,
            "content/a.md": "---\ntitle: A\n---\nSee {unit}`shapes-a/conv1:3`.\n",
        },
    )


def _in_memory(root: Path) -> SiteBuild:
    build = SiteBuild(root, BuildOptions(write=False, compute=False))
    build.run()
    return build


def test_atlas_pages_link_every_unit(tmp_path: Path) -> None:
    build = _in_memory(_site(tmp_path))
    files = build.writer.files
    layer = files["atlas/shapes-a/conv2/index.html"].decode()
    links = re.findall(r'href="/units/shapes-a/conv2/(\d+)/"', layer)
    assert links == [str(c) for c in range(32)]  # every unit, in channel order
    index = files["atlas/index.html"].decode()
    assert 'href="/atlas/shapes-a/conv1/"' in index and 'href="/atlas/shapes-a/conv2/"' in index
    assert "16 units" in index and "32 units" in index
    # Every unit of an atlas layer has a page, the mentioned one too.
    for c in range(32):
        assert f"units/shapes-a/conv2/{c}/index.html" in files
    assert "units/shapes-a/conv1/3/index.html" in files
    # A unit page of an atlas layer links to the layer's atlas page.
    page = files["units/shapes-a/conv2/5/index.html"].decode()
    assert '<a href="/atlas/shapes-a/conv2/">every unit of shapes-a/conv2</a>' in page
    # Nothing computed: the figures are placeholders and the layer page says so.
    assert "Computing the feature visualizations of 32 unit(s)" in layer
    assert "atlas/shapes-a/conv1/index.html" in build.writer.paths()
    # The front page leads to the atlas.
    assert '<a href="/atlas/">Atlas</a>' in files["index.html"].decode()


def test_atlas_units_from_facts() -> None:
    facts = {"m": {"conv": {"units": 3}, "flat": {"units": 0}}}
    got = atlas_units([AtlasLayer("m", "conv", 4)], facts)
    assert got[AtlasLayer("m", "conv", 4)] == [UnitRef("m", "conv", ((c, 1.0),)) for c in range(3)]
    with pytest.raises(UserError) as err:
        atlas_units([AtlasLayer("m", "cnov", 7)], facts)
    assert err.value.format() == (
        "circuitpress.toml:7: model 'm' has no layer 'cnov' with units (did you mean 'conv'?)"
    )
    with pytest.raises(UserError, match="unknown model 'n'"):
        atlas_units([AtlasLayer("n", "conv", 2)], facts)
    assert atlas_path("m", "conv") == "atlas/m/conv/"


def test_atlas_config_errors(tmp_path: Path) -> None:
    for text, message in [
        ('[atlas]\nlayers = ["conv1"]\n', "circuitpress.toml:2: atlas layer 'conv1' is not"),
        ("[atlas]\nlayers = 3\n", "circuitpress.toml:2: 'layers' must be a list"),
        ('[atlas]\nlayer = ["m/c"]\n', "circuitpress.toml:2: unknown key 'layer' in [atlas]"),
        ('[atlas]\nlayers = ["m/c", "m/c"]\n', "circuitpress.toml:2: atlas layer 'm/c' is listed"),
        ('[build]\nexecutor = "dask"\n', "circuitpress.toml:2: unknown executor 'dask'"),
        ('[build]\nray_address = "my laptop"\n', "circuitpress.toml:2: 'ray_address' 'my laptop'"),
    ]:
        with pytest.raises(UserError) as err:
            parse_config(text, tmp_path, tmp_path / "circuitpress.toml")
        assert err.value.format().startswith(message), err.value.format()
    config = parse_config(
        '[build]\nexecutor = "ray"\nray_address = "auto"\n', tmp_path, tmp_path / "x"
    )
    assert (config.build.executor, config.build.ray_address) == ("ray", "auto")


def test_atlas_unknown_layer_is_one_line(tmp_path: Path) -> None:
    root = _site(tmp_path, CONFIG.replace("shapes-a/conv2", "shapes-a/conv9"))
    result = CliRunner().invoke(cli, ["check", str(root)])
    assert result.exit_code == 1, result.output
    line = "circuitpress.toml:10: model 'shapes-a' has no layer 'conv9' with units"
    assert line in result.output
    assert "Traceback" not in result.output


def test_local_build_never_imports_ray(tmp_path: Path) -> None:
    """The local executor computes without Ray, even where Ray is installed."""
    root = _site(tmp_path)
    code = (
        "import sys\n"
        "from circuitpress.config import load_config\n"
        "from circuitpress.analysis.engine import compute\n"
        "from circuitpress.analysis.executors import make_executor\n"
        "from circuitpress.requests import ModelInfoRequest\n"
        "import circuitpress.commands.build, circuitpress.build.pipeline\n"
        f"config = load_config({str(root)!r})\n"
        "ex = make_executor('local', config)\n"
        "out = compute([ModelInfoRequest('shapes-a')], config, executor=ex)\n"
        "assert out and ex.tasks == 1, ex.tasks\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_unreachable_cluster_is_one_line(tmp_path: Path) -> None:
    """Nothing listens at the address: one line, exit 1, before any analysis (fast: the
    executor probes the address instead of letting Ray retry for minutes)."""
    pytest.importorskip("ray")
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = _site(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "circuitpress",
            "build",
            str(root),
            "--executor",
            "ray",
            "--ray-address",
            f"127.0.0.1:{port}",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"circuitpress.toml:1: the Ray cluster at 127.0.0.1:{port} is unreachable"
    )
