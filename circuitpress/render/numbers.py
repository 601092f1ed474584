"""Numbers as a reader sees them: one formatter for every number a figure or page shows.

Three significant digits, a true minus sign (U+2212, as typeset mathematics has it, not the
hyphen), digit groups of large numbers and the space before a unit as narrow no-break spaces
(U+202F, a thin space that never breaks a line: "norm 0.919" stays on one line). Numbers shown
together (a row of examples, before and after of a claim) share their decimals, so a column
reads evenly: `shared([-0.302, 6.06, 12.4])` is `["−0.3", "6.1", "12.4"]`.

Attributes (`data-value`, `data-correlation`) keep machine-readable ASCII (`render.svg.num`);
this module is for text.
"""

from __future__ import annotations

import math
from typing import Iterable

MINUS = "\u2212"
THIN = "\u202f"  # narrow no-break space: a thin space that does not break a line
DIGITS = 3
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")  # plain text: no markup to escape


def _finite(value: float) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


def decimals_for(value: float, digits: int = DIGITS) -> int:
    """Decimals that give `value` `digits` significant digits (0 for large numbers)."""
    v = abs(float(value))
    if v == 0 or not math.isfinite(v):
        return 0
    return max(0, digits - 1 - math.floor(math.log10(v)))


def _group(integer: str) -> str:
    """12345 -> 12 345 with thin spaces; four-digit numbers stay whole (1234), as style
    guides do."""
    if len(integer) <= 4:
        return integer
    head = len(integer) % 3 or 3
    groups = [integer[:head]] + [integer[i : i + 3] for i in range(head, len(integer), 3)]
    return THIN.join(groups)


def fixed(value: float, decimals: int) -> str:
    """`value` with `decimals` decimals, a true minus sign and grouped digits."""
    v = _finite(value)
    if v is None:
        return "n/a" if value != value else (MINUS if value < 0 else "") + "∞"
    text = f"{abs(v):.{max(0, decimals)}f}"
    integer, _, fraction = text.partition(".")
    body = _group(integer) + (f".{fraction}" if fraction else "")
    zero = float(text) == 0.0
    return (MINUS if v < 0 and not zero else "") + body


def fmt(value: float, digits: int = DIGITS, *, trim: bool = False) -> str:
    """One number with `digits` significant digits: 0.302, 6.06, 12.4, −0.00412; whole
    numbers from 10**digits on (1234, 12 346: no digits are dropped before the point). Very
    small numbers (below 0.001) use ×10 notation so they stay short. `trim` drops trailing
    zeros, for numbers the author wrote (a threshold of 50 %, not 50.0 %)."""
    v = _finite(value)
    if v is None:
        return fixed(value, 0)
    if abs(v) >= 10**digits:
        return fixed(v, 0)
    if v != 0 and abs(v) < 1e-3:
        exponent = math.floor(math.log10(abs(v)))
        mantissa = v / 10**exponent
        if round(abs(mantissa), digits - 1) >= 10:  # 9.996e-5 rounds to 10.0
            exponent, mantissa = exponent + 1, mantissa / 10
        power = str(exponent).translate(_SUPERSCRIPT)
        return f"{fixed(mantissa, digits - 1)}×10{power}"
    # Rounding may add a digit (9.996 -> 10.0): decimals of the rounded value.
    rounded = float(f"{v:.{digits}g}")
    text = fixed(rounded, decimals_for(rounded, digits))
    return text.rstrip("0").rstrip(".") if trim and "." in text else text


def shared(values: Iterable[float], digits: int = DIGITS) -> list[str]:
    """Numbers shown together, with the decimals that give the largest `digits` significant
    digits (a column of values reads evenly)."""
    vs = [float(v) for v in values]
    finite = [abs(v) for v in vs if math.isfinite(v) and v != 0]
    if not finite:
        return [fixed(v, 0) for v in vs]
    decimals = decimals_for(float(f"{max(finite):.{digits}g}"), digits)
    return [fixed(v, decimals) for v in vs]


def percent(value: float, digits: int = DIGITS, *, signed: bool = False, trim: bool = False) -> str:
    """A percentage (`value` already in percent): `−52.3 %` with a thin space before the sign
    (`+` in front of a positive change when `signed`)."""
    text = fmt(value, digits, trim=trim)
    if signed and float(value) > 0:
        text = "+" + text
    return f"{text}{THIN}%"


def with_unit(value: float, unit: str, digits: int = DIGITS) -> str:
    """A number and its unit joined by a thin no-break space ("12.4 px"); degrees stick to
    the number ("45°")."""
    text = fmt(value, digits)
    return f"{text}{unit}" if unit in ("°", "") else f"{text}{THIN}{unit}"
