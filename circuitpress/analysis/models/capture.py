"""Layer outputs by name, from forward hooks that are always removed.

Every analysis reads a model the same way: the outputs of some layers on a batch (feature vis,
examples, tuning, universality, the zoo's selectivity measure), sometimes with an edit of an
output for the length of a forward pass (claims' ablations; the expanded weights start the pass
from a free tensor), or only the order and shapes of the layers' outputs (model facts, the
layer graph of the weights analysis). `capture` does all of it.

lucent's `render_vis` registers hooks on every module and never removes them; here a hook lives
exactly as long as its `with` block, so an edit can never leak into another request. Analyses
only need activations up to some layer, so `Capture.run` cuts the forward pass short there (an
exception raised from the hook), which saves the cost of every later layer in both the forward
and the backward pass.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn

from circuitpress.errors import UserError, choices_hint

Edit = Callable[[torch.Tensor], torch.Tensor]


class _StopForward(Exception):
    """Raised from a hook once every wanted layer has produced its output."""


def as_maps(output: torch.Tensor) -> torch.Tensor:
    """A layer output as [B, C, H, W]: dense outputs [B, C] become 1x1 maps."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    if output.dim() == 2:
        return output[:, :, None, None]
    if output.dim() != 4:
        raise ValueError(f"unsupported layer output shape {tuple(output.shape)}")
    return output


def _modules(model: nn.Module, names: Iterable[str]) -> dict[str, nn.Module]:
    """The submodules called `names` in `model.named_modules()`."""
    modules = dict(model.named_modules())
    found = {}
    for name in names:
        if name not in modules or name == "":
            raise UserError(
                f"the model has no layer '{name}'",
                hint=choices_hint(name, [n for n in modules if n]),
            )
        found[name] = modules[name]
    return found


class Capture:
    """The hooks of one `capture` block; call the model through `run` or `forward`."""

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str],
        edits: Mapping[str, Edit],
        replace: Mapping[str, torch.Tensor],
    ) -> None:
        self.model = model
        self.layers = tuple(layers)
        self.edits = dict(edits)
        self.replace = dict(replace)
        self.outputs: dict[str, torch.Tensor] = {}  # the wanted layers' outputs, last forward
        self.order: list[str] = []  # hooked layers in the order their first outputs appeared
        self.shapes: dict[str, tuple[int, ...]] = {}  # each one's first output shape, no batch
        self._wanted = set(self.layers)
        self._stop = False

    def hook(self, name: str) -> Callable[..., torch.Tensor | None]:
        def hook(_module: nn.Module, _inputs: object, output: Any) -> torch.Tensor | None:
            if name not in self.shapes and isinstance(output, torch.Tensor):
                self.order.append(name)
                self.shapes[name] = tuple(output.shape[1:])
            out = output
            if name in self.replace:
                out = self.replace[name]
            if name in self.edits:
                out = self.edits[name](out)
            if name in self._wanted:
                self.outputs[name] = out
                # Judged from `outputs` itself, which every forward resets: a counter kept here
                # ran out after the first forward and never stopped another.
                if self._stop and self._wanted.issubset(self.outputs):
                    raise _StopForward
            return out if out is not output else None

        return hook

    def _call(self, x: torch.Tensor, *, stop: bool) -> Any:
        self.outputs = {}
        self._stop = stop
        final = None
        try:
            final = self.model(x)
        except _StopForward:
            pass
        finally:
            self._stop = False
        missing = [name for name in self.layers if name not in self.outputs]
        if missing:
            raise UserError(
                f"layer '{missing[0]}' produced no output in a forward pass",
                hint="is it used in forward()?",
            )
        return final

    def run(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The outputs of the captured layers on `x`, in their order; the forward pass ends as
        soon as all of them have produced theirs."""
        if not self.layers:
            raise ValueError("run() returns captured outputs: capture a layer, or use forward()")
        self._call(x, stop=True)
        return [self.outputs[name] for name in self.layers]

    def forward(self, x: torch.Tensor) -> Any:
        """The model's own output on `x` (a whole forward pass); the captured layers' outputs
        are in `outputs` afterwards."""
        return self._call(x, stop=False)


@contextmanager
def capture(
    model: nn.Module,
    layers: Sequence[str] = (),
    *,
    edits: Mapping[str, Edit] | None = None,
    replace: Mapping[str, torch.Tensor] | None = None,
    watch: Iterable[str] = (),
) -> Iterator[Capture]:
    """Hooks on the layers of `model` (by their `named_modules()` names) inside the block.

    `layers` are the outputs `Capture.run` returns; `edits` map a layer to a function of its
    output (ablations); `replace` substitutes a layer's output outright; `watch` are further
    layers whose output shapes (and order) are recorded in `Capture.shapes` and `Capture.order`,
    as those of every hooked layer are. Hooks are removed when the block exits, whatever
    happens inside it.
    """
    edits = dict(edits or {})
    replace = dict(replace or {})
    names = list(dict.fromkeys([*layers, *edits, *replace, *watch]))
    cap = Capture(model, layers, edits, replace)
    handles = []
    try:
        for name, module in _modules(model, names).items():
            handles.append(module.register_forward_hook(cap.hook(name)))
        yield cap
    finally:
        for handle in handles:
            handle.remove()


def execution_order(
    model: nn.Module, x: torch.Tensor
) -> tuple[list[str], dict[str, tuple[int, ...]]]:
    """Names of all submodules in the order their outputs appear, and each output's shape
    (without the batch dimension). A module called twice keeps its first position."""
    names = [name for name, _ in model.named_modules() if name]
    with capture(model, watch=names) as cap, torch.no_grad():
        cap.forward(x)
    return cap.order, cap.shapes
