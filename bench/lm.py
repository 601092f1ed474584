"""Token examples of every neuron of one MLP layer of an LM zoo model, against baselines.

Over the same token windows of the built-in corpus (the model's dataset sample), measured in one
run, the repeats interleaved:

- circuitpress: `lm_examples.top_examples` with one ExamplesRequest per neuron (k = 8): one
  forward pass per batch through TransformerLens hooks, every neuron's running top-k windows
  with their activations along the window (what the figures show);
- TransformerLens loop: what a user writes: `run_with_cache` per batch, the layer's
  activations, each window's maximum per neuron, a running top-k by hand (indices only);
- bare: `bridge(tokens)` per batch, the plain forward pass that returns logits.

Prints tokens per second of each and their fraction of the bare forward pass. Times are CPU
seconds of this process with a fixed torch thread count (robust to a busy machine).
Usage: python bench/lm.py [--model induction-2l] [--layer blocks.1.mlp.hook_post] [--repeats 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from circuitpress.analysis.lm.loader import load
from circuitpress.analysis.methods.lm_examples import top_examples
from circuitpress.config import load_config
from circuitpress.requests import ExamplesRequest, UnitRef

BATCH = 64


def setup(model: str, sample: int):  # noqa: ANN201 - a bench script
    site = Path(tempfile.mkdtemp()) / "site"
    site.mkdir()
    (site / "circuitpress.toml").write_text(
        f'[models.m]\nzoo = "{model}"\n[build]\ndataset_sample = {sample}\n'
    )
    config = load_config(site)
    return load(config.models["m"], config, torch.device("cpu"))


def bare(lm, tokens: np.ndarray) -> None:
    with torch.no_grad():
        for start in range(0, len(tokens), BATCH):
            lm.bridge(torch.from_numpy(tokens[start : start + BATCH]))


def user_loop(lm, tokens: np.ndarray, lengths: np.ndarray, layer: str, k: int) -> torch.Tensor:
    best_s = best_i = None
    with torch.no_grad():
        for start in range(0, len(tokens), BATCH):
            x = torch.from_numpy(tokens[start : start + BATCH])
            _, cache = lm.bridge.run_with_cache(x)
            acts = cache[layer]  # [B, T, C]
            mask = (
                torch.arange(x.shape[1])[None]
                < torch.from_numpy(lengths[start : start + BATCH])[:, None]
            )
            mask[:, 0] = False
            s = acts.masked_fill(~mask[..., None], float("-inf")).max(dim=1).values  # [B, C]
            i = torch.arange(start, start + len(x))[:, None].expand_as(s)
            if best_s is not None:
                s, i = torch.cat([best_s, s]), torch.cat([best_i, i])
            keep = torch.topk(s, min(k, len(s)), dim=0).indices
            best_s, best_i = s.gather(0, keep), i.gather(0, keep)
    return best_i


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="induction-2l")
    ap.add_argument("--layer", default="blocks.1.mlp.hook_post")
    ap.add_argument("--windows", type=int, default=2048)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lm = setup(args.model, args.windows)
    tokens, lengths = lm.windows()
    units = int(lm.bridge.cfg.d_mlp) if "mlp.hook_" in args.layer else int(lm.bridge.cfg.d_model)
    requests = [
        ExamplesRequest(UnitRef("m", args.layer, ((c, 1.0),)), k=args.k) for c in range(units)
    ]
    n_tokens = int(lengths.sum())
    # Same answer first: the windows circuitpress picks are the loop's.
    ours = top_examples(lm, requests, tokens, lengths)
    theirs = user_loop(lm, tokens, lengths, args.layer, args.k)
    agree = np.mean(
        [ours[r].data["indices"] == theirs[:, c].tolist() for c, r in enumerate(requests)]
    )
    runs = {
        "bare": lambda: bare(lm, tokens),
        "circuitpress": lambda: top_examples(lm, requests, tokens, lengths),
        "TransformerLens loop": lambda: user_loop(lm, tokens, lengths, args.layer, args.k),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for fn in runs.values():  # warm-up
        fn()
    for _ in range(args.repeats):
        for name, fn in runs.items():
            t = time.process_time()
            fn()
            times[name].append(time.process_time() - t)
    print(
        f"{args.model} {args.layer}: {units} neurons, k={args.k}, {len(tokens)} windows, "
        f"{n_tokens} tokens, batch {BATCH}, {args.threads} thread(s), {args.repeats} repeats; "
        f"torch {torch.__version__}, Python {platform.python_version()}"
    )
    print(f"same top-{args.k} windows as the loop for {agree:.0%} of the neurons")
    base = statistics.median(times["bare"])
    for name, values in times.items():
        med = statistics.median(values)
        print(
            f"{name:<22} {med:7.3f} CPU s (median; min {min(values):.3f})  "
            f"{n_tokens / med:10.0f} tokens/s  {base / med:5.2f}x of the bare forward pass"
        )


if __name__ == "__main__":
    main()
