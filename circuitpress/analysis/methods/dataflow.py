"""The true dataflow between a model's layers, read from the autograd graph of one forward pass.

Every module output is a layer: a conv, a ReLU, a container (`layer3`, `inception4a`), a
concat module (lucent's `mixed4a`). Which layer feeds which is not the order the layers run
in: in an Inception block the conv that runs just before `mixed4a_3x3_pre_relu_conv` is a
parallel branch. So `Dataflow.trace` runs the model once with gradients on and keeps the graph
autograd built: its nodes are the operations, and every module call's output marks one of
them. Leaf modules count as one operation (their internals are not layers); everything else
(torch.cat in a forward(), `out += identity`, F.relu) is read from the autograd nodes
themselves, so no architecture needs a hand-written rule.

Questions the weights analysis asks (all answered from the graph, torch-free after `trace`):
- `own_kernel(layer)`: the conv or linear layer whose weights make `layer`'s units (itself, or
  the conv before a ReLU, a BN, a pool); None above a merge (a concat, a residual add).
- `input_layer(layer)`: the layer that feeds those weights: the previous conv of a chain, or
  the merge it reads (the 480 channels of a concat, a residual block's output).
- `output_layer(layer)`: the first conv or linear layer that reads `layer`'s units.
- `depends(src, dst)`, `between(src, dst)`, `is_adjacent(src, dst)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

from circuitpress.errors import UserError, choices_hint

# Layers whose weights are kernels between features: W[j, i] connects channel i of the layer
# before to channel j of this one. Model facts report them (`kernel_layer`) for the directives.
KERNEL_LAYERS = (nn.Conv2d, nn.Linear)
# Modules that keep channels apart (so the next layer's kernel still reads the same channels).
PASS_THROUGH = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.Dropout,
    nn.Dropout2d,
    nn.Identity,
)
# Autograd operations that keep channels apart, for ops written in a forward() (F.relu,
# lucent's F.pad before its max-pools and convs, lucent's RedirectedReLU).
_PASS_THROUGH_OPS = ("relu", "maxpool2d", "constantpadnd", "clone", "hardtanh")
INPUT = 0  # the node of the model's input


def is_kernel_layer(module: nn.Module) -> bool:
    """Whether `module`'s weights are kernels between features (a conv or linear layer)."""
    return isinstance(module, KERNEL_LAYERS)


def is_relu_like(module: nn.Module) -> bool:
    # lucent's InceptionV1 wraps its ReLUs in its own classes (ReluLayer, RedirectedReluLayer).
    return isinstance(module, (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU)) or (
        "relu" in type(module).__name__.lower() and not any(True for _ in module.parameters())
    )


def _passes_through(module: nn.Module) -> bool:
    name = type(module).__name__.lower()
    no_params = not any(True for _ in module.parameters())
    return (
        isinstance(module, PASS_THROUGH)
        or is_relu_like(module)
        or (no_params and ("maxpool" in name or "dropout" in name or name == "padlayer"))
    )


