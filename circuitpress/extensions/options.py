"""Option converters for `:key: value` directive options.

Each converter takes the option's text and returns its value, or raises ValueError whose text
explains the problem; markup turns that into a located error naming the option's line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from circuitpress.errors import choices_hint


@dataclass(frozen=True)
class Option:
    """One `:key: value` option. `convert` raises ValueError whose text explains the problem."""

    convert: Callable[[str], Any]
    default: Any = None
    help: str = ""


def flag(value: str) -> bool:
    v = value.strip().lower()
    if v in ("", "true", "yes", "on", "1"):
        return True
    if v in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got '{value}'")


def integer(lo: int, hi: int) -> Callable[[str], int]:
    def convert(value: str) -> int:
        try:
            n = int(value.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got '{value}'") from None
        if not lo <= n <= hi:
            raise ValueError(f"must be from {lo} to {hi}, got {n}")
        return n

    return convert


def number(lo: float, hi: float) -> Callable[[str], float]:
    def convert(value: str) -> float:
        try:
            x = float(value.strip())
        except ValueError:
            raise ValueError(f"expected a number, got '{value}'") from None
        if not lo <= x <= hi:
            raise ValueError(f"must be from {lo} to {hi}, got {x}")
        return x

    return convert


def choice(*values: str) -> Callable[[str], str]:
    def convert(value: str) -> str:
        v = value.strip()
        if v not in values:
            raise ValueError(f"unknown value '{v}' ({choices_hint(v, values)})")
        return v

    return convert


def text(value: str) -> str:
    return value.strip()


def label(value: str) -> str:
    v = value.strip()
    if not re.fullmatch(r"[A-Za-z][\w.:-]*", v):
        raise ValueError(f"bad label '{v}' (use letters, digits, '-', '_', starting with a letter)")
    return v
