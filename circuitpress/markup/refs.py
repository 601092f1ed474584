"""The feature-reference grammar, parsed without torch.

    REF       := [MODEL "/"] LAYER ":" UNIT ["@" Y "," X]
    UNIT      := INT | TERM (("+" | "-") TERM)* | "H" INT   (an attention head)
    TERM      := [NUMBER "*"] INT

`shapes-a/conv2:7`, `conv2:7@3,4`, `features.2.0:0.7*3-0.2*7`. The model may be left out where
the page's `model:` front matter, or a site with a single model, decides it. Resolution
against the real layers happens later (`resolve_ref`), from cached model facts.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from circuitpress.errors import UserError, choices_hint, did_you_mean
from circuitpress.requests import UnitRef

_REF = re.compile(
    r"^(?:(?P<model>[A-Za-z0-9_][A-Za-z0-9_.-]*)/)?"
    r"(?P<layer>[A-Za-z_][\w.]*|\d[\w.]*)"
    r":(?P<unit>[^@\s]+)"
    r"(?:@(?P<y>\d+),(?P<x>\d+))?$"
)
_TERM = re.compile(r"([+-]?)\s*(?:(\d+(?:\.\d*)?|\.\d+)\s*\*\s*)?(\d+)")

HINT = "write MODEL/LAYER:UNIT, e.g. shapes-a/conv2:7, conv2:7@3,4 or conv2:0.7*3-0.2*7"


def parse_ref(text: str, default_model: str | None = None) -> UnitRef:
    """Parse one reference. Raises UserError (without location; callers add it)."""
    text = text.strip()
    m = _REF.match(text)
    if not m:
        raise UserError(f"bad feature reference '{text}'", hint=HINT)
    model = m.group("model") or default_model
    if model is None:
        raise UserError(
            f"feature reference '{text}' names no model",
            hint="write MODEL/LAYER:UNIT, or set 'model:' in the front matter",
        )
    head = re.fullmatch(r"H(\d+)", m.group("unit"))
    if head is not None:  # an attention head of a language model: `blocks.1.attn:H3`
        if m.group("y") is not None:
            raise UserError(f"'{text}': a head has no position", hint="drop '@Y,X'")
        return UnitRef(model, m.group("layer"), ((int(head.group(1)), 1.0),), head=True)
    terms = _parse_unit(m.group("unit"), text)
    position = (int(m.group("y")), int(m.group("x"))) if m.group("y") is not None else None
    return UnitRef(model=model, layer=m.group("layer"), terms=terms, position=position)


def _parse_unit(unit: str, text: str) -> tuple[tuple[int, float], ...]:
    if unit.isdigit():
        return ((int(unit), 1.0),)
    pos = 0
    terms: list[tuple[int, float]] = []
    compact = unit.replace(" ", "")
    while pos < len(compact):
        m = _TERM.match(compact, pos)
        if not m or m.end() == pos or (terms and not m.group(1)):
            raise UserError(f"bad unit '{unit}' in feature reference '{text}'", hint=HINT)
        sign = -1.0 if m.group(1) == "-" else 1.0
        coef = float(m.group(2)) if m.group(2) else 1.0
        terms.append((int(m.group(3)), sign * coef))
        pos = m.end()
    if not terms:
        raise UserError(f"bad unit '{unit}' in feature reference '{text}'", hint=HINT)
    channels = [c for c, _ in terms]
    if len(set(channels)) != len(channels):
        raise UserError(f"channel repeated in direction '{unit}'", hint="name each channel once")
    return tuple(terms)


def parse_layer_ref(text: str, default_model: str | None = None) -> tuple[str, str]:
    """`MODEL/LAYER` (model optional when a default decides it) -> (model, layer)."""
    text = text.strip()
    m = re.fullmatch(r"(?:([A-Za-z0-9_][A-Za-z0-9_.-]*)/)?([A-Za-z_][\w.]*|\d[\w.]*)", text)
    if not m:
        raise UserError(
            f"bad layer reference '{text}'", hint="write MODEL/LAYER, e.g. shapes-a/conv1"
        )
    model = m.group(1) or default_model
    if model is None:
        raise UserError(f"layer reference '{text}' names no model", hint="write MODEL/LAYER")
    return model, m.group(2)


def resolve_ref(
    ref: UnitRef,
    models: Iterable[str],
    layers_of: Mapping[str, Mapping[str, Any]],
) -> None:
    """Check a reference against known models and their layers (`model -> layer -> info` with
    'units' and 'shape'). Raises UserError naming the nearest valid names."""
    model_names = list(models)
    if ref.model not in model_names:
        raise UserError(
            f"unknown model '{ref.model}' in '{ref}'", hint=choices_hint(ref.model, model_names)
        )
    layers = layers_of.get(ref.model, {})
    info = layers.get(ref.layer)
    if info is None:
        raise UserError(
            f"model '{ref.model}' has no layer '{ref.layer}'",
            hint=choices_hint(ref.layer, [n for n, i in layers.items() if i.get("units")]),
        )
    if info.get("error"):  # a block returning a tuple, a module never called (model facts)
        raise UserError(str(info["error"]), hint="name a module inside it that returns a tensor")
    heads = info.get("heads")
    if ref.head and not heads:
        raise UserError(
            f"'{ref}': layer '{ref.layer}' has no attention heads",
            hint=choices_hint(ref.layer, [n for n, i in layers.items() if i.get("heads")]),
        )
    if heads and not ref.head:
        raise UserError(
            f"'{ref}': the units of '{ref.layer}' are attention heads",
            hint=f"name a head as {ref.layer}:H0 to H{int(heads) - 1}",
        )
    if ref.head and not 0 <= ref.terms[0][0] < int(heads):
        raise UserError(
            f"head H{ref.terms[0][0]} out of range for {ref.model}/{ref.layer}",
            hint=f"it has heads H0 to H{int(heads) - 1}",
        )
    units = int(info["units"])
    for ch in ref.channels:
        if not 0 <= ch < units:
            raise UserError(
                f"unit {ch} out of range for {ref.model}/{ref.layer}",
                hint=f"it has units 0 to {units - 1}",
            )
    if ref.position is not None:
        shape = info.get("shape") or []
        if len(shape) != 3:
            raise UserError(
                f"'{ref}' gives a position but layer '{ref.layer}' is not spatial",
                hint="drop '@Y,X'",
            )
        y, x = ref.position
        if not (0 <= y < shape[1] and 0 <= x < shape[2]):
            raise UserError(
                f"position @{y},{x} out of range for {ref.model}/{ref.layer}",
                hint=f"its map is {shape[1]}x{shape[2]}: "
                f"Y from 0 to {shape[1] - 1}, X from 0 to {shape[2] - 1}",
            )


def layer_hint(layer: str, layers: Iterable[str]) -> str | None:
    return did_you_mean(layer, layers)
