"""Feature visualization throughput: the engine's one batched optimisation against lucent.

32 channels of one zoo layer, same image size, steps, parameterisation (lucent's FFT +
decorrelated colour) and transform magnitudes, measured in one run:

- engine: `featurevis.visualize`, all 32 units in one batch (one vectorised objective);
- lucent: `render_vis` called once per channel, as a lucent user would (its transforms with the
  same magnitudes, `fixed_image_size` = the image size so it does not upsample to 224, no
  display, no progress bar);
- bare: the same batch and parameterisation in a plain torch loop (Adam, forward to the
  layer, backward), no transforms and no per-image bookkeeping — the floor of the engine's cost.

Prints features per second, the speed-up over lucent and the efficiency (bare / engine time).
On a CPU, times are the process's CPU seconds with a fixed number of torch threads (default 1):
wall time on a shared machine measures the neighbours as much as the code. On CUDA, wall time.
Usage: python bench/featurevis.py [--model shapes-a] [--layer conv2] [--steps 64] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import torch
from torch import nn

from circuitpress.analysis.methods.featurevis import TransformSpec, visualize
from circuitpress.analysis.models.capture import capture
from circuitpress.analysis.models.modes import frozen
from circuitpress.requests import FeatureVisRequest, UnitRef


def zoo_model(name: str) -> tuple[nn.Module, str]:
    """The zoo model with its shipped weights when present, else its seeded random init."""
    from circuitpress.analysis.models.zoo import weights_path
    from circuitpress.analysis.models.zoo.models import build_model

    model = build_model(name)
    weights = weights_path(name)
    if weights.is_file():
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(weights)))
        return model.eval(), "trained weights"
    return model.eval(), "random init (no weights shipped yet)"


def normalize(x: torch.Tensor) -> torch.Tensor:
    return (x - 0.5) / 0.25  # the zoo's preprocessing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


WALL = False  # --clock wall: wall time on a CPU too (meaningful only on an idle machine)


def set_wall(on: bool) -> None:
    global WALL
    WALL = on


def clock(device: torch.device) -> float:
    """CPU seconds of this process on a CPU run (robust to a busy machine), else wall time."""
    return time.perf_counter() if device.type == "cuda" or WALL else time.process_time()


def bench_engine(
    model: nn.Module, layer: str, channels: int, size: int, steps: int, device: torch.device
) -> float:
    requests = [
        FeatureVisRequest(UnitRef("m", layer, ((c, 1.0),)), size=size, steps=steps)
        for c in range(channels)
    ]
    sync(device)
    t = clock(device)
    visualize(model, layer, requests, normalize=normalize, device=device)
    sync(device)
    return clock(device) - t


def bench_engine_direct(
    model: nn.Module, layer: str, channels: int, size: int, steps: int, device: torch.device
) -> float:
    """The engine with the first conv's ordinary input gradient (no phase-grid gradient)."""
    from circuitpress.analysis.methods import image_conv

    saved = image_conv.MAX_IMAGE_CHANNELS
    image_conv.MAX_IMAGE_CHANNELS = 0  # no conv qualifies
    try:
        return bench_engine(model, layer, channels, size, steps, device)
    finally:
        image_conv.MAX_IMAGE_CHANNELS = saved


def bench_lucent(
    model: nn.Module, layer: str, channels: int, size: int, steps: int, device: torch.device
) -> float:
    from lucent.optvis import objectives, param, render

    tf = TransformSpec.for_size(size)
    model = model.to(device)
    sync(device)
    t = clock(device)
    for c in range(channels):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            render.render_vis(
                model,
                objectives.channel(layer, c),
                param_f=lambda: param.image(size, fft=True, decorrelate=True),
                transforms=tf.lucent_transforms() + [normalize],
                thresholds=(steps,),
                preprocess=False,
                progress=False,
                show_image=False,
                fixed_image_size=size,
            )
    sync(device)
    elapsed = clock(device) - t
    # render_vis leaves a hook on every module; remove them so later runs are not slowed.
    for m in model.modules():
        m._forward_hooks.clear()
    return elapsed


def bench_bare(
    model: nn.Module, layer: str, channels: int, size: int, steps: int, device: torch.device
) -> float:
    from lucent.optvis import param

    model = model.to(device)
    params, image_f = param.image(size, batch=channels, fft=True, decorrelate=True)
    opt = torch.optim.Adam(params, lr=0.05)
    index = torch.arange(channels, device=device)
    sync(device)
    t = clock(device)
    with frozen(model), capture(model, [layer]) as cap:
        for _ in range(steps):
            opt.zero_grad()
            (acts,) = cap.run(normalize(image_f().to(device)))
            loss = -acts[index, index].mean(dim=(1, 2)).sum()
            loss.backward()
            opt.step()
    sync(device)
    return clock(device) - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="shapes-a")
    ap.add_argument("--layer", default="conv2")
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (same for all three)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    set_wall(args.clock == "wall")
    device = torch.device(args.device)
    model, weights = zoo_model(args.model)
    model = model.to(device)
    n, size, steps = args.channels, args.size, args.steps
    print(f"{args.model}/{args.layer} ({weights}), {n} channels, {size}px, {steps} steps, {device}")
    kind = "wall" if device.type == "cuda" or args.clock == "wall" else "CPU"
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, {kind} seconds"
    )
    bench_engine(model, args.layer, 2, size, 4, device)  # warm-up: imports, allocator, kernels
    engine, direct, bare = float("inf"), float("inf"), float("inf")
    for _ in range(args.repeats):  # interleaved, so a burst of load hits every variant alike
        engine = min(engine, bench_engine(model, args.layer, n, size, steps, device))
        direct = min(direct, bench_engine_direct(model, args.layer, n, size, steps, device))
        bare = min(bare, bench_bare(model, args.layer, n, size, steps, device))
    lucent = bench_lucent(model, args.layer, n, size, steps, device)
    print(f"engine : {engine:7.2f} s  {n / engine:8.2f} features/s")
    print(
        f"direct : {direct:7.2f} s  {n / direct:8.2f} features/s  "
        "(engine with conv1's ordinary input gradient)"
    )
    print(f"lucent : {lucent:7.2f} s  {n / lucent:8.2f} features/s  (render_vis once per channel)")
    print(f"bare   : {bare:7.2f} s  {n / bare:8.2f} features/s  (plain loop, no transforms)")
    print(
        f"speed-up over lucent: {lucent / engine:.1f}x   "
        f"efficiency (bare / engine time): {bare / engine:.2f}"
    )


if __name__ == "__main__":
    main()
