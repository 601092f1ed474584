"""The Ray executor against a real Ray cluster started by the test on loopback
(tests/ray/cluster.py: `ray start --head --node-ip-address 127.0.0.1 --num-cpus 2`, ended
afterwards even when a test fails): an atlas built on Ray writes the same files as a local
build, a worker killed mid-task is retried and the build succeeds, and a cluster that is
gone is one line and exit 1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import write_site

pytest.importorskip("ray")

from tests.ray.cluster import LOOPBACK_ENV, LoopbackCluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]

CONFIG = """\
[site]
title = "Atlas on Ray"
[models.shapes-a]
zoo = "shapes-a"
[build]
dataset_sample = 64
[atlas]
layers = ["shapes-a/conv1"]
"""


def _site(root: Path) -> Path:
    return write_site(
        root,
        {
            "circuitpress.toml": CONFIG,
            "content/a.md": "---\ntitle: A\n---\nThe atlas of {unit}`shapes-a/conv1:3`'s layer.\n",
        },
    )


def _build(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "circuitpress", "build", str(root), "--jobs", "1", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or {**os.environ, **LOOPBACK_ENV},
    )


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LoopbackCluster]:
    with LoopbackCluster(cpus=2) as running:
        yield running


@pytest.fixture(scope="module")
def local_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = _site(tmp_path_factory.mktemp("local") / "site")
    done = _build(root)
    out, err = done.communicate(timeout=1200)
    assert done.returncode == 0, err
    assert "on the local executor" in out
    return _files(root / "_site")


def test_atlas_on_ray_equals_local(
    cluster: LoopbackCluster, local_files: dict[str, bytes], tmp_path: Path
) -> None:
    root = _site(tmp_path / "site")
    done = _build(root, "--executor", "ray", "--ray-address", cluster.address, env=cluster.env)
    out, err = done.communicate(timeout=1200)
    assert done.returncode == 0, err
    assert "task(s) on the ray executor" in out, out
    files = _files(root / "_site")
    assert "atlas/shapes-a/conv1/index.html" in files and "atlas/index.html" in files
    assert sorted(files) == sorted(local_files)
    differ = [rel for rel in files if files[rel] != local_files[rel]]
    assert differ == []
    report = (root / ".circuitpress/build-report.json").read_text()
    assert '"executor": "ray"' in report


def test_killed_worker_is_retried(
    cluster: LoopbackCluster, local_files: dict[str, bytes], tmp_path: Path
) -> None:
    root = _site(tmp_path / "site")
    # "auto": the cluster `ray start` made on this machine (its address file).
    done = _build(root, "--executor", "ray", "--ray-address", "auto", env=cluster.env)
    killed = None
    deadline = time.monotonic() + 600
    while killed is None and done.poll() is None and time.monotonic() < deadline:
        workers = cluster.task_workers()
        if workers:
            time.sleep(1.0)  # mid-task, not as it starts
            workers = cluster.task_workers()
        if workers:
            killed = workers[0]
            os.kill(killed, 9)
        time.sleep(0.2)
    out, err = done.communicate(timeout=1200)
    assert killed is not None, "no task was seen running"
    assert done.returncode == 0, err
    assert _files(root / "_site") == local_files


def test_cluster_gone_is_one_line(tmp_path: Path) -> None:
    gone = LoopbackCluster(cpus=1).start()
    address = gone.address
    gone.stop()
    root = _site(tmp_path / "site")
    shutil.rmtree(root / "_site", ignore_errors=True)
    done = _build(root, "--executor", "ray", "--ray-address", address, "--quiet")
    out, err = done.communicate(timeout=300)
    assert done.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"circuitpress.toml:1: the Ray cluster at {address} is unreachable")
