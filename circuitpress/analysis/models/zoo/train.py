"""Train zoo models reproducibly on the procedural dataset.

    python -m circuitpress.analysis.models.zoo.train shapes-a [shapes-b ...] [--out DIR]
    python -m circuitpress.analysis.models.zoo.train shapes-a --check     # retrain, compare sha256

Reproducible by construction: seeded init and shuffling, deterministic algorithms, a fixed
thread count, data generated from fixed seeds. Same seed -> byte-identical weights on CPU.
Writes NAME.safetensors and a JSON record (accuracy on fresh held-out images, parameters,
training seconds, the command, torch version, sha256, conv1 orientation selectivity).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import tempfile
import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file as save_numpy
from torch.nn import functional as F

from circuitpress.analysis.models.capture import capture
from circuitpress.analysis.models.procedural import HELDOUT_SEED, make_dataset
from circuitpress.analysis.models.zoo import WEIGHTS_DIR
from circuitpress.analysis.models.zoo.models import (
    ZOO,
    ZOO_PREPROCESSING,
    ZooSpec,
    build_architecture,
    get_spec,
)
from circuitpress.analysis.models.zoo.selectivity import (
    CUBE_DIAGONALS,
    orientation_tuning,
    selectivity_ratios,
)

THREADS = 2
HELDOUT_IMAGES = 2000


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Zoo preprocessing: float NCHW in 0..1 -> normalised model input."""
    mean = torch.tensor(ZOO_PREPROCESSING.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(ZOO_PREPROCESSING.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


@lru_cache(maxsize=4)
def _images(dataset: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 NCHW and labels (cached: several models share one training set)."""
    images, labels, _ = make_dataset(dataset, n, seed)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)


def _as_input(batch: torch.Tensor) -> torch.Tensor:
    return normalize(batch.float() / 255.0)


@torch.no_grad()
def accuracy(
    model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> tuple[float, list[float]]:
    """Overall and per-class accuracy."""
    model.eval()
    preds = torch.cat(
        [model(_as_input(images[i : i + 256])).argmax(1) for i in range(0, len(images), 256)]
    )
    correct = preds == labels
    per_class = [float(correct[labels == c].float().mean()) for c in range(int(labels.max()) + 1)]
    return float(correct.float().mean()), per_class


def train(
    spec: ZooSpec, log: bool = True, threads: int = THREADS
) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """Train one model; returns its state dict and the training record.

    The weights are reproducible for a given seed and thread count."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    started = time.perf_counter()
    images, labels = _images(spec.dataset, spec.train_images, spec.train_seed)
    data_seconds = time.perf_counter() - started

    model = _build(spec)
    gen = torch.Generator().manual_seed(spec.seed)
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    steps_per_epoch = len(images) // spec.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=spec.lr, total_steps=spec.epochs * steps_per_epoch, pct_start=0.15
    )
    t0 = time.perf_counter()
    # relu1's output of the current batch, for the penalty; the hook goes even if training fails
    with capture(model, ["relu1"]) as cap:
        for epoch in range(spec.epochs):
            model.train()
            order = torch.randperm(len(images), generator=gen)
            total = 0.0
            for step in range(steps_per_epoch):
                idx = order[step * spec.batch_size : (step + 1) * spec.batch_size]
                logits = cap.forward(_as_input(images[idx]))
                loss = (
                    F.cross_entropy(logits, labels[idx])
                    + spec.conv1_sparsity * cap.outputs["relu1"].mean()
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach())
            if log:
                print(
                    f"{spec.name}: epoch {epoch + 1}/{spec.epochs} "
                    f"loss {total / steps_per_epoch:.4f} ({time.perf_counter() - t0:.0f}s)",
                    flush=True,
                )
    train_seconds = time.perf_counter() - t0

    model.eval()
    held_images, held_labels = _images(spec.dataset, HELDOUT_IMAGES, HELDOUT_SEED)
    acc, per_class = accuracy(model, held_images, held_labels)
    ratios = selectivity_ratios(orientation_tuning(model, normalize))
    colour_ratios = selectivity_ratios(orientation_tuning(model, normalize, colors=CUBE_DIAGONALS))
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    record: dict[str, object] = {
        "name": spec.name,
        "seed": spec.seed,
        "widths": list(spec.widths),
        "classes": list(spec.classes),
        "heldout_accuracy": round(acc, 4),
        "heldout_images": HELDOUT_IMAGES,
        "heldout_seed": HELDOUT_SEED,
        # A short run may see no image of the last classes: zip stops at the shorter list.
        "per_class_accuracy": {
            c: round(a, 4) for c, a in zip(spec.classes, per_class, strict=False)
        },
        "conv1_orientation_selective": round(float((ratios >= 2.0).mean()), 4),
        "conv1_selectivity_ratios": [round(float(r), 3) for r in ratios],
        "conv1_orientation_selective_best_colour": round(float((colour_ratios >= 2.0).mean()), 4),
        "params": int(sum(p.numel() for p in model.parameters())),
        "conv1_sparsity": spec.conv1_sparsity,
        "train_images": spec.train_images,
        "epochs": spec.epochs,
        "training_seconds": round(train_seconds, 1),
        "data_seconds": round(data_seconds, 1),
        "threads": threads,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    if log:
        print(
            f"{spec.name}: held-out accuracy {acc:.4f}, conv1 orientation-selective "
            f"{record['conv1_orientation_selective']:.2f}, {train_seconds:.0f}s",
            flush=True,
        )
    return state, record


def _build(spec: ZooSpec) -> torch.nn.Module:
    # Seeded inside: the same initialisation as models.build_model(spec.name).
    return build_architecture(spec)


def save(
    state: dict[str, torch.Tensor], record: dict[str, object], out: Path, command: str
) -> Path:
    """Write NAME.safetensors and NAME.json into `out`; returns the weights path."""
    out.mkdir(parents=True, exist_ok=True)
    name = str(record["name"])
    path = out / f"{name}.safetensors"
    # Identical weights must give an identical file. So: no timestamps; the NumPy writer, because
    # safetensors.torch orders tensors by Python's per-process string hashing; and a single
    # metadata entry, because safetensors keeps metadata in a Rust HashMap, whose order is
    # randomised per process (two entries came out in either order).
    save_numpy(
        {k: v.detach().cpu().numpy() for k, v in state.items()},
        str(path),
        metadata={"circuitpress_zoo": f"{name} v1"},
    )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    full = {**record, "command": command, "sha256": digest, "bytes": path.stat().st_size}
    (out / f"{name}.json").write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m circuitpress.analysis.models.zoo.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    names = ", ".join(sorted(ZOO))
    parser.add_argument(
        "names", nargs="+", choices=sorted(ZOO), metavar="NAME", help=f"one of {names}"
    )
    parser.add_argument(
        "--out", type=Path, default=WEIGHTS_DIR, help="output folder (default: the shipped weights)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="retrain into a temporary folder and compare sha256 with the shipped record",
    )
    parser.add_argument(
        "--images", type=int, help="override the number of training images (quick runs)"
    )
    parser.add_argument("--epochs", type=int, help="override the number of epochs (quick runs)")
    parser.add_argument(
        "--threads",
        type=int,
        default=THREADS,
        help=f"torch CPU threads (default {THREADS}, as the shipped weights were trained)",
    )
    args = parser.parse_args(argv)
    status = 0
    for name in args.names:
        spec = get_spec(name)
        if args.images:
            spec = replace(spec, train_images=args.images)
        if args.epochs:
            spec = replace(spec, epochs=args.epochs)
        command = "python -m circuitpress.analysis.models.zoo.train " + name
        if args.check:
            shipped = json.loads((WEIGHTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
            state, record = train(spec, threads=args.threads)
            with tempfile.TemporaryDirectory() as tmp:
                save(state, record, Path(tmp), command)
                fresh = json.loads((Path(tmp) / f"{name}.json").read_text(encoding="utf-8"))
            same = fresh["sha256"] == shipped["sha256"]
            print(
                f"{name}: retrained sha256 {fresh['sha256'][:16]} "
                f"vs shipped {shipped['sha256'][:16]}: " + ("IDENTICAL" if same else "DIFFERENT"),
                flush=True,
            )
            status |= 0 if same else 1
        else:
            state, record = train(spec, threads=args.threads)
            path = save(state, record, args.out, command)
            print(f"{name}: wrote {path}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
