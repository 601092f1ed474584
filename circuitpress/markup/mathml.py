"""The LaTeX most articles write, to exactly the MathML latex2mathml writes for it, ~10x faster.

latex2mathml tokenizes, builds a tree of nodes, builds an ElementTree from it and serializes
that: ~0.3 ms for a short equation, which made math most of a build's time. This module follows
the same steps for a subset (letters, numbers, operators, symbols and Greek, sub- and
superscripts, primes, `\\frac`, `\\binom`, `\\sqrt`, accents, `\\left…\\right`, the matrix
environments, spaces, `\\text`, `\\operatorname`, functions and limits, one-letter font
commands) with the same decisions, writing the string directly. Anything outside the subset,
and anything latex2mathml would treat as a mistake, returns None: the caller then asks
latex2mathml itself, so its output and its errors are unchanged. `tests/markup/test_mathml.py`
compares both on generated expressions.

Every rule below is latex2mathml's (walker._walk, converter._convert_*), restricted; its tables
(symbols, commands, operators) are imported, not copied.
"""

from __future__ import annotations

import re
from typing import Sequence

import latex2mathml
from latex2mathml import commands as C
from latex2mathml.converter import MOVABLE_LIMIT_TEXTS, NUMBER_PATTERN, OPERATORS
from latex2mathml.symbols_parser import SYMBOLS

__all__ = ["fast_mathml"]


class Unsupported(Exception):
    """Outside the subset: latex2mathml decides."""


class Node:
    """walker.Node, for the subset: token, children, delimiter, text, modifier."""

    __slots__ = ("token", "children", "delimiter", "text", "modifier")

    def __init__(
        self,
        token: str,
        children: Sequence[str | Node] | None = None,
        delimiter: str | None = None,
        text: str | None = None,
        modifier: str | None = None,
    ):
        self.token, self.children, self.delimiter = token, children, delimiter
        self.text, self.modifier = text, modifier


# -- the tokens ----------------------------------------------------------------------------------

# tokenizer.PATTERN with its alternatives grouped by first character (an alternative that cannot
# start with a character never matches there, so the order within each group is all that
# counts) and without capture groups: findall then returns each match as one string, 4x faster
# than PATTERN.finditer. `\verb` is left to the command alternative, and refused below.
_TOKEN = re.compile(
    r"[a-zA-Z]"
    r"|\\(?:[\\\[\]{}\s!,:>;|_%#$&]"
    r"|(?:begin|end)\s*{[a-zA-Z]+\*?}"
    r"|operatorname(?:withlimits|\*)?\s*{[a-zA-Z\s*]+\*?\s*}"
    r"|(?:cla(?:p|ss)|color(?!box)|emph|fbox|hbox|href|llap|mbox|rlap|style|tag\*?"
    r"|text(?:bf|color|it|md|normal|rm|sf|tt|up)?|underbar)\s*{[^}]*}"
    r"|[cdt]?frac\s*[.\d]\s*[.\d]?"
    r"|math(?!ring|bin|close|inner|op|open|ord|punct|rel|strut)[a-z]+{[a-zA-Z]}"
    r"|[a-zA-Z]+)?"
    r"|[_^]\d?"
    r"|-?\d+(?:\.\d+)?\s*(?:in|mm|cm|pt|em|ex|pc|bp|dd|cc|sp|mu)"
    r"|\d+(?:\.\d+)?"
    r"|\.\d*"
    r"|%[^\n]+"
    r"|\S"
)
# What _TOKEN was derived from (tests/markup/test_mathml.py checks it).
PATTERN_SHA256 = "27cadabc40572705936869603419e816513cd834d8ba33b685fe1ec1049c1a0f"
_UNITS = ("in", "mm", "cm", "pt", "em", "ex", "pc", "bp", "dd", "cc", "sp", "mu")


def tokens(latex: str) -> list[str]:
    """tokenizer.tokenize(latex) as a list; Unsupported for `\verb` and dimensions."""
    out: list[str] = []
    append = out.append
    for token in _TOKEN.findall(latex):
        if len(token) == 1:
            if token != "%":  # tokenize() drops a % even with nothing after it
                append(token)  # a letter, a character, or a lone backslash
        elif token[0] == "\\":
            if not token[1].isalpha():
                append(token)  # \, \{ \\ …
            elif not token[-1].isalpha():  # ends in } or in \frac's digits
                out.extend(_compound(token))
            elif token.startswith(C.VERB):
                raise Unsupported
            elif token.startswith(C.MATH) and token not in C.MATH_NON_FONT_COMMANDS:
                symbol = SYMBOLS.get(token)
                append(f"&#x{symbol};" if symbol else token)
            else:
                append(token)
        elif token[0] in "_^":
            append(token[0])
            append(token[1])
        elif token[0] == "%":
            continue  # a comment
        elif token[0] == "-" or token[-1].isalpha():
            raise Unsupported  # a dimension
        else:
            append(token)  # a number
    return out


