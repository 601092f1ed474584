"""Feature visualization throughput: the engine's one batched optimisation against lucent.

N channels (default 32) of one layer, the same image size, steps, parameterisation (lucent's
FFT spectrum + decorrelated colour + sigmoid), optimiser (Adam, lr 0.05), input normalisation
and transform magnitudes, four variants measured side by side in one process:

- engine: `featurevis.visualize`, all N units in one batch (one vectorised objective), with
  its default objective (the mean of the positive part of the map + 0.1 x the plain mean);
- engine, lucent's objective: the same call and speed path with `objective="mean"` in every
  request, the plain mean of the map, which is what `objectives.channel` maximises;
- lucent per channel: `render_vis` once per channel, `objectives.channel(layer, c)`;
- lucent batched: one `render_vis` with `param.image(size, batch=N)` and the sum of
  `objectives.channel(layer, c, batch=c)`: what a skilled lucent user writes.

The headline ratios are the default engine's against lucent's; the variant with lucent's
objective is the like-for-like check of image quality (and its time is shown too).

lucent gets `fixed_image_size=size` (it would upsample to 224 otherwise), the engine's
transform magnitudes (`TransformSpec.for_size(size).lucent_transforms()`), `show_image=False`,
`progress=False`, `thresholds=(steps,)`. `render_vis` hooks every module and never removes the
hooks: every lucent call here runs inside `lucent_hooks_removed`, which takes off exactly the
hooks it added, and drops the weight gradients it leaves. The engine freezes the weights (no
weight gradients); so do the lucent variants by default (`requires_grad_(False)`, one line a
lucent user can write): `--lucent-weight-grads` runs lucent as shipped, computing them.

Variants are interleaved (engine, engine with lucent's objective, per channel, batched,
engine, ...), each the best of the same number of repeats. On a CPU the headline is the
process's CPU seconds with a fixed number of torch threads (default 1): wall time on a shared
machine measures the neighbours as much as the code; wall time is shown too. On CUDA, wall
time.

Every variant's final images are measured with the same un-transformed forward pass: for
image i and its channel i, the mean of the positive part of the map (the engine objective's
main term), the plain mean (lucent's `channel` objective) and the peak, averaged over the N
images, so that equal steps cannot hide worse images. Each side is ahead on what it
maximises, so the like-for-like comparison is printed apart: the plain mean (and peak) of the
engine with lucent's objective against lucent's. Peak memory: each variant runs once more
in a fresh child process (`--memory-steps` steps, after the same warm-up), which reports its
resident set size when the run starts and the peak during the run (Linux: VmHWM from
/proc/self/status, reset to the current size before the run through /proc/self/clear_refs,
because the imports alone peak higher than a small run adds; elsewhere ru_maxrss, imports
included), or torch's CUDA peak on a GPU.

Models: `shapes` = the zoo's trained `shapes-a`, layer `conv2`, 64 px (its shipped weights, never
a random init); `inception` = lucent's InceptionV1 (`inceptionv1(pretrained=False)` with seeded
random weights: nothing is downloaded), layer `mixed4a`, 128 px, lucent's own input scaling
(`x * 255 - 117`, as `render_vis(preprocess=True)` does for InceptionV1).

Usage: python bench/featurevis.py [--model shapes|inception|both] [--steps N] [--repeats R]
       [--channels 32] [--threads 1] [--memory-steps 8] [--no-memory | --memory-only]
       [--lucent-weight-grads] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from circuitpress.analysis.methods.featurevis import TransformSpec, visualize
from circuitpress.analysis.models.capture import as_maps, capture
from circuitpress.requests import FeatureVisRequest, UnitRef

Normalize = Callable[[torch.Tensor], torch.Tensor]


def zoo_model(name: str) -> tuple[nn.Module, str]:
    """The zoo model with its shipped trained weights; an error if they are missing (a random
    init would benchmark a different model)."""
    from safetensors.torch import load_file

    from circuitpress.analysis.models.zoo import weights_path
    from circuitpress.analysis.models.zoo.models import build_model

    weights = weights_path(name)
    if not weights.is_file():
        raise SystemExit(f"{weights} is missing: the benchmark needs {name}'s trained weights")
    model = build_model(name)
    model.load_state_dict(load_file(str(weights)))
    return model.eval(), "trained weights"


def normalize(x: torch.Tensor) -> torch.Tensor:
    return (x - 0.5) / 0.25  # the zoo's preprocessing


def inception_normalize(x: torch.Tensor) -> torch.Tensor:
    return x * 255 - 117  # lucent's transform.preprocess_inceptionv1()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


WALL = False  # --clock wall (bench/examples.py): wall time on a CPU too


def set_wall(on: bool) -> None:
    global WALL
    WALL = on


def clock(device: torch.device) -> float:
    """CPU seconds of this process on a CPU run (robust to a busy machine), else wall time."""
    return time.perf_counter() if device.type == "cuda" or WALL else time.process_time()


@dataclass(frozen=True)
class Setup:
    name: str
    model: nn.Module
    what: str  # the model and its weights, for the report
    layer: str
    size: int
    normalize: Normalize


SHAPES_STEPS, INCEPTION_STEPS = 64, 16  # an inception step costs ~35x a shapes one


def load(name: str) -> Setup:
    if name == "shapes":
        model, weights = zoo_model("shapes-a")
        return Setup(name, model, f"shapes-a ({weights})", "conv2", 64, normalize)
    from lucent.modelzoo import inceptionv1

    torch.manual_seed(0)
    model = inceptionv1(pretrained=False).eval()
    what = "lucent InceptionV1 (seeded random weights)"
    return Setup(name, model, what, "mixed4a", 128, inception_normalize)


@contextmanager
def lucent_hooks_removed(model: nn.Module) -> Iterator[None]:
    """Inside: whatever lucent does. After: exactly the forward hooks it added are removed, and
    the weight gradients it accumulated (render_vis never zeroes them) are dropped."""
    before = {id(m): set(m._forward_hooks) for m in model.modules()}
    try:
        yield
    finally:
        for m in model.modules():
            for key in set(m._forward_hooks) - before.get(id(m), set()):
                del m._forward_hooks[key]
        for p in model.parameters():
            p.grad = None


@contextmanager
def weights_frozen(model: nn.Module, on: bool) -> Iterator[None]:
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        if on:
            for p, _ in flags:
                p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def run_engine(
    s: Setup,
    channels: int,
    steps: int,
    device: torch.device,
    frozen: bool = True,
    objective: str = FeatureVisRequest.objective,
) -> torch.Tensor:
    """The engine (it always freezes the weights: `frozen` is there for the common signature)."""
    requests = [
        FeatureVisRequest(
            UnitRef("m", s.layer, ((c, 1.0),)), size=s.size, steps=steps, objective=objective
        )
        for c in range(channels)
    ]
    results = visualize(s.model, s.layer, requests, normalize=s.normalize, device=device)
    images = np.concatenate([results[r].arrays["images"] for r in requests])
    return torch.from_numpy(images).permute(0, 3, 1, 2)


def _render(s: Setup, objective: object, batch: int, steps: int) -> np.ndarray:
    """One `render_vis` call (lucent runs on its own module-level device: the model's here)."""
    from lucent.optvis import param, render

    tf = TransformSpec.for_size(s.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (images,) = render.render_vis(
            s.model,
            objective,
            param_f=lambda: param.image(s.size, batch=batch, fft=True, decorrelate=True),
            transforms=tf.lucent_transforms() + [s.normalize],
            thresholds=(steps,),
            preprocess=False,  # s.normalize is lucent's own preprocessing for InceptionV1
            progress=False,
            show_image=False,
            fixed_image_size=s.size,
        )
    return images


def run_lucent_per_channel(
    s: Setup, channels: int, steps: int, device: torch.device, frozen: bool = False
) -> torch.Tensor:
    from lucent.optvis import objectives

    out = []
    with weights_frozen(s.model, frozen):
        for c in range(channels):
            with lucent_hooks_removed(s.model):
                out.append(_render(s, objectives.channel(s.layer, c), 1, steps))
    return torch.from_numpy(np.concatenate(out)).permute(0, 3, 1, 2)


def run_lucent_batched(
    s: Setup, channels: int, steps: int, device: torch.device, frozen: bool = False
) -> torch.Tensor:
    from lucent.optvis import objectives

    objective = objectives.Objective.sum(
        [objectives.channel(s.layer, c, batch=c) for c in range(channels)]
    )
    with weights_frozen(s.model, frozen), lucent_hooks_removed(s.model):
        images = _render(s, objective, channels, steps)
    return torch.from_numpy(images).permute(0, 3, 1, 2)


LUCENT_OBJECTIVE = "engine, lucent's objective"

VARIANTS = {
    "engine": run_engine,
    LUCENT_OBJECTIVE: partial(run_engine, objective="mean"),
    "lucent per channel": run_lucent_per_channel,
    "lucent batched": run_lucent_batched,
}


def measure(s: Setup, images: torch.Tensor, device: torch.device) -> dict[str, float]:
    """Image i's channel i at the layer, from the final images without transforms: the mean
    of its positive part, its mean and its peak, each averaged over the images."""
    index = torch.arange(len(images))
    with torch.no_grad(), capture(s.model, [s.layer]) as cap:
        (acts,) = cap.run(s.normalize(images.to(device).float()))
    maps = as_maps(acts)[index, index].flatten(1).cpu()
    return {
        "positive mean": float(maps.clamp_min(0).mean(dim=1).mean()),
        "mean": float(maps.mean(dim=1).mean()),
        "peak": float(maps.amax(dim=1).mean()),
    }


def timed(
    fn: Callable[[], torch.Tensor], device: torch.device
) -> tuple[float, float, torch.Tensor]:
    """(CPU or CUDA-wall seconds, wall seconds, result) of one call."""
    sync(device)
    c, w = clock(device), time.perf_counter()
    images = fn()
    sync(device)
    return clock(device) - c, time.perf_counter() - w, images


def call(
    s: Setup, variant: str, channels: int, steps: int, device: torch.device, frozen: bool
) -> torch.Tensor:
    torch.manual_seed(0)  # lucent draws its spectrum from torch's generator,
    np.random.seed(0)  # and its transforms from NumPy's
    return VARIANTS[variant](s, channels, steps, device, frozen)


def _rss_mib() -> tuple[float, float]:
    """(current, peak) resident set size of this process, from /proc/self/status."""
    fields = dict(
        line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def memory_child(args: argparse.Namespace) -> None:
    """One variant once, in this fresh process, after a warm-up: the resident memory when the
    run starts and its peak during the run, as JSON. Linux: the peak ("high water mark") is
    reset to the current size before the run (`/proc/self/clear_refs`), since the imports
    alone peak above what a small run adds; elsewhere ru_maxrss, which includes them."""
    import gc

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    s = load(args.model)
    s.model.to(device)
    frozen = not args.lucent_grads
    call(s, args.child, 2, 2, device, frozen)  # the same warm-up as the timed runs
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before, _ = _rss_mib()
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    call(s, args.child, args.channels, args.steps, device, frozen)
    try:
        _, peak = _rss_mib()
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cuda = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    print(json.dumps({"before_mib": before, "peak_mib": peak, "cuda_mib": cuda}))


def peak_memory(
    args: argparse.Namespace, model: str, variant: str, steps: int
) -> dict[str, float] | None:
    cmd = [sys.executable, __file__, "--child", variant, "--model", model, "--steps", str(steps)]
    cmd += ["--channels", str(args.channels), "--threads", str(args.threads)]
    cmd += ["--device", args.device] + (["--lucent-weight-grads"] if args.lucent_grads else [])
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        print(f"  memory child for {variant} failed:\n{done.stderr[-2000:]}")
        return None
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench(args: argparse.Namespace, name: str) -> None:
    device = torch.device(args.device)
    s = load(name)
    s.model.to(device)
    steps = args.steps or (SHAPES_STEPS if name == "shapes" else INCEPTION_STEPS)
    n = args.channels
    kind = "wall" if device.type == "cuda" or WALL else "CPU"
    print(f"\n== {s.what}, layer {s.layer}: {n} channels, {s.size} px, {steps} steps, {device}")
    from importlib.metadata import version

    print(
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, Python {platform.python_version()}, "
        f"torch {torch.__version__}, torch-lucent {version('torch-lucent')}, "
        f"kornia {version('kornia')}, {torch.get_num_threads()} thread(s), "
        f"{platform.processor() or platform.machine()}, best of {args.repeats} {kind} seconds; "
        f"lucent weights {'not frozen (as shipped)' if args.lucent_grads else 'frozen'}"
    )
    if args.memory_only:
        for variant in VARIANTS:
            m = peak_memory(args, name, variant, min(steps, args.memory_steps))
            if m:
                print(
                    f"  {variant:27s} RSS at start {m['before_mib']:.0f} MiB, peak "
                    f"{m['peak_mib']:.0f} MiB (+{m['peak_mib'] - m['before_mib']:.0f})"
                )
        return
    frozen = not args.lucent_grads
    for variant in VARIANTS:  # warm-up: imports, allocator, oneDNN kernels
        call(s, variant, 2, 2, device, frozen)
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    wall: dict[str, list[float]] = {v: [] for v in VARIANTS}
    acts: dict[str, dict[str, float]] = {}
    for r in range(args.repeats):  # interleaved, so a burst of load hits every variant alike
        for variant in VARIANTS:
            c, w, images = timed(partial(call, s, variant, n, steps, device, frozen), device)
            cpu[variant].append(c)
            wall[variant].append(w)
            if r == 0:  # every variant is seeded: each repeat makes the same images
                acts[variant] = measure(s, images, device)
            print(f"  repeat {r + 1} {variant:27s} {kind} {c:7.2f} s  wall {w:7.2f} s", flush=True)
    memory: dict[str, dict[str, float] | None] = {}
    if not args.no_memory:
        mem_steps = min(steps, args.memory_steps)
        for variant in VARIANTS:
            memory[variant] = peak_memory(args, name, variant, mem_steps)
    print(
        f"\n| variant | {kind} s (best) | {kind} s (all) | wall s (best) | features/s "
        "| positive mean | mean | peak | peak RSS MiB (+ over start) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for variant in VARIANTS:
        best = min(cpu[variant])
        m = memory.get(variant)
        mem = "" if not m else f"{m['peak_mib']:.0f} (+{m['peak_mib'] - m['before_mib']:.0f})"
        if m and m.get("cuda_mib") is not None:
            mem += f", CUDA {m['cuda_mib']:.0f}"
        a = acts[variant]
        runs = " / ".join(f"{t:.2f}" for t in cpu[variant])
        print(
            f"| {variant} | {best:.2f} | {runs} | {min(wall[variant]):.2f} | {n / best:.2f} "
            f"| {a['positive mean']:.3f} | {a['mean']:.3f} | {a['peak']:.3f} | {mem} |"
        )
    e = min(cpu["engine"])
    per, bat = min(cpu["lucent per channel"]), min(cpu["lucent batched"])
    we = min(wall["engine"])
    print(
        f"\nengine vs lucent per channel: {per / e:.2f}x ({kind}), "
        f"{min(wall['lucent per channel']) / we:.2f}x (wall)"
    )
    print(
        f"engine vs lucent batched:     {bat / e:.2f}x ({kind}), "
        f"{min(wall['lucent batched']) / we:.2f}x (wall)"
    )
    lo = min(cpu[LUCENT_OBJECTIVE])
    print(
        f"{LUCENT_OBJECTIVE} vs lucent batched: {bat / lo:.2f}x ({kind}), "
        f"{min(wall['lucent batched']) / min(wall[LUCENT_OBJECTIVE]):.2f}x (wall)"
    )
    spread = {v: statistics.pstdev(t) / statistics.mean(t) for v, t in cpu.items()}
    print("run-to-run spread (sd / mean): " + ", ".join(f"{v} {x:.1%}" for v, x in spread.items()))
    print(like_for_like(acts))


def like_for_like(acts: dict[str, dict[str, float]]) -> str:
    """Activation quality on each side's own objective: the engine with lucent's objective
    (the plain mean) against lucent, and the default engine (the positive part) against lucent
    on that measure; each ratio the engine's over lucent's."""
    lucents = ("lucent per channel", "lucent batched")
    lines = ["\nlike for like (final images, un-transformed; engine / lucent):"]
    for engine, measures in (
        (LUCENT_OBJECTIVE, ("mean", "positive mean", "peak")),
        ("engine", ("positive mean", "mean", "peak")),
    ):
        own = "the plain mean" if engine == LUCENT_OBJECTIVE else "the positive part"
        lines.append(f"  {engine} (maximises {own}):")
        for measure in measures:
            ours = acts[engine][measure]
            ratios = ", ".join(
                f"{lucent} {acts[lucent][measure]:.3f} ({ours / acts[lucent][measure]:.3f}x)"
                for lucent in lucents
            )
            lines.append(f"    {measure:13s} {ours:.3f} vs {ratios}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("shapes", "inception", "both"), default="both")
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"optimisation steps (default {SHAPES_STEPS} shapes, {INCEPTION_STEPS} inception)",
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (all variants)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--memory-steps", type=int, default=8, help="steps of the memory children")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory children")
    ap.add_argument("--memory-only", action="store_true", help="only the peak-memory children")
    ap.add_argument(
        "--lucent-weight-grads",
        dest="lucent_grads",
        action="store_true",
        help="lucent as shipped: weights not frozen, their gradients computed",
    )
    ap.add_argument("--child", choices=tuple(VARIANTS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        memory_child(args)
        return
    torch.set_num_threads(args.threads)
    for name in ("shapes", "inception") if args.model == "both" else (args.model,):
        bench(args, name)


if __name__ == "__main__":
    main()
