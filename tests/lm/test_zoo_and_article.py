"""The LM zoo: shipped weights hold induction heads (the control does not), training is
reproducible, loading makes no network call, and the example article's claims hold."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import example_config

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "circuitpress" / "analysis" / "lm" / "weights"

SCORES = """
import json, socket, sys
def refuse(*args, **kwargs):
    raise OSError("network access during an offline load")
socket.socket.connect = refuse
socket.create_connection = refuse
from circuitpress.config import load_config
from circuitpress.analysis.engine import compute
from circuitpress.requests import HeadScoresRequest
config = load_config(sys.argv[1])
requests = [HeadScoresRequest(name) for name in config.models]
results = compute(requests, config, device="cpu")
print(json.dumps({r.model: results[r].data["scores"] for r in requests}))
"""


def test_every_zoo_model_ships_its_folder_and_record():
    from circuitpress.analysis.lm.sources import LM_ZOO

    for name in LM_ZOO:
        folder = WEIGHTS / name
        for file in ("config.json", "model.safetensors", "tokenizer.json"):
            assert (folder / file).is_file(), f"{name}: {file}"
        record = json.loads((WEIGHTS / f"{name}.json").read_text())
        digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
        assert record["sha256"] == digest


@pytest.mark.slow
def test_two_layer_models_have_induction_heads_and_the_control_none(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "circuitpress.toml").write_text(
        "".join(
            f'[models.{n}]\nzoo = "{n}"\n' for n in ("induction-2l", "induction-2l-b", "attn-1l")
        )
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": ""}
    out = subprocess.run(
        [sys.executable, "-c", SCORES, str(site)], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr[-3000:]
    scores = json.loads(out.stdout.strip().splitlines()[-1])
    best = {m: max(max(row) for row in s["induction"]) for m, s in scores.items()}
    assert best["induction-2l"] > 0.4 and best["induction-2l-b"] > 0.4
    assert best["attn-1l"] < 0.15
    # The previous-token head the induction heads compose with sits in the first layer.
    assert max(scores["induction-2l"]["previous-token"][0]) > 0.6


@pytest.mark.slow
def test_same_seed_same_bytes_in_fresh_processes(tmp_path):
    digests = []
    for i, hashseed in enumerate(("1", "2")):
        out = tmp_path / f"run{i}"
        run = subprocess.run(
            [sys.executable, "-m", "circuitpress.analysis.lm.train", "attn-1l", "--steps", "20"]
            + ["--out", str(out)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": hashseed},
        )
        assert run.returncode == 0, run.stderr[-2000:]
        digests.append(json.loads((out / "attn-1l.json").read_text())["sha256"])
    assert digests[0] == digests[1]


@pytest.mark.slow
def test_the_induction_heads_article_builds_with_every_claim_held(tmp_path):
    site = tmp_path / "site"
    (site / "content").mkdir(parents=True)
    for file in ("circuitpress.toml", "references.bib", "baselines.py"):
        shutil.copy(ROOT / file, site / file)
    config = site / "circuitpress.toml"
    config.write_text(example_config(config.read_text(encoding="utf-8")), encoding="utf-8")
    shutil.copy(ROOT / "content" / "induction-heads.md", site / "content" / "induction-heads.md")
    out = subprocess.run(
        [sys.executable, "-m", "circuitpress", "build", str(site), "--strict", "--jobs", "1"]
        + ["--device", "cpu", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    html = (site / "_site" / "induction-heads" / "index.html").read_text(encoding="utf-8")
    source = (ROOT / "content" / "induction-heads.md").read_text(encoding="utf-8")
    claims = len(re.findall(r"^:::\{claim\}", source, flags=re.M))
    assert html.count('data-claim="held"') == claims and 'data-claim="failed"' not in html
    assert html.count('class="cp-attention"') == 2
    assert html.count('class="cp-heads"') == 4
    assert "data-activation=" in html and 'class="cp-comp-edge"' in html
    assert (site / "_site" / "units" / "induction-2l" / "blocks.1.attn" / "H1").is_dir()
