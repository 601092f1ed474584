"""The atlas of every unit of every conv layer of one zoo model, built cold three ways in one
run: the local executor, then Ray with one worker and with two on this machine (each a real
`ray start` cluster on loopback, tests/ray/cluster.py). Prints the wall times, Ray's overhead
over local with one worker, and the scaling efficiency with two.

    python bench/atlas.py [--model shapes-a] [--layers conv1,conv2,conv3] [--sample 256]

Every build runs with --jobs 1 (one torch thread per task), so each worker is one core and
the three sites are byte-identical (checked). Not a timed test: figures go to RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ray.cluster import LOOPBACK_ENV, LoopbackCluster  # noqa: E402

LAYERS = {"shapes-a": "conv1,conv2,conv3"}


def site(folder: Path, model: str, layers: list[str], sample: int) -> Path:
    folder.mkdir(parents=True)
    entries = ", ".join(f'"{model}/{layer}"' for layer in layers)
    (folder / "circuitpress.toml").write_text(
        f'[site]\ntitle = "Atlas bench"\n[models.{model}]\nzoo = "{model}"\n'
        f"[build]\ndataset_sample = {sample}\n[atlas]\nlayers = [{entries}]\n"
    )
    (folder / "content").mkdir()
    (folder / "content/index.md").write_text("---\ntitle: Atlas\n---\nAn atlas.\n")
    return folder


def build(root: Path, env: dict[str, str], *args: str) -> tuple[float, dict[str, object]]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "circuitpress", "build", str(root), "--jobs", "1", "--quiet"]
        + list(args),
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"build failed: {done.stderr}")
    report = json.loads((root / ".circuitpress/build-report.json").read_text())
    return seconds, report


def files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes-a")
    parser.add_argument("--layers", default=None, help="comma-separated (default: conv layers)")
    parser.add_argument("--sample", type=int, default=256, help="dataset images per model")
    args = parser.parse_args()
    layers = (args.layers or LAYERS[args.model]).split(",")
    env = {**os.environ, **LOOPBACK_ENV}
    rows = []
    with tempfile.TemporaryDirectory(prefix="cp-atlas-bench-") as tmp:
        base = Path(tmp)
        seconds, report = build(site(base / "local", args.model, layers, args.sample), env)
        rows.append(("local", seconds, report))
        reference = files(base / "local/_site")
        for workers in (1, 2):
            with LoopbackCluster(cpus=workers) as cluster:
                root = site(base / f"ray{workers}", args.model, layers, args.sample)
                seconds, report = build(
                    root, cluster.env, "--executor", "ray", "--ray-address", cluster.address
                )
                rows.append((f"ray, {workers} worker(s)", seconds, report))
                got = files(root / "_site")
                figures = {k: v for k, v in got.items() if not k.startswith("assets/theme/")}
                figures = {k: v for k, v in figures.items() if not k.endswith(".html")}
                same_figures = figures == {
                    k: v
                    for k, v in reference.items()
                    if not k.startswith("assets/theme/") and not k.endswith(".html")
                }
                # The pages embed the theme's asset hashes: in a checkout being edited while
                # the bench runs they may differ for that reason alone.
                print(
                    f"ray with {workers} worker(s): figures identical to local: {same_figures}, "
                    f"every file identical: {got == reference}"
                )
    print(f"\natlas of {args.model} {','.join(layers)} ({os.cpu_count()} cores, shared machine)")
    print(f"{'executor':<20} {'wall s':>8} {'analysis CPU s':>15} {'tasks':>6} {'requests':>9}")
    for name, seconds, report in rows:
        totals = report["totals"]  # type: ignore[index]
        print(
            f"{name:<20} {seconds:8.1f} {totals['cpu_seconds']:15.1f} "  # type: ignore[index]
            f"{report.get('tasks', 0):>6} {totals['requests']:>9}"  # type: ignore[index]
        )
    local, one, two = (r[1] for r in rows)
    print(f"\nRay overhead over local, one worker: {100 * (one / local - 1):+.1f}%")
    print(
        f"scaling efficiency, two workers: {100 * one / (2 * two):.0f}% (speed-up {one / two:.2f}x)"
    )


if __name__ == "__main__":
    main()