def _compound(token: str) -> list[str]:
    """The tokens of one match of an alternative with several groups in PATTERN."""
    if token.startswith((C.BEGIN, C.END, C.OPERATORNAME)):
        return ["".join(token.split(" "))]
    brace = token.find("{")
    if token.startswith(C.MATH):  # \mathbf{W}: one symbol when the font has it
        command = token[:brace]
        if command not in C.MATH_NON_FONT_COMMANDS:
            symbol = SYMBOLS.get(token)
            if symbol:
                return [f"&#x{symbol};"]
        return [command, "{", token[brace + 1], "}"]
    if brace < 0:  # \frac12
        name = token[: 5 if token[1] == "f" else 6]
        captured = [name, *(c for c in token[len(name) :] if not c.isspace())]
    else:  # \text{…}
        captured = [token[:brace].rstrip(), token[brace + 1 : -1]]
    out = []
    for piece in captured:  # tokenize()'s own loop
        if piece.startswith("%"):
            break
        if piece.endswith(_UNITS) and piece[0:1].isdigit():
            raise Unsupported
        if piece.startswith((C.BEGIN, C.END, C.OPERATORNAME)):
            piece = "".join(piece.split(" "))
        out.append(piece)
    return out


# -- the tree ------------------------------------------------------------------------------------

_FRACTIONS = frozenset((C.FRAC, C.DFRAC, C.TFRAC, C.BINOM))
# Over/underbraces change how a following script is drawn; \underbar is tokenized as text.
_ACCENTS = frozenset(set(C.DIACRITICS) - {C.OVERBRACE, C.UNDERBRACE, C.MATHRING, C.UNDERBAR})
_TEXTS = frozenset(
    (
        C.TEXT,
        C.TEXTBF,
        C.TEXTIT,
        C.TEXTMD,
        C.TEXTNORMAL,
        C.TEXTRM,
        C.TEXTSF,
        C.TEXTTT,
        C.TEXTUP,
        C.EMPH,
    )
)
_ENVIRONMENTS = {
    name: rf"\{name}" for name in ("matrix", "pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix")
}
_SPACES = frozenset(
    (
        C.COLON,
        C.COMMA,
        C.SEMICOLON,
        C.EXCLAMATION,
        C.GREATERTHAN,
        C.ENSPACE,
        C.QUAD,
        C.QQUAD,
        C.THINSPACE,
        C.THICKSPACE,
        C.NEGTHINSPACE,
        C.NEGMEDSPACE,
        C.NEGTHICKSPACE,
        C.SPACEUPPER,
        C.DOUBLEBACKSLASH,
    )
)
# Commands that are plain symbols to the walker although latex2mathml names them.
_PLAIN_COMMANDS = frozenset(
    {
        C.SUMMATION,
        C.PRODUCT,
        C.INTEGRAL,
        C.LBRACE,
        C.NOBREAKSPACE,
        C.SPACE,
        *C.FUNCTIONS,
        *C.LIMIT,
        *_SPACES,
        *(set(MOVABLE_LIMIT_TEXTS) - {C.GCD}),
    }
)


def _named_commands() -> frozenset[str]:
    """Every command latex2mathml names anywhere: each may have a rule of its own."""
    names: set[str] = {r"\of", "\\"}
    for value in vars(C).values():
        if isinstance(value, str):
            names.add(value)
        elif isinstance(value, (dict, tuple, list, set, frozenset)):
            names.update(v for v in value if isinstance(v, str))
    return frozenset(n for n in names if n.startswith("\\"))


# A command the walker or converter treats specially and this module does not.
_SPECIAL = _named_commands() - _PLAIN_COMMANDS
_STRUCTURAL = frozenset(("}", "&", C.RIGHT, C.MIDDLE))
_RAW_DELIMITERS = frozenset("()[]|/.")


