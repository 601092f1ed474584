"""Dataset-examples throughput: one pass for every unit of every conv layer, against baselines.

For a zoo model, examples (top-k, with crops and heatmaps) of every channel of every conv layer,
over the same in-memory images, measured in one run:

- engine: `examples.top_examples` with all layers at once (one streaming pass, then the
  winners' crops and heatmaps);
- per layer: the same function called once per layer (one pass per layer);
- bare: a plain `torch.no_grad()` forward of the whole model over the same batches.

Prints images per second of each and the engine's fraction of the bare forward pass.
Times are CPU seconds of this process with a fixed torch thread count on a CPU (robust to a
busy machine), wall time on CUDA.
Usage: python bench/examples.py [--model shapes-a] [--images 2048] [--k 8] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform

import torch
from featurevis import clock, normalize, set_wall, sync, zoo_model  # noqa: E402  (bench/ is the cwd of scripts)

from circuitpress.analysis.methods.examples import top_examples
from circuitpress.requests import ExamplesRequest, UnitRef


def dataset(n: int, size: int, batch: int) -> list[tuple[int, torch.Tensor, None]]:
    """The model's procedural images, materialised so every variant reads identical tensors."""
    from circuitpress.analysis.models.datasets import ProceduralImages

    images = ProceduralImages("shapes", n, (size, size))
    return [(start, x, None) for start, x, _ in images.batches(batch, n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="shapes-a")
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    set_wall(args.clock == "wall")
    device = torch.device(args.device)
    model, weights = zoo_model(args.model)
    model = model.to(device)
    named = dict(model.named_modules())
    convs = [n for n, m in named.items() if isinstance(m, torch.nn.Conv2d)]
    requests = [
        ExamplesRequest(UnitRef("m", n, ((c, 1.0),)), k=args.k)
        for n in convs
        for c in range(named[n].out_channels)
    ]
    data = dataset(args.images, 64, args.batch)
    images = torch.cat([x for _, x, _ in data])
    fetch = lambda idx: images[idx]  # noqa: E731
    n = len(images)
    kind = "wall" if device.type == "cuda" or args.clock == "wall" else "CPU"
    print(
        f"{args.model} ({weights}): {len(requests)} units in {convs}, {n} images, "
        f"k={args.k}, {device}"
    )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}, "
        f"{kind} seconds"
    )

    def engine() -> float:
        t = clock(device)
        top_examples(model, requests, iter(data), fetch, normalize=normalize, device=device)
        sync(device)
        return clock(device) - t

    def per_layer() -> float:
        t = clock(device)
        for name in convs:
            mine = [r for r in requests if r.ref.layer == name]
            top_examples(
                model,
                mine,
                iter(data),
                fetch,
                normalize=normalize,
                device=device,
            )
        sync(device)
        return clock(device) - t

    def bare() -> float:
        t = clock(device)
        with torch.no_grad():
            for _, x, _ in data:
                model(normalize(x.to(device)))
        sync(device)
        return clock(device) - t

    bare(), engine()  # warm-up: allocator, oneDNN kernels for both layouts
    runs: dict[str, list[float]] = {"engine": [], "bare": [], "per layer": []}
    for _ in range(args.repeats):  # interleaved, so a busy moment hits every variant alike
        runs["engine"].append(engine())
        runs["bare"].append(bare())
        runs["per layer"].append(per_layer())
    times = {name: min(values) for name, values in runs.items()}
    for name, secs in times.items():
        print(f"{name:9s}: {secs:6.2f} s  {n / secs:8.0f} images/s")
    print(
        f"engine / bare forward: {times['bare'] / times['engine']:.2f}   "
        f"engine vs one pass per layer: {times['per layer'] / times['engine']:.2f}x"
    )


if __name__ == "__main__":
    main()