def tensors_in(value: Any) -> Iterator[torch.Tensor]:
    """The tensors in a module's arguments or output, nested in tuples, lists and dicts
    (lucent's CatLayer takes a tuple of them)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from tensors_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from tensors_in(v)


def describe_output(output: Any) -> str:
    """What a block returns when it is not one tensor: 'a tuple of 2 tensors (1x65x64, 1x10)'."""
    kind = type(output).__name__
    if isinstance(output, dict):
        parts = [
            f"'{k}': " + ("x".join(map(str, v.shape)) if isinstance(v, torch.Tensor) else "?")
            for k, v in output.items()
        ]
        return f"a {kind} ({', '.join(parts)})"
    if isinstance(output, (tuple, list)):
        shapes = [
            "x".join(map(str, v.shape)) if isinstance(v, torch.Tensor) else type(v).__name__
            for v in output
        ]
        return f"a {kind} of {len(output)} values ({', '.join(shapes)})"
    return f"a {kind}"


@dataclass
class Dataflow:
    """The named layers of a model and the graph between them (node ids are ints)."""

    order: list[str]  # layers in the order their first outputs appear
    shapes: dict[str, tuple[int, ...]]  # each layer's first output shape, no batch
    modules: dict[str, nn.Module]
    node_of: dict[str, int]  # layer -> the node of its first output
    preds: dict[int, tuple[int, ...]]  # node -> the nodes it is computed from
    called: set[int]  # nodes that are the output of some module call
    passthrough: set[int]  # nodes whose operation keeps channels apart
    invalid: dict[str, str] = field(default_factory=dict)  # layer -> what it returns instead
    _names_at: dict[int, list[str]] = field(default_factory=dict, init=False)
    _depth: dict[int, int] = field(default_factory=dict, init=False)
    _succ: dict[int, list[int]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        rank = {name: i for i, name in enumerate(self.modules)}  # named_modules: outer first
        for name in sorted(self.node_of, key=lambda n: rank.get(n, 0)):
            self._names_at.setdefault(self.node_of[name], []).append(name)
        for node, ps in self.preds.items():
            for p in ps:
                self._succ.setdefault(p, []).append(node)
        self._depth = _depths(self.preds)

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def trace(cls, model: nn.Module, probe: torch.Tensor) -> "Dataflow":
        """One forward pass of `model` on `probe` with gradients on, every module hooked."""
        modules = {name: m for name, m in model.named_modules() if name}
        leaves = {name for name, m in modules.items() if not any(True for _ in m.children())}
        ids: dict[int, int] = {}  # id(autograd node) -> node id
        keep: list[Any] = []  # the autograd nodes, alive while ids refer to them
        order: list[str] = []
        shapes: dict[str, tuple[int, ...]] = {}
        first: dict[str, Any] = {}
        invalid: dict[str, str] = {}
        shortcut: dict[int, list[Any]] = {}  # leaf call output -> its input nodes
        called: list[Any] = []
        passing: list[Any] = []
        pending: dict[str, list[list[Any]]] = {}
        with torch.inference_mode(False):
            # A probe made under inference mode cannot require grad; its clone here can.
            x = probe.detach().clone().requires_grad_(True)

        def node(t: torch.Tensor) -> Any:
            if t.grad_fn is not None:
                return t.grad_fn
            return x if t is x else None

        def pre(name: str) -> Any:
            def hook(_m: nn.Module, args: Any, kwargs: Any) -> None:
                found = [node(t) for t in tensors_in((args, kwargs))]
                pending.setdefault(name, []).append([n for n in found if n is not None])

            return hook

        def post(name: str) -> Any:
            def hook(module: nn.Module, _args: Any, _kwargs: Any, output: Any) -> None:
                inputs = pending[name].pop()
                if not isinstance(output, torch.Tensor):
                    invalid.setdefault(name, describe_output(output))
                    return
                out = node(output)
                if name not in shapes:
                    order.append(name)
                    shapes[name] = tuple(output.shape[1:])
                    first[name] = out
                if out is None:
                    return
                keep.append(out)
                called.append(out)
                if name in leaves and not any(out is i for i in inputs):
                    shortcut[id(out)] = inputs
                    keep.extend(inputs)
                    if _passes_through(module):
                        passing.append(out)

            return hook

        handles = []
        try:
            for name, module in modules.items():
                handles.append(module.register_forward_pre_hook(pre(name), with_kwargs=True))
                handles.append(module.register_forward_hook(post(name), with_kwargs=True))
            with torch.enable_grad(), torch.inference_mode(False):
                final = model(x)
        finally:
            for h in handles:
                h.remove()
        keep.extend(tensors_in(final))

        # Number the nodes reachable from every module output and walk their inputs.
        ids[id(x)] = INPUT
        preds: dict[int, tuple[int, ...]] = {INPUT: ()}
        passthrough: set[int] = set()
        passing_ids = {id(n) for n in passing}

        def number(n: Any) -> int:
            if id(n) not in ids:
                ids[id(n)] = len(ids)
                keep.append(n)
                todo.append(n)
            return ids[id(n)]

        todo: list[Any] = []
        roots = [first[n] for n in order if first[n] is not None] + [
            t.grad_fn for t in tensors_in(final) if t.grad_fn is not None
        ]
        for r in roots:
            number(r)
        while todo:
            n = todo.pop()
            nid = ids[id(n)]
            if n is x:
                continue
            if id(n) in shortcut:
                inputs = shortcut[id(n)]
                if id(n) in passing_ids:
                    passthrough.add(nid)
            else:
                inputs = []
                for nxt, _ in n.next_functions:
                    if nxt is None:
                        continue
                    if type(nxt).__name__ == "AccumulateGrad":
                        if nxt.variable is x:
                            inputs.append(x)
                        continue  # a parameter
                    inputs.append(nxt)
                op = type(n).__name__.lower()
                if any(op.startswith(p) for p in _PASS_THROUGH_OPS) or "relu" in op:
                    passthrough.add(nid)
            preds[nid] = tuple(dict.fromkeys(number(i) for i in inputs))
        node_of = {name: ids[id(first[name])] for name in order if first[name] is not None}
        return cls(
            order=order,
            shapes=shapes,
            modules=modules,
            node_of=node_of,
            preds=preds,
            called={ids[id(n)] for n in called if id(n) in ids},
            passthrough=passthrough,
            invalid=invalid,
        )

    # -- names -------------------------------------------------------------------------------

    def check(self, layer: str) -> None:
        """A UserError unless `layer` has one tensor output that depends on the input."""
        if layer in self.invalid:
            raise UserError(
                f"layer '{layer}' returns {self.invalid[layer]}, not one tensor",
                hint="name a module inside it whose output is one tensor",
            )
        if layer not in self.shapes:
            known = [n for n in self.order if n in self.node_of]
            if layer in self.modules:
                raise UserError(
                    f"layer '{layer}' produced no output in a forward pass",
                    hint="is it used in forward()?",
                )
            raise UserError(f"the model has no layer '{layer}'", hint=choices_hint(layer, known))
        if layer not in self.node_of:
            raise UserError(
                f"layer '{layer}' does not depend on the model's input",
                hint="pick a layer the image flows through",
            )

    def name(self, node: int, prefer_kernel: bool = True) -> str | None:
        """The layer a node is the output of: a conv or linear layer if one, else the
        outermost module (`layer1`, not `layer1.1`)."""
        names = self._names_at.get(node, [])
        kernels = [n for n in names if is_kernel_layer(self.modules[n])]
        if prefer_kernel and kernels:
            return kernels[-1]
        return names[0] if names else None

    def _kernel_at(self, node: int) -> str | None:
        for n in self._names_at.get(node, []):
            if is_kernel_layer(self.modules[n]):
                return n
        return None

    def kernel_layers(self) -> list[str]:
        return [n for n in self.order if is_kernel_layer(self.modules[n]) and n in self.node_of]

    # -- the graph ---------------------------------------------------------------------------

    def _merge(self, node: int) -> tuple[int | None, bool]:
        """Where the inputs of a node with several of them meet again (the nearest node every
        path back to the input passes through), and whether a module ran on the way: a real
        merge (a concat of branches, a residual add) rather than one op written as several
        (F.local_response_norm divides x by a function of x)."""
        frontier = set(self.preds[node])
        real = False
        while len(frontier) > 1:
            n = max(frontier, key=lambda i: (self._depth[i], i))
            frontier.remove(n)
            real = real or n in self.called
            if n != INPUT:
                frontier.update(self.preds[n])
        return (next(iter(frontier)) if frontier else None), real

    def _single(self, node: int) -> tuple[int | None, bool]:
        """The one node `node` is computed from (through a whole fake merge), or None at the
        input; and whether a real merge stands in between (then None too)."""
        preds = self.preds.get(node, ())
        if not preds:
            return None, False
        if len(preds) == 1:
            return preds[0], False
        meet, real = self._merge(node)
        return (None, True) if real else (meet, False)

    def own_kernel(self, layer: str) -> str | None:
        """The conv or linear layer whose weights make `layer`'s units: itself, or the one
        before the ReLUs, BNs and pools that lead to it; None past a merge or at the input."""
        self.check(layer)
        node: int | None = self.node_of[layer]
        while node is not None and node != INPUT:
            kernel = self._kernel_at(node)
            if kernel is not None:
                return kernel
            node, _ = self._single(node)
        return None

    def _start(self, layer: str) -> tuple[int | None, set[int]]:
        kernel = self.own_kernel(layer)
        if kernel is None:
            return self.node_of[layer], {self.node_of[layer]}
        preds = self.preds.get(self.node_of[kernel], ())
        return (preds[0] if len(preds) == 1 else None), set()

    def input_layer(self, layer: str) -> str | None:
        """The layer whose units feed `layer`'s units (None: the image). Walking back from the
        input of `layer`'s own weights: the previous conv or linear layer of a chain, or at a
        concat or residual add, the last layer before it (the concat module, the block)."""
        node, skip = self._start(layer)
        seen: int | None = None
        while node is not None and node != INPUT:
            if node not in skip:
                if self._kernel_at(node) is not None:
                    return self._kernel_at(node)
                if node in self._names_at:
                    seen = node
            preds = self.preds.get(node, ())
            if len(preds) > 1:
                meet, real = self._merge(node)
                if real and seen is not None:
                    return self.name(seen)
                node = meet
                continue
            node = preds[0] if preds else None
        return None

    def output_layer(self, layer: str) -> str | None:
        """The first conv or linear layer (in execution order) that reads `layer`'s units
        through no other conv or linear layer."""
        self.check(layer)
        found: set[str] = set()
        start = self.node_of[layer]
        seen = {start}
        todo = [start]
        while todo:
            n = todo.pop()
            for s in self._succ.get(n, []):
                if s in seen:
                    continue
                seen.add(s)
                kernel = self._kernel_at(s)
                if kernel is not None:
                    found.add(kernel)
                else:
                    todo.append(s)
        if not found:
            return None
        return min(found, key=self.order.index)

    def _ancestors(self, node: int) -> set[int]:
        seen = {node}
        todo = [node]
        while todo:
            for p in self.preds.get(todo.pop(), ()):
                if p not in seen:
                    seen.add(p)
                    todo.append(p)
        return seen

    def depends(self, src: str, dst: str) -> bool:
        """Whether `dst`'s output is computed from `src`'s."""
        self.check(src)
        self.check(dst)
        return self.node_of[src] in self._ancestors(self.node_of[dst]) - {self.node_of[dst]}

    def check_order(self, src: str, dst: str) -> None:
        """An error unless `dst` is computed from `src` (one line: which way round it is)."""
        if self.depends(src, dst):
            return
        if src == dst or self.depends(dst, src):
            raise UserError(
                f"layer '{src}' does not come before '{dst}'",
                hint="write the earlier layer first: EARLIER -> LATER",
            )
        raise UserError(
            f"layer '{dst}' does not depend on '{src}': they are on parallel branches",
            hint="pick layers on one path of the model"
            + (f", e.g. {self.input_layer(dst)} -> {dst}" if self.input_layer(dst) else ""),
        )

    def path_nodes(self, src: str, dst: str) -> set[int]:
        """The nodes on some path from `src`'s output to `dst`'s (both ends left out)."""
        a, b = self.node_of[src], self.node_of[dst]
        back = self._ancestors(b)
        forward = {a}
        todo = [a]
        while todo:
            for s in self._succ.get(todo.pop(), []):
                if s not in forward and s in back:
                    forward.add(s)
                    todo.append(s)
        return (forward & back) - {a, b}

    def between(self, src: str, dst: str) -> list[str]:
        """Leaf modules on the way from `src` to `dst`, in execution order."""
        nodes = self.path_nodes(src, dst)
        names = {
            n
            for node in nodes
            for n in self._names_at.get(node, [])
            if not any(True for _ in self.modules[n].children())
        }
        return [n for n in self.order if n in names]

    def is_adjacent(self, src: str, dst: str) -> bool:
        """True when `dst`'s own weights read `src`'s channels through nothing but ReLUs,
        pools and padding: W[j, i] of that conv or linear layer is the connection."""
        kernel = self.own_kernel(dst)
        if kernel is None or self.input_layer(dst) != src:
            return False
        module = self.modules[kernel]
        channels = self.shapes[src][0]
        if isinstance(module, nn.Conv2d):
            if module.groups != 1 or module.in_channels != channels:
                return False
        elif isinstance(module, nn.Linear):
            if len(self.shapes[src]) != 1 or module.in_features != channels:
                return False
        else:
            return False
        inner = self.path_nodes(src, dst) - {self.node_of[kernel]}
        if self.node_of[dst] != self.node_of[kernel]:
            inner.add(self.node_of[dst])  # a BN after the conv rescales its units
        return all(n in self.passthrough for n in inner)

    def edges(self) -> dict[str, list[str]]:
        """layer -> the nearest layers its output is computed from (through unnamed ops)."""
        out: dict[str, list[str]] = {}
        for layer in self.order:
            if layer not in self.node_of:
                continue
            found: list[str] = []
            seen: set[int] = set()
            todo = list(self.preds.get(self.node_of[layer], ()))
            own = self.node_of[layer]
            while todo:
                n = todo.pop(0)
                if n in seen:
                    continue
                seen.add(n)
                name = self.name(n, prefer_kernel=False)
                if name is not None and n != own:
                    found.append(name)
                else:
                    todo.extend(self.preds.get(n, ()))
            out[layer] = sorted(dict.fromkeys(found), key=self.order.index)
        return out

    # -- compatibility with the layer-graph interface of the weights analysis ---------------

    @classmethod
    def of(cls, model: nn.Module, probe: torch.Tensor) -> "Dataflow":
        return cls.trace(model, probe)

    def previous_feature(self, layer: str) -> str | None:
        return self.input_layer(layer)

    def next_feature(self, layer: str) -> str | None:
        return self.output_layer(layer)


def _depths(preds: dict[int, tuple[int, ...]]) -> dict[int, int]:
    """Each node's longest distance from a node without inputs (a topological rank)."""
    depth: dict[int, int] = {}
    for start in preds:
        stack = [start]
        while stack:
            n = stack[-1]
            if n in depth:
                stack.pop()
                continue
            todo = [p for p in preds.get(n, ()) if p not in depth]
            if todo:
                stack.extend(todo)
                continue
            depth[n] = 1 + max((depth[p] for p in preds.get(n, ())), default=-1)
            stack.pop()
    return depth
