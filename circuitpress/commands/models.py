"""`circuitpress models`: each model, its source, its layers and its dataset.

Every module output is listed (containers and concat blocks too), with the layer that feeds
it in the model's dataflow: the layer a unit page's strongest inputs come from.

Layer facts come through the cache like every analysis, so an unchanged model is described
without importing torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from circuitpress.commands.console import device_option, handle_errors, quiet_option, site_argument


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
        if info.get("kind") == "lm":
            lines.append(
                f"  tokens: context {info['n_ctx']}, vocabulary {info['vocab']}, "
                f"{info['n_layers']} layers of {info['n_heads']} heads"
            )
        elif info.get("input_shape"):
            lines.append("  input: " + "x".join(str(d) for d in info["input_shape"]))
        lines.extend(_layer_table(info["layers"]))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _layer_table(layers: list[dict[str, Any]]) -> list[str]:
    """Every module that ran (containers and concat blocks too): its output shape, units, and
    the layer its connections come from; '*' marks conv and linear layers, whose weights are
    kernels between features; a module that is no layer says why."""
    width = max([24, *(len(str(layer["name"])) + 2 for layer in layers)])
    rows = [f"  {'layer':<{width}} {'type':<22} {'output shape':<16} {'units':<6} inputs from"]
    for layer in layers:
        name = str(layer["name"]) + (" *" if layer.get("kernel_layer") else "")
        kind = str(layer.get("type", ""))
        if layer.get("error"):
            rows.append(f"  {name:<{width}} {kind:<22} ({layer['error']})")
            continue
        shape = "x".join(str(d) for d in layer.get("shape") or [])
        feeds = layer.get("input_layer", "")
        source = "image" if feeds is None else feeds
        units = f"{layer['heads']} heads" if layer.get("heads") else layer.get("units", "")
        rows.append(f"  {name:<{width}} {kind:<22} {shape:<16} {units:<6} {source}")
    if any(layer.get("heads") for layer in layers):
        rows.append("  (a language model: TransformerLens hook names; a head is LAYER:H0)")
    else:
        rows.append("  (* conv or linear layer: its weights are kernels between features)")
    return rows


@click.command(short_help="List each model: its source, layers, units and dataset.")
@site_argument
@device_option
@quiet_option
@handle_errors
def models(site: Path, device: str | None, quiet: bool) -> None:
    """List each model, its source, layers (name, output shape, units) and dataset."""
    text = describe_models(site, device=device)
    if not quiet:
        click.echo(text)