class _Walker:
    """walker._walk over a token list, for the subset. A plain symbol stays a string."""

    def __init__(self, toks: list[str]):
        self.toks, self.pos = toks, 0

    def next_token(self) -> str:
        if self.pos >= len(self.toks):
            raise Unsupported
        token = self.toks[self.pos]
        self.pos += 1
        return token

    def argument(self, terminator: str | None, limit: int) -> list[str | Node]:
        """The next `limit` nodes (a command's arguments), all present."""
        nodes = self.walk(terminator, limit, False)
        if len(nodes) != limit:
            raise Unsupported
        return nodes

    def walk(self, terminator: str | None, limit: int, block: bool) -> list[str | Node]:
        group: list[str | Node] = []
        toks, plain = self.toks, _SYMBOL_HTML
        end = len(toks)
        if self.pos >= end:
            raise Unsupported  # NoAvailableTokensError
        while self.pos < end:
            token = toks[self.pos]
            self.pos += 1
            node: str | Node
            if token in plain:  # never a terminator
                node = token
            elif token == terminator:
                if limit:  # an argument that closes its parent: latex2mathml's odd corner
                    raise Unsupported
                delimiter = self.delimiter() if terminator == C.RIGHT else None
                group.append(Node(token, None, delimiter))
                break
            elif token in _STRUCTURAL:
                if token == "&" and terminator is not None and terminator.startswith(C.END):
                    node = Node(token)
                else:
                    raise Unsupported
            elif token == "{":
                children = self.walk("}", 0, False)
                if not children or _token(children[-1]) != "}":
                    raise Unsupported
                node = Node(C.BRACES, children[:-1])
            elif token == C.SUBSCRIPT or token == C.SUPERSCRIPT:
                node = self.script(token, group, terminator, block)
            elif token == C.APOSTROPHE:
                node = self.prime(group)
            elif token in _FRACTIONS:
                node = Node(token, self.argument(terminator, 2))
            elif token in _ACCENTS:
                node = Node(token, self.argument(terminator, 1))
            elif token == C.SQRT:
                child = self.argument(None, 1)
                if _token(child[0]) == "[":
                    raise Unsupported  # \sqrt[n]
                node = Node(token, child)
            elif token in _TEXTS:
                text = self.next_token()
                if "&" in text or "<" in text or ">" in text:
                    raise Unsupported  # latex2mathml writes these raw
                node = Node(token, None, None, text)
            elif token == C.LEFT:
                delimiter = self.delimiter()
                children = self.walk(C.RIGHT, 0, False)
                if not children or _token(children[-1]) != C.RIGHT:
                    raise Unsupported
                node = Node(token, children, delimiter)
            elif token.startswith(C.BEGIN):
                node = self.environment(token, block)
            elif token in _SPECIAL or token.startswith((C.MATH, C.END)):
                raise Unsupported
            else:
                _plain(token)  # Unsupported unless it is a symbol the converter knows
                node = token
            group.append(node)
            if limit and len(group) >= limit:
                break
        return group

    def delimiter(self) -> str:
        token = self.next_token()
        if token in SYMBOLS or token in _RAW_DELIMITERS:
            return token
        raise Unsupported

    def script(
        self, token: str, group: list[str | Node], terminator: str | None, block: bool
    ) -> Node:
        if not group:
            raise Unsupported  # an empty base
        previous = group.pop()
        before = _token(previous)
        if before in ("&", C.DOUBLEBACKSLASH) or before == token:
            raise Unsupported  # double sub/superscript, or a prime followed by ^
        (child,) = self.argument(terminator, 1)
        if isinstance(previous, Node) and previous.children is not None:
            parts = previous.children
            if token == C.SUBSCRIPT and before == C.SUPERSCRIPT:
                return Node(C.SUBSUP, (parts[0], child, parts[1]), None, None, previous.modifier)
            if token == C.SUPERSCRIPT and before == C.SUBSCRIPT:
                return Node(C.SUBSUP, (*parts, child), None, None, previous.modifier)
        modifier = C.LIMITS if block and before in (C.SUMMATION, C.PRODUCT) else None
        return Node(token, (previous, child), None, None, modifier)

    def prime(self, group: list[str | Node]) -> Node:
        if not group:
            raise Unsupported
        previous = group.pop()
        before = _token(previous)
        if before in ("&", C.DOUBLEBACKSLASH, C.SUPERSCRIPT):
            raise Unsupported  # '' and x^a' are latex2mathml's prime upgrades or errors
        if before == C.SUBSCRIPT and isinstance(previous, Node) and previous.children is not None:
            return Node(C.SUBSUP, (*previous.children, _prime()), None, None, previous.modifier)
        return Node(C.SUPERSCRIPT, (previous, _prime()))

    def environment(self, token: str, block: bool) -> Node:
        name = token[len(C.BEGIN) + 1 : -1] if token.startswith(C.BEGIN + "{") else ""
        command = _ENVIRONMENTS.get(name)
        if command is None:
            raise Unsupported
        end = rf"{C.END}{{{name}}}"
        children = self.walk(end, 0, block)
        if not children or _token(children[-1]) != end:
            raise Unsupported
        children = children[:-1]
        if children:
            first = children[0]
            if _token(first) == "[" or (
                isinstance(first, Node)
                and first.token == C.BRACES
                and first.children is not None
                and all(_token(c) in "lcr|" for c in first.children)
            ):
                raise Unsupported  # a column specification
        return Node(command, children)


