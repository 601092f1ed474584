"""Read and edit layer outputs with forward hooks that are always removed.

The circuits analyses (weights, tuning, claims, universality) all need the same three things
from a model: the order in which its layers produce their outputs, the outputs of some layers
on a batch, and sometimes an edit of an output (an ablation) for the length of one forward
pass. Hooks live only inside a `with` block or a function call, so an edit can never leak into
another request.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

from circuitpress.errors import UserError, choices_hint

Edit = Callable[[torch.Tensor], torch.Tensor]


class _Stop(Exception):
    """Raised inside a hook to end a forward pass once every wanted output was seen."""


def module_named(model: nn.Module, name: str) -> nn.Module:
    """The submodule called `name` in `model.named_modules()`."""
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        raise UserError(
            f"the model has no layer '{name}'", hint=choices_hint(name, [n for n in modules if n])
        )
    return modules[name]


@contextmanager
def hooked(model: nn.Module, hooks: Mapping[str, Callable[..., object]]) -> Iterator[None]:
    """Register forward hooks by layer name for the length of the block."""
    handles = []
    try:
        for name, hook in hooks.items():
            handles.append(module_named(model, name).register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


def run(
    model: nn.Module,
    x: torch.Tensor,
    capture: Sequence[str] = (),
    *,
    edits: Mapping[str, Edit] | None = None,
    replace: Mapping[str, torch.Tensor] | None = None,
    full: bool = False,
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """One forward pass: outputs of the `capture` layers and (when `full`) the model's output.

    `edits` map a layer to a function of its output (used for ablations); `replace` substitutes
    a layer's output outright (the expanded weights start the pass from a free tensor). Without
    `full`, the pass stops as soon as every captured layer has produced its output.
    """
    edits = dict(edits or {})
    replace = dict(replace or {})
    wanted = set(capture)
    seen: dict[str, torch.Tensor] = {}

    def make_hook(name: str) -> Callable[..., object]:
        def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor | None:
            out = output
            if name in replace:
                out = replace[name]
            if name in edits:
                out = edits[name](out)
            if name in wanted:
                seen[name] = out
                if not full and wanted.issubset(seen):
                    raise _Stop
            return out if out is not output else None

        return hook

    names = wanted | set(edits) | set(replace)
    final: torch.Tensor | None = None
    with hooked(model, {n: make_hook(n) for n in sorted(names)}):
        try:
            final = model(x)
        except _Stop:
            pass
    missing = wanted - set(seen)
    if missing:
        raise UserError(
            f"layer '{sorted(missing)[0]}' produced no output in a forward pass",
            hint="is it used in forward()?",
        )
    return seen, final


def execution_order(
    model: nn.Module, x: torch.Tensor
) -> tuple[list[str], dict[str, tuple[int, ...]]]:
    """Names of all submodules in the order their outputs appear, and each output's shape
    (without the batch dimension). A module called twice keeps its first position."""
    order: list[str] = []
    shapes: dict[str, tuple[int, ...]] = {}

    def make_hook(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if name not in shapes and isinstance(output, torch.Tensor):
                order.append(name)
                shapes[name] = tuple(output.shape[1:])

        return hook

    hooks = {name: make_hook(name) for name, _ in model.named_modules() if name}
    with hooked(model, hooks), torch.no_grad():
        model(x)
    return order, shapes
