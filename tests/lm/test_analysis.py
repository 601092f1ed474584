"""The language-model analyses against TransformerLens itself, on the tiny seeded model."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from circuitpress.config import load_config


def loaded(lm_site, extra: str = ""):
    from circuitpress.analysis.lm.loader import load

    site = lm_site({}, extra=extra)
    config = load_config(site)
    return load(config.models["toy"], config, torch.device("cpu"))


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("induction", "induction_head"),
        ("previous-token", "previous_token_head"),
        ("duplicate-token", "duplicate_token_head"),
    ],
)
def test_head_scores_equal_transformer_lens_head_detector(lm_site, ours, theirs):
    from transformer_lens.head_detector import detect_head

    from circuitpress.analysis.methods.heads import head_scores

    model = loaded(lm_site)
    rng = random.Random(3)
    texts = ["".join(rng.choice("abcdefghij") for _ in range(12)) for _ in range(6)]
    # Our probes are token sequences; these come from text so head_detector tokenises the same.
    model._probes = np.array([model.encode(t + t) for t in texts])
    mine = head_scores(model, names=(ours,))[ours]
    reference = detect_head(model.bridge, [t + t for t in texts], theirs).numpy()
    np.testing.assert_allclose(mine, reference, rtol=1e-4, atol=1e-6)


def test_ablating_a_head_changes_only_its_output(lm_site):
    from circuitpress.analysis.lm import activations
    from circuitpress.requests import UnitRef

    model = loaded(lm_site)
    x = torch.from_numpy(model.probes()[:2])
    head = UnitRef("toy", "blocks.0.attn", ((1, 1.0),), head=True)
    _, plain = activations.run(model, x, ["blocks.0.attn"])
    logits, edited = activations.run(
        model, x, ["blocks.0.attn"], edits=activations.ablation_hooks(model, [head])
    )
    assert torch.all(edited["blocks.0.attn"][..., 1] == 0)
    torch.testing.assert_close(edited["blocks.0.attn"][..., 0], plain["blocks.0.attn"][..., 0])
    clean = model.bridge(x)
    assert logits is not None and not torch.allclose(logits, clean)
    # The hooks are gone after the pass: the next one is clean again.
    torch.testing.assert_close(model.bridge(x), clean)


def test_examples_are_the_top_windows_of_a_plain_run_with_cache_loop(lm_site):
    from circuitpress.analysis.methods.lm_examples import top_examples
    from circuitpress.requests import ExamplesRequest, UnitRef

    model = loaded(lm_site)
    tokens, lengths = model.windows()
    ref = UnitRef("toy", "blocks.0.mlp.hook_post", ((5, 1.0),))
    result = top_examples(model, [ExamplesRequest(ref, k=4)], tokens, lengths, batch=7)
    data = result[ExamplesRequest(ref, k=4)].data
    # A TransformerLens user's loop: run_with_cache, top-k by hand.
    _, cache = model.bridge.run_with_cache(torch.from_numpy(tokens))
    acts = cache["blocks.0.mlp.hook_post"][..., 5]
    mask = torch.arange(tokens.shape[1])[None] < torch.from_numpy(lengths)[:, None]
    mask[:, 0] = False
    best = acts.masked_fill(~mask, float("-inf")).max(dim=1).values
    expected = torch.topk(best, 4)
    assert data["indices"] == expected.indices.tolist()
    np.testing.assert_allclose(data["values"], expected.values.numpy(), rtol=1e-5)
    first = data["contexts"][0]
    assert first["activations"][first["focus"]] == pytest.approx(data["values"][0], rel=1e-5)


def test_text_datasets_folder_and_jsonl(lm_site):
    site = lm_site({}, extra='dataset = "data/text"')
    (site / "data" / "text" / "b").mkdir(parents=True)
    (site / "data" / "text" / "a.txt").write_text("hello there\n")
    (site / "data" / "text" / "b" / "c.txt").write_text("second document")
    from circuitpress.analysis.lm.sources import read_texts

    config = load_config(site)
    assert read_texts(config.models["toy"], config, 10) == ["hello there\n", "second document"]
    (site / "data" / "c.jsonl").write_text('{"text": "one"}\n\n{"text": "two", "id": 3}\n')
    (site / "circuitpress.toml").write_text(
        (site / "circuitpress.toml").read_text().replace("data/text", "data/c.jsonl")
    )
    config = load_config(site)
    assert read_texts(config.models["toy"], config, 10) == ["one", "two"]


BUILD = """
import json, sys
from circuitpress.build.pipeline import build_site, BuildOptions
report = build_site(sys.argv[1], BuildOptions(jobs=1))
heavy = [m for m in ("torch", "transformers", "transformer_lens") if m in sys.modules]
print(json.dumps({"heavy": heavy, "computed": report.computed, "cached": report.cached}))
"""

PAGE = """\
---
title: Cached
---

{prose} {{unit}}`toy/blocks.1.attn:H2`.

:::{{heads}} toy
:::

:::{{examples}} toy/blocks.0.mlp.hook_post:3
:k: 2
:::
"""


def _build(site: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", BUILD, str(site)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_cached_lm_build_imports_no_torch(lm_site):
    site = lm_site({"c.md": PAGE.format(prose="First.")})
    cold = _build(site)
    assert "torch" in cold["heavy"] and cold["computed"] > 0
    (site / "content" / "c.md").write_text(PAGE.format(prose="Second words."))
    warm = _build(site)
    assert warm["heavy"] == [] and warm["computed"] == 0 and warm["cached"] > 0


def test_one_forward_pass_per_batch_serves_every_examples_request(lm_site, monkeypatch):
    from circuitpress.analysis.lm import activations
    from circuitpress.analysis.methods import lm_examples
    from circuitpress.requests import ExamplesRequest, UnitRef

    model = loaded(lm_site)
    tokens, lengths = model.windows()
    calls: list[tuple[int, tuple[str, ...]]] = []
    real = activations.run

    def counted(model, x, layers=(), edits=(), logits=True):
        calls.append((len(x), tuple(layers)))
        return real(model, x, layers, edits, logits)

    monkeypatch.setattr(lm_examples.activations, "run", counted)
    requests = [
        ExamplesRequest(UnitRef("toy", "blocks.0.mlp.hook_post", ((c, 1.0),)), k=3)
        for c in range(5)
    ]
    requests.append(ExamplesRequest(UnitRef("toy", "blocks.1.attn", ((2, 1.0),), head=True)))
    requests.append(
        ExamplesRequest(UnitRef("toy", "blocks.1.hook_resid_post", ((1, 0.5), (4, -1.0))))
    )
    out = lm_examples.top_examples(model, requests, tokens, lengths, batch=16)
    batches = (len(tokens) + 15) // 16
    assert len(calls) == batches  # one pass per batch, whatever the requests
    assert all(set(layers) == {r.ref.layer for r in requests} for _, layers in calls)
    assert all(len(out[r].data["contexts"]) == r.k for r in requests)
