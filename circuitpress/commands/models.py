"""`circuitpress models`: each model, its source, its layers and its dataset.

Layer facts come through the cache like every analysis, so an unchanged model is described
without importing torch.
"""

from __future__ import annotations

from pathlib import Path

import click

from circuitpress.commands.console import DEVICE, handle_errors


def describe_models(site: str | Path, *, device: str | None = None) -> str:
    from circuitpress.build.cache import CACHE_DIR, Cache
    from circuitpress.build.plan import Planner
    from circuitpress.config import load_config
    from circuitpress.requests import ModelInfoRequest

    config = load_config(site)
    if not config.models:
        return (
            'No models: declare one in circuitpress.toml, e.g. [models.shapes-a] zoo = "shapes-a".'
        )
    planner = Planner(
        config, Cache(config.root / CACHE_DIR), device=device or config.build.device, progress=None
    )
    names = sorted(config.models)
    requests = [ModelInfoRequest(name) for name in names]
    planner.resolve(requests)
    lines: list[str] = []
    for name, request in zip(names, requests, strict=True):
        info = planner.result(request).data
        cfg = config.models[name]
        lines.append(f"{name}  ({cfg.source})")
        lines.append(f"  dataset: {info.get('dataset', cfg.dataset or 'default')}")
        if info.get("params") is not None:
            lines.append(f"  parameters: {info['params']:,}")
        if info.get("input_shape"):
            lines.append("  input: " + "x".join(str(d) for d in info["input_shape"]))
        lines.append(f"  {'layer':<24} {'output shape':<16} units")
        for layer in info["layers"]:
            shape = "x".join(str(d) for d in layer.get("shape") or [])
            lines.append(f"  {layer['name']:<24} {shape:<16} {layer.get('units', '')}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


@click.command()
@click.argument("site", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--device", type=DEVICE, default=None, help="Where models run (default: [build] device, auto)."
)
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@handle_errors
def models(site: Path, device: str | None, quiet: bool) -> None:
    """List each model, its source, layers (name, output shape, units) and dataset."""
    text = describe_models(site, device=device)
    if not quiet:
        click.echo(text)
