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

A captured output is the value the layer produced, whatever runs after it: torchvision's ResNet
adds the shortcut into `bn2`'s output in place (`out += identity`) and its ReLUs are
`inplace=True`, so a tensor kept from a hook can be overwritten by the rest of the pass
(`layer3.1.bn2` captured with a later layer had minimum 0 instead of -5.24). Each kept output's
version counter (`tensor._version`, which every in-place op bumps) is compared after the pass;
where one moved, that layer's outputs are cloned from then on and the pass runs again. A model
without in-place ops pays nothing.

Layer outputs come in three shapes (`as_maps`): maps [B, C, H, W], vectors [B, C] and token
sequences [B, T, C] (a ViT's blocks). Units are always channels; positions are (y, x) on a map
and (t, 0) on a sequence, whose tokens `token_grid` places on the image's patch grid.
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


class LayerShapeError(UserError):
    """A layer output no analysis can read as units (neither a map, a vector nor tokens)."""


def as_maps(output: torch.Tensor) -> torch.Tensor:
    """A layer output as [B, C, H, W]: dense outputs [B, C] become 1x1 maps, token sequences
    [B, T, C] become [B, C, T, 1] (units are channels, positions are tokens)."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    if output.dim() == 2:
        return output[:, :, None, None]
    if output.dim() == 3:
        return output.transpose(1, 2)[:, :, :, None]
    if output.dim() != 4:
        raise LayerShapeError(
            f"a layer output of shape {list(output.shape[1:])} has no units circuitpress can read",
            hint="use a layer whose output is [C, H, W], [C] or tokens [T, C]",
        )
    return output


def unit_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """A layer's output shape without the batch, as analyses index it: [C, H, W] and [C] as
    they are, tokens [T, C] as [C, T, 1] (channels first: the unit count is shape[0])."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        return (shape[1], shape[0], 1)
    return shape


def is_tokens(shape: Sequence[int]) -> bool:
    """Whether a layer output shape (without the batch) is a token sequence [T, C]."""
    return len(shape) == 2


def token_grid(tokens: int, image: tuple[int, int]) -> tuple[int, int, int] | None:
    """Where a sequence of `tokens` lies on an image of size (H, W): (prefix, rows, columns)
    when all but the first `prefix` tokens (a class token, distillation tokens: 0 to 4) tile
    the image as a rows x columns patch grid of the image's aspect, else None."""
    h, w = image
    for prefix in range(0, 5):
        n = tokens - prefix
        if n <= 0:
            break
        for rows in range(1, n + 1):
            if n % rows:
                continue
            cols = n // rows
            if h % rows == 0 and w % cols == 0 and h // rows == w // cols:
                return prefix, rows, cols
    return None


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
        self._until: set[str] = set()  # watched layers that also end a `run`'s pass
        self._reached: set[str] = set()
        # Layers whose output a later in-place op changed: kept as clones from then on.
        self.cloned: set[str] = set()
        self._versions: dict[str, tuple[int, ...]] = {}
        self._called: set[str] = set()  # hooked modules called so far in this pass

    def hook(self, name: str) -> Callable[..., torch.Tensor | None]:
        def hook(_module: nn.Module, _inputs: object, output: Any) -> torch.Tensor | None:
            if name not in self.shapes and isinstance(output, torch.Tensor):
                self.order.append(name)
                self.shapes[name] = tuple(output.shape[1:])
            out = output
            # A module called twice in one pass (torchvision's ReLUs are) is its first call:
            # it keeps its first output, as `order` keeps its first position, and an edit or
            # a replacement applies to that call only (the block's output, computed by the
            # same ReLU later, is another layer).
            first = name not in self._called
            self._called.add(name)
            if first and name in self.replace:
                out = self.replace[name]
                if out.requires_grad and out.is_leaf:
                    # A view the model may change in place (`out += identity` in a ResNet
                    # block) while gradients still reach the free tensor.
                    out = out.clone()
            if first and name in self.edits:
                out = self.edits[name](out)
            if name in self._wanted and name not in self.outputs:
                versions = _versions(out)
                if name in self.cloned or versions is None:
                    self.outputs[name] = _clone(out)
                else:
                    self.outputs[name] = out
                    self._versions[name] = versions
            if name in self._until:
                self._reached.add(name)
            # Judged from `outputs` itself, which every forward resets: a counter kept here
            # ran out after the first forward and never stopped another.
            if (
                self._stop
                and self._wanted.issubset(self.outputs)
                and self._until.issubset(self._reached)
            ):
                raise _StopForward
            return out if out is not output else None

        return hook

    def _call(self, x: torch.Tensor, *, stop: bool) -> Any:
        while True:
            final = self._pass(x, stop=stop)
            moved = {
                name
                for name, before in self._versions.items()
                if name in self.outputs and _versions(self.outputs[name]) != before
            }
            if not moved:
                return final
            # Overwritten after it was captured: the pass again, keeping copies of those.
            self.cloned |= moved

    def _pass(self, x: torch.Tensor, *, stop: bool) -> Any:
        self.outputs = {}
        self._versions = {}
        self._reached = set()
        self._called = set()
        self._stop = stop
        final = None
        try:
            final = self.model(x)
        except _StopForward:
            pass
        except (RuntimeError, AssertionError, ValueError, IndexError) as exc:
            if isinstance(exc, (UserError, torch.cuda.OutOfMemoryError)):
                raise
            raise ForwardError(exc, tuple(x.shape[1:])) from None
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

    def run_until(self, x: torch.Tensor, layers: Iterable[str]) -> None:
        """A pass that ends once every captured layer and every one of `layers` (which must be
        hooked: captured or watched) has produced its output; `shapes` and `order` then hold
        every hooked layer seen on the way."""
        self._until = set(layers)
        try:
            self._call(x, stop=True)
        finally:
            self._until = set()

    def forward(self, x: torch.Tensor) -> Any:
        """The model's own output on `x` (a whole forward pass); the captured layers' outputs
        are in `outputs` afterwards."""
        return self._call(x, stop=False)


class ForwardError(UserError):
    """The model's own forward pass failed on the input it was given (usually its size)."""

    def __init__(self, exc: BaseException, shape: tuple[int, ...]) -> None:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        size = "x".join(str(s) for s in shape)
        super().__init__(
            f"the model's forward pass fails on a {size} input ({type(exc).__name__}: {text})",
            hint="give an image size the model accepts (input_size in its [models.NAME] table, "
            "or the directive's :size:)",
        )
        self.shape = shape

    def __reduce__(self) -> tuple[Any, ...]:
        # A plain UserError with the same text: a Ray worker's error must unpickle in the
        # driver (this constructor's arguments are not the message).
        return (
            UserError,
            (self.message,),
            {"hint": self.hint, "file": self.file, "line": self.line},
        )


def _versions(out: Any) -> tuple[int, ...] | None:
    """The version counters of an output's tensors; None where one is not tracked (an
    inference-mode tensor): such an output is always cloned."""
    tensors = out if isinstance(out, (tuple, list)) else (out,)
    try:
        return tuple(t._version for t in tensors if isinstance(t, torch.Tensor))
    except RuntimeError:
        return None


def _clone(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.clone()
    if isinstance(out, (tuple, list)):
        return type(out)(t.clone() if isinstance(t, torch.Tensor) else t for t in out)
    return out


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
    model: nn.Module, x: torch.Tensor, until: Iterable[str] | None = None
) -> tuple[list[str], dict[str, tuple[int, ...]]]:
    """Names of all submodules in the order their outputs appear, and each output's shape
    (without the batch dimension). A module called twice keeps its first position.

    With `until`, the pass ends once those layers have produced their outputs: the order and
    shapes up to there, from a model that may not take `x` all the way to its head (lucent's
    InceptionV1 at 128 px fails in its final pooling)."""
    names = [name for name, _ in model.named_modules() if name]
    with capture(model, watch=names) as cap, torch.no_grad():
        if until is None:
            cap.forward(x)
        else:
            cap.run_until(x, until)
    return cap.order, cap.shapes