def _token(item: str | Node) -> str:
    return item if isinstance(item, str) else item.token


def _prime() -> Node:
    return Node(C.PRIME)


# -- the MathML ----------------------------------------------------------------------------------

_ENTITY = re.compile(r"&#x[0-9A-Fa-f]+;\Z")
_FENCES = frozenset(("(", ")", "[", "]", "|", r"\|", r"\{", r"\}", r"\surd"))
_SPACE_TEXT = (r"\ ", "~", C.NOBREAKSPACE, C.SPACE)
_BINOM_SIZE = ' minsize="2.047em" maxsize="2.047em"'
_LPAREN, _RPAREN = r"\lparen", r"\rparen"
_MATRIX_FENCES = {
    r"\pmatrix": (r"\lparen", r"\rparen"),
    r"\bmatrix": (r"\lbrack", r"\rbrack"),
    r"\Bmatrix": (r"\lbrace", r"\rbrace"),
    r"\vmatrix": (r"\vert", r"\vert"),
    r"\Vmatrix": (r"\Vert", r"\Vert"),
}


def _attrs(attributes: dict[str, str]) -> str:
    return "".join(f' {k}="{v}"' for k, v in attributes.items())


def _element(tag: str, attributes: str, inner: str) -> str:
    # ElementTree writes an element without text or children as <tag />.
    if not inner:
        return f"<{tag}{attributes} />"
    return f"<{tag}{attributes}>{inner}</{tag}>"


def _raw(text: str) -> str:
    """Text as latex2mathml's serialization leaves it (escaped, then unescaped)."""
    if ("&" in text and not _ENTITY.match(text)) or "<" in text or ">" in text:
        raise Unsupported
    return text


def _code(command: str) -> str:
    code = SYMBOLS.get(command)
    return f"&#x{code};" if code else command


def _symbol(token: str) -> str:
    """converter._convert_symbol without a font."""
    symbol = SYMBOLS.get(token)
    if NUMBER_PATTERN.match(token):
        return f"<mn>{_raw(token)}</mn>"
    if token in OPERATORS:
        text = _raw(token) if symbol is None else f"&#x{symbol};"
        attributes = ""
        if token == r"\|":
            attributes += ' fence="false"'
        if token == r"\smallint":
            attributes += ' largeop="false"'
        if token in _FENCES:
            attributes += ' stretchy="false"'
        return _element("mo", attributes, text)
    if symbol:
        try:
            code = int(symbol, 16)
        except ValueError:
            raise Unsupported from None
        if 0x2200 <= code <= 0x22FF or 0x2190 <= code <= 0x21FF:
            return f"<mo>&#x{symbol};</mo>"
    if token in _SPACE_TEXT:
        return "<mtext>&#x000A0;</mtext>"
    if token in MOVABLE_LIMIT_TEXTS:
        return f'<mo movablelimits="true">{MOVABLE_LIMIT_TEXTS[token]}</mo>'
    if token.startswith(C.OPERATORNAME):
        for prefix in (C.OPERATORNAMEWITHLIMITS, C.OPERATORNAMESTAR, C.OPERATORNAME):
            if token.startswith(prefix):
                attributes = ' movablelimits="true"' if prefix != C.OPERATORNAME else ""
                return _element("mo", attributes, _raw(token[len(prefix) + 1 : -1]))
    if token.startswith("\\"):
        if symbol:
            return f"<mi>&#x{symbol};</mi>"
        if token in C.FUNCTIONS:
            return f"<mi>{token[1:]}</mi>"
        raise Unsupported  # an unknown command: latex2mathml's output is checked for it
    return _element("mi", "", _raw(token))


# The MathML of each plain symbol met so far (a few hundred in a site).
_SYMBOL_HTML: dict[str, str] = {}


def _plain(token: str) -> str:
    html = _SYMBOL_HTML.get(token)
    if html is None:
        html = _node(Node(token))
        if len(_SYMBOL_HTML) < 20_000:  # distinct numbers are the only unbounded kind
            _SYMBOL_HTML[token] = html
    return html


def _render(nodes: Sequence[str | Node]) -> str:
    plain = _SYMBOL_HTML
    return "".join([(plain.get(n) or _plain(n)) if isinstance(n, str) else _node(n) for n in nodes])


