"""`$…$` and `$$…$$` (mdit-py-plugins' dollarmath) to MathML at build time, with latex2mathml.

No KaTeX, no CDN: the page carries MathML, which every current browser renders. latex2mathml
is lenient (it turns an unknown command into an identifier and accepts unbalanced braces), so
the checks here turn those silent mistakes into errors the author sees at the right line.
Most equations are converted by mathml.py, which writes the same MathML ~30x faster and hands
anything else (and every mistake) to latex2mathml.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable, Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.dollarmath import dollarmath_plugin

from circuitpress.errors import UserError

MATH_TYPES = ("math_inline", "math_inline_double", "math_block")
_NAMESPACE = ' xmlns="http://www.w3.org/1998/Math/MathML"'
# latex2mathml emits `<mi>\foo</mi>` (or mo/mtext) for a command it does not know.
_UNKNOWN_COMMAND = re.compile(r"<m[ion]>(\\[A-Za-z]+)</m[ion]>")


def math_plugin(md: MarkdownIt) -> None:
    # Pandoc's rules for inline `$`: no space inside the dollars and no digit right after the
    # closing one, so "costs $5 and $10" stays text.
    dollarmath_plugin(
        md, allow_labels=False, allow_space=False, allow_digits=False, double_inline=True
    )
    for name in MATH_TYPES:
        md.add_render_rule(name, _render)


def is_display(token: Token) -> bool:
    return token.type != "math_inline"


@lru_cache(maxsize=8192)
def to_mathml(latex: str, display: bool) -> str:
    """MathML for LaTeX; raises ValueError with a readable reason (callers add the location)."""
    source = latex.strip()
    fast = _fast_mathml(source, display)
    if fast is not None:
        return fast  # never unbalanced braces or an unknown command: those are left to us
    _check_braces(source)
    # Imported here: its serializer pulls in urllib and ssl, which most builds never need.
    from latex2mathml.converter import convert

    try:
        mathml = convert(source, display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises bare Exception subclasses for bad input
        reason = str(exc) or type(exc).__name__
        # "MissingSuperScriptOrSubscriptError" -> "missing super script or subscript"
        reason = re.sub(r"(?<!^)(?=[A-Z])", " ", reason.removesuffix("Error")).lower()
        raise ValueError(reason) from None
    unknown = _UNKNOWN_COMMAND.search(mathml)
    if unknown:
        raise ValueError(f"unknown LaTeX command {unknown.group(1)}")
    # The HTML parser puts <math> in the MathML namespace itself; the attribute is noise.
    return mathml.replace(_NAMESPACE, "", 1)


def _load_fast_mathml(source: str, display: bool) -> str | None:
    """mathml.fast_mathml, imported with the first equation: latex2mathml's modules and its
    table of symbols (~15 ms) load only in a build that has math."""
    global _fast_mathml
    from circuitpress.markup.mathml import fast_mathml

    _fast_mathml = fast_mathml
    return fast_mathml(source, display)


_fast_mathml: Callable[[str, bool], str | None] = _load_fast_mathml


_ESCAPED = re.compile(r"\\.", re.S)
_NOT_BRACES = bytes(b for b in range(256) if b not in b"{}")


def _check_braces(source: str) -> None:
    # The braces outside `\{`-style escapes, then every matched pair removed: what is left is
    # "}}{{", whose first "}" is where the depth first went below zero. An escape removes a
    # brace only where a backslash comes right before it. bytes.translate() keeps the braces
    # 2x faster than str.translate() (UTF-8 writes no character beyond ASCII with a byte below
    # 128).
    if "\\{" in source or "\\}" in source:
        source = _ESCAPED.sub("", source)
    braces = source.encode("utf-8", "surrogatepass").translate(None, _NOT_BRACES).decode()
    while "{}" in braces:
        braces = braces.replace("{}", "")
    if "}" in braces:
        raise ValueError("unbalanced '}'")
    if braces:
        raise ValueError("unclosed '{'")


def convert_token(token: Token, file: str, line: int) -> None:
    """Convert once at parse time (so `check` catches errors); render reads token.meta."""
    try:
        token.meta["mathml"] = to_mathml(token.content, is_display(token))
    except ValueError as exc:
        raise UserError(
            f"bad math: {exc}",
            file=file,
            line=line,
            hint=f"in ${'$' if is_display(token) else ''}{_short(token.content)}$",
        ) from None


def _short(latex: str) -> str:
    text = " ".join(latex.split())
    return text if len(text) <= 40 else text[:37] + "…"


def _render(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    token = tokens[idx]
    mathml = token.meta.get("mathml") if token.meta else None
    if mathml is None:  # markdown rendered outside a parse (a directive's own text)
        try:
            mathml = to_mathml(token.content, is_display(token))
        except ValueError as exc:
            raise UserError(f"bad math: {exc}") from None
    if token.type == "math_block":
        return mathml + "\n"
    return mathml
