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
of symbols and commands are imported, the converter's three small ones copied (see below).
"""

from __future__ import annotations

import re

import latex2mathml
from latex2mathml import commands as C
from latex2mathml.symbols_parser import SYMBOLS

__all__ = ["fast_mathml"]

# latex2mathml.converter's own tables, copied (tests check they are equal) so that a build
# whose math all takes this path never imports the converter: its serializer pulls in urllib,
# http.client and ssl.
# fmt: off
OPERATORS = frozenset((
    "+", "-", "*", "/", "(", ")", "=", ",", "?", "[", "]", "|", r"\|", "!", r"\{", r"\}", r">",
    r"<", r".", r"\ast", r"\bigotimes", r"\cdot", r"\centerdot", r"\div", r"\dots", r"\dotsc",
    r"\dotso", r"\gt", r"\ldotp", r"\lt", r"\lvert", r"\lVert", r"\lvertneqq", r"\ngeqq",
    r"\omicron", r"\rvert", r"\rVert", r"\S", r"\smallfrown", r"\smallint", r"\smallsmile",
    r"\surd", r"\times", r"\varsubsetneqq", r"\varsupsetneqq",
))
# fmt: on
NUMBER_PATTERN = re.compile(r"\d+(\.\d+)?")
MOVABLE_LIMIT_TEXTS = {
    C.ARGMAX: "arg&#x02009;max",
    C.ARGMIN: "arg&#x02009;min",
    C.DETERMINANT: "det",
    C.GCD: "gcd",
    C.INJLIM: "inj&#x02006;lim",
    C.INTOP: "&#x0222B;",
    C.LIMINF: "lim&#x02006;inf",
    C.LIMSUP: "lim&#x02006;sup",
    C.PLIM: "plim",
    C.PR: "Pr",
    C.PROJLIM: "proj&#x02006;lim",
    C.VARINJLIM: "inj&#x02006;lim",
    C.VARLIMINF: "lim&#x02006;inf",
    C.VARLIMSUP: "lim&#x02006;sup",
    C.VARPROJLIM: "proj&#x02006;lim",
}


class Unsupported(Exception):
    """Outside the subset: latex2mathml decides."""


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

_FRACTION_COMMANDS = frozenset((C.FRAC, C.DFRAC, C.TFRAC, C.BINOM))
# Over/underbraces change how a following script is drawn; \underbar is tokenized as text.
_ACCENT_COMMANDS = frozenset(
    set(C.DIACRITICS) - {C.OVERBRACE, C.UNDERBRACE, C.MATHRING, C.UNDERBAR}
)
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


class Node:
    """A node of walker._walk's tree with its MathML already written: its token, the MathML,
    for a sub- or superscript its (base, script) MathML and modifier (a later script joins
    them into one msubsup), and for a {group} its items (an environment's first group may be
    a column specification)."""

    __slots__ = ("token", "html", "parts", "modifier", "group")

    def __init__(
        self,
        token: str,
        html: str,
        parts: tuple[str, ...] | None = None,
        modifier: str | None = None,
        group: list[str | Node] | None = None,
    ):
        self.token, self.html, self.parts, self.modifier, self.group = (
            token,
            html,
            parts,
            modifier,
            group,
        )


class _Walker:
    """walker._walk over the tokens, for the subset, writing MathML as it goes (the converter's
    output for a node depends only on the node here: no fonts, no style from the parent)."""

    def __init__(self, toks: list[str]):
        self.it = iter(toks)

    def next_token(self) -> str:
        token = next(self.it, None)
        if token is None:
            raise Unsupported
        return token

    def argument(self, terminator: str | None, limit: int) -> list[str | Node]:
        """The next `limit` nodes (a command's arguments), all present."""
        nodes = self.walk(terminator, limit, False)
        if len(nodes) != limit or _AMPERSAND in nodes:
            raise Unsupported  # too few, or a matrix's & as an argument
        return nodes

    def walk(self, terminator: str | None, limit: int, block: bool) -> list[str | Node]:
        group: list[str | Node] = []
        append, plain = group.append, _SYMBOL_HTML
        for token in self.it:  # shared with the nested walks, as latex2mathml's iterator is
            node: str | Node
            if token in plain:  # never a terminator
                node = token
            elif token == terminator:
                if limit:  # an argument that closes its parent: latex2mathml's odd corner
                    raise Unsupported
                html = _fence(C.RIGHT, self.delimiter()) if token == C.RIGHT else ""
                append(Node(token, html))
                break
            elif token in _STRUCTURAL:
                if token == "&" and terminator is not None and terminator.startswith(C.END):
                    node = _AMPERSAND
                else:
                    raise Unsupported
            elif token == "{":
                children = self.walk("}", 0, False)
                if _token(children[-1]) != "}":
                    raise Unsupported
                del children[-1]
                node = Node(C.BRACES, _element("mrow", "", _join(children)), None, None, children)
            elif token == C.SUBSCRIPT or token == C.SUPERSCRIPT:
                node = self.script(token, group, terminator, block)
            elif token == C.APOSTROPHE:
                node = self.prime(group)
            elif token in _FRACTIONS:
                before, tag, attrs, after = _FRACTIONS[token]
                inner = _join(self.argument(terminator, 2))
                node = Node(token, f"{before}{_element(tag, attrs, inner)}{after}")
            elif token in _ACCENTS:
                opening, closing = _ACCENTS[token]
                child = self.argument(terminator, 1)[0]
                node = Node(token, f"{opening}{_html(child)}{closing}")
            elif token == C.SQRT:
                child = self.argument(None, 1)[0]
                if _token(child) == "[":
                    raise Unsupported  # \sqrt[n]
                node = Node(token, f"<msqrt>{_html(child)}</msqrt>")
            elif token in _TEXTS:
                text = self.next_token()
                if "&" in text or "<" in text or ">" in text:
                    raise Unsupported  # latex2mathml writes these raw
                tag, attributes = C.CONVERSION_MAP[token]
                html = _element(tag, _attrs(attributes), text.replace(" ", "&#x000A0;"))
                node = Node(token, html)
            elif token == C.LEFT:
                fence = _fence(C.LEFT, self.delimiter())
                children = self.walk(C.RIGHT, 0, False)
                if _token(children[-1]) != C.RIGHT:
                    raise Unsupported
                node = Node(token, f"<mrow>{fence}{_join(children)}</mrow>")
            elif token.startswith(C.BEGIN):
                node = self.environment(token, block)
            elif token in _SPECIAL or token.startswith((C.MATH, C.END)):
                raise Unsupported
            else:
                _plain(token)  # Unsupported unless it is a symbol the converter knows
                node = token
            append(node)
            if limit and len(group) >= limit:
                break
        if not group:
            raise Unsupported  # NoAvailableTokensError
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
        script = child.html if isinstance(child, Node) else _plain(child)
        if isinstance(previous, Node) and previous.parts is not None:
            base, other = previous.parts
            parts = (base, script, other) if token == C.SUBSCRIPT else (base, other, script)
            return _subsup(parts, previous.modifier)
        modifier = C.LIMITS if block and before in (C.SUMMATION, C.PRODUCT) else None
        base = previous.html if isinstance(previous, Node) else _plain(previous)
        if token == C.SUBSCRIPT:
            tag = "munder" if modifier else "msub"
        else:
            tag = "mover" if modifier else "msup"
        return Node(token, f"<{tag}>{base}{script}</{tag}>", (base, script), modifier)

    def prime(self, group: list[str | Node]) -> Node:
        if not group:
            raise Unsupported
        previous = group.pop()
        before = _token(previous)
        if before in ("&", C.DOUBLEBACKSLASH, C.SUPERSCRIPT):
            raise Unsupported  # '' and x^a' are latex2mathml's prime upgrades or errors
        prime = _plain(C.PRIME)
        if isinstance(previous, Node) and previous.parts is not None:  # x_1'
            return _subsup((*previous.parts, prime), previous.modifier)
        base = _html(previous)
        return Node(C.SUPERSCRIPT, f"<msup>{base}{prime}</msup>", (base, prime))

    def environment(self, token: str, block: bool) -> Node:
        name = token[len(C.BEGIN) + 1 : -1] if token.startswith(C.BEGIN + "{") else ""
        command = _ENVIRONMENTS.get(name)
        if command is None:
            raise Unsupported
        end = rf"{C.END}{{{name}}}"
        children = self.walk(end, 0, block)
        if _token(children[-1]) != end:
            raise Unsupported
        del children[-1]
        if children:
            first = children[0]
            if first == "[" or (
                isinstance(first, Node)
                and first.group is not None
                and all(isinstance(c, str) and c in "lcr|" for c in first.group)
            ):
                raise Unsupported  # a column specification
        return Node(command, _matrix(command, children))


_AMPERSAND = Node("&", "")  # a cell boundary, only ever read by _matrix


def _token(item: str | Node) -> str:
    return item if isinstance(item, str) else item.token


def _html(item: str | Node) -> str:
    return _SYMBOL_HTML.get(item) or _plain(item) if isinstance(item, str) else item.html


def _join(items: list[str | Node]) -> str:
    plain = _SYMBOL_HTML
    return "".join([(plain.get(i) or _plain(i)) if isinstance(i, str) else i.html for i in items])


def _subsup(parts: tuple[str, ...], modifier: str | None) -> Node:
    tag = "munderover" if modifier == C.LIMITS else "msubsup"
    return Node(C.SUBSUP, f"<{tag}>{''.join(parts)}</{tag}>")


# -- the MathML ----------------------------------------------------------------------------------

_ENTITY = re.compile(r"&#x[0-9A-Fa-f]+;\Z")
_FENCES = frozenset(("(", ")", "[", "]", "|", r"\|", r"\{", r"\}", r"\surd"))
_SPACE_TEXT = (r"\ ", "~", C.NOBREAKSPACE, C.SPACE)
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


def _fence(command: str, delimiter: str) -> str:
    """The <mo> of \\left or \\right (converter._convert_command with a delimiter)."""
    tag, attributes = C.CONVERSION_MAP[command]
    text = "" if delimiter == "." else _raw(_code(delimiter))
    return _element(tag, _attrs(attributes), text)


def _fraction(command: str) -> tuple[str, str, str, str]:
    """(before, the mfrac tag, its attributes, after) of a two-argument command."""
    tag, attributes = C.CONVERSION_MAP[command]
    attrs = _attrs(attributes)
    if command == C.DFRAC:
        return '<mstyle displaystyle="true" scriptlevel="0">', tag, attrs, "</mstyle>"
    if command == C.TFRAC:
        return '<mstyle displaystyle="false" scriptlevel="0">', tag, attrs, "</mstyle>"
    if command == C.BINOM:
        # The parent's displaystyle="false" would pick 1.2em; no parent in the subset has it.
        size = ' minsize="2.047em" maxsize="2.047em"'
        left, right = _code(r"\lparen"), _code(r"\rparen")
        return f"<mo{size}>{left}</mo>", tag, attrs, f"<mo{size}>{right}</mo>"
    return "", tag, attrs, ""


def _accent(command: str) -> tuple[str, str]:
    """What comes before and after the argument of an accent."""
    tag, attributes = C.CONVERSION_MAP[command]
    mark, mark_attributes = C.DIACRITICS[command]
    return f"<{tag}{_attrs(attributes)}>", f"<mo{_attrs(mark_attributes)}>{mark}</mo></{tag}>"


_FRACTIONS = {c: _fraction(c) for c in _FRACTION_COMMANDS}
_ACCENTS = {c: _accent(c) for c in _ACCENT_COMMANDS}


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


def _leaf(token: str) -> str:
    """converter._convert_group for a node without children."""
    if token not in C.CONVERSION_MAP:
        return _symbol(token)
    tag, attributes = C.CONVERSION_MAP[token]
    if token in C.LIMIT:
        return f"<{tag}>{token[1:]}</{tag}>"
    if token in _SPACES:
        return f"<{tag}{_attrs(attributes)} />"
    raise Unsupported


# The MathML of each plain symbol met so far (a few hundred in a site).
_SYMBOL_HTML: dict[str, str] = {}


def _plain(token: str) -> str:
    html = _SYMBOL_HTML.get(token)
    if html is None:
        html = _leaf(token)
        if len(_SYMBOL_HTML) < 20_000:  # distinct numbers are the only unbounded kind
            _SYMBOL_HTML[token] = html
    return html


def _matrix(command: str, children: list[str | Node]) -> str:
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
            cell.append(_html(node))
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
        body = _join(_Walker(tokens(latex)).walk(None, 0, display))
    except Unsupported:
        return None
    mode = "block" if display else "inline"
    return f'<math display="{mode}">{_element("mrow", "", body)}</math>'