def _node(node: Node) -> str:
    """converter._convert_group for one node, then _convert_command or _convert_symbol."""
    token, children = node.token, node.children
    if token == C.BRACES:
        return _element("mrow", "", _render(children or ()))
    if token not in C.CONVERSION_MAP:
        if children is not None:
            raise Unsupported
        return _symbol(token)
    tag, attributes = C.CONVERSION_MAP[token]
    if token == C.SUBSUP:
        if node.modifier == C.LIMITS:
            tag = "munderover"
        return f"<{tag}>{_render(children or ())}</{tag}>"
    if token == C.SUPERSCRIPT or token == C.SUBSCRIPT:
        if node.modifier == C.LIMITS:
            tag = "mover" if token == C.SUPERSCRIPT else "munder"
        return f"<{tag}>{_render(children or ())}</{tag}>"
    attrs = _attrs(attributes)
    if token in _FRACTIONS:
        inner = _element(tag, attrs, _render(children or ()))
        if token == C.DFRAC:
            return f'<mstyle displaystyle="true" scriptlevel="0">{inner}</mstyle>'
        if token == C.TFRAC:
            return f'<mstyle displaystyle="false" scriptlevel="0">{inner}</mstyle>'
        if token == C.BINOM:
            # The parent's displaystyle would pick 1.2em; no parent in the subset sets it.
            left, right = _code(_LPAREN), _code(_RPAREN)
            return f"<mo{_BINOM_SIZE}>{left}</mo>{inner}<mo{_BINOM_SIZE}>{right}</mo>"
        return inner
    if token == C.LEFT or token == C.RIGHT:
        text = "" if node.delimiter in (None, ".") else _code(node.delimiter or "")
        fence = _element(tag, attrs, _raw(text))
        if token == C.RIGHT:
            return fence
        return f"<mrow>{fence}{_render(children or ())}</mrow>"
    if token in _ACCENTS:
        mark, mark_attributes = C.DIACRITICS[token]
        body = _render(children or ())
        return f"<{tag}{attrs}>{body}<mo{_attrs(mark_attributes)}>{mark}</mo></{tag}>"
    if token in _TEXTS:  # the walker refused text with &, < or >
        return _element(tag, attrs, (node.text or "").replace(" ", "&#x000A0;"))
    if token == C.SQRT:
        return f"<{tag}>{_render(children or ())}</{tag}>"
    if token in C.LIMIT:
        return f"<{tag}>{token[1:]}</{tag}>"
    if token in _SPACES:
        return f"<{tag}{attrs} />"
    if token in _MATRIX_FENCES or token == r"\matrix":
        return _matrix(token, children or ())
    raise Unsupported


def _matrix(command: str, children: Sequence[str | Node]) -> str:
    """converter._convert_matrix without column alignment, lines or numbers."""
    rows: list[list[str]] = []
    cell: list[str] | None = None
    for node in children:
        if not rows:
            rows.append([])
        if cell is None:
            cell = []
            rows[-1].append("")
        kind = _token(node)
        if kind == "&":
            rows[-1][-1] = "".join(cell)
            cell = []
            rows[-1].append("")
        elif kind == C.DOUBLEBACKSLASH:
            rows[-1][-1] = "".join(cell)
            cell = []
            rows.append([""])
        else:
            cell.append(_plain(node) if isinstance(node, str) else _node(node))
    if cell is not None:
        if not cell:
            rows.pop()  # an empty last cell removes its whole row
        else:
            rows[-1][-1] = "".join(cell)
    body = "".join("<mtr>" + "".join(_element("mtd", "", c) for c in r) + "</mtr>" for r in rows)
    table = _element("mtable", "", body)
    fences = _MATRIX_FENCES.get(command)
    if fences is None:
        return table
    return f"<mo>{_code(fences[0])}</mo>{table}<mo>{_code(fences[1])}</mo>"


# The latex2mathml versions whose output this module was compared with; any other one is
# used alone until tests/markup/test_mathml.py passes with it and it is added here.
VERIFIED = ("3.81.",)
ENABLED = latex2mathml.__version__.startswith(VERIFIED)


def fast_mathml(latex: str, display: bool) -> str | None:
    """latex2mathml's `convert(latex, display=…)` without the xmlns attribute, or None when
    the input is outside the subset (or a mistake): then ask latex2mathml."""
    if not ENABLED:
        return None
    try:
        walker = _Walker(tokens(latex))
        nodes = walker.walk(None, 0, display)
        body = _render(nodes)
    except Unsupported:
        return None
    mode = "block" if display else "inline"
    return f'<math display="{mode}">{_element("mrow", "", body)}</math>'
