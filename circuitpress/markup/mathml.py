"""The LaTeX most articles write, to exactly the MathML latex2mathml writes for it, ~30x faster.

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
from functools import cache
from itertools import chain
from typing import Iterator, TypeVar

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


_T = TypeVar("_T")


def _remember(table: dict[str, _T], key: str, value: _T) -> _T:
    """`value` for `key` from now on. Numbers and groups are the unbounded kinds: a table
    stops growing where a site's are all in it several times over."""
    if len(table) < 50_000:
        table[key] = value
    return value


# -- the tokens ----------------------------------------------------------------------------------

# tokenizer.PATTERN with its alternatives grouped by first character (an alternative that cannot
# start with a character never matches there, so the order within each group is all that
# counts) and without capture groups: findall then returns each match as one string, 4x faster
# than PATTERN.finditer. `\verb` is left to the command alternative, and refused below. Only
# _rare_tokens() needs it: compiled on first use (~1 ms that most builds never spend).
_TOKEN = (
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


@cache
def _token_pattern() -> re.Pattern[str]:
    return re.compile(_TOKEN)


# Most equations need nothing of tokenize() but its pattern: the walk reads _FAST's matches.
# Where tokenize() would split or join them otherwise (a comment, which tokens() looks for; and
# `\verb`, text commands, `\frac12`, and the spaces that `\begin {…}` and `\operatorname{a b}`
# lose), the walk meets a token that says so and raises _Rare, and _tokens() tokenizes the
# string again. Four kinds of match are not tokenize()'s tokens; the walk reads each as
# tokenize() would have split or replaced it, converting each the first time it meets one
# (_primary): a {group} whose braces nest at most once more is one match (half the tokens of
# most equations are braces and what they hold, and a group's MathML depends on nothing around
# it, so each distinct one is converted once); so is a sub- or superscript with its argument
# where that is a group, a character or a command that no `{` or `*` follows (a match and a
# turn of the walk fewer; the walk reads what such a command takes after it, as it would after
# a lone `_`); a `\math…` command or font on a letter is the one token of its symbol; and a
# dimension (`2pt`) declines. Otherwise each single-character token is one class tried first
# (the other alternatives start with `\`, `{`, `_`, `^`, a digit or `.`), and a command that no
# `{` or `*` follows is matched before the long alternatives, none of which can match it. Each
# match costs ~1,000 instructions whatever it holds: findall is a third of an equation's time.
_GROUP = r"{(?:[^{}\\]++|\\.|{(?:[^{}\\]++|\\.)*+})*+}"
_FAST = re.compile(
    r"[^\\\s\d.{_^]"
    rf"|{{(?:{_GROUP[1:]})?"
    rf"|[_^](?:{_GROUP}|[^\\\s{{}}_^&'%.]|\\[a-zA-Z]++(?![{{*]))?"
    r"|\\(?:[a-zA-Z]++(?![{*])"
    r"|[\\\[\]{}\s!,:>;|_%#$&]"
    r"|(?:begin|end){[a-zA-Z]+\*?}"
    r"|operatorname(?:withlimits|\*)?{[a-zA-Z*]+}"
    r"|math(?!ring|bin|close|inner|op|open|ord|punct|rel|strut)[a-z]+{[a-zA-Z]}"
    r"|[a-zA-Z]+)?"
    r"|\d+(?:\.\d+)?(?:\s*(?:in|mm|cm|pt|em|ex|pc|bp|dd|cc|sp|mu))?"
    r"|\.\d*"
)


class _Rare(Exception):
    """Where _FAST's tokens are not tokenize()'s (_RARE_COMMANDS, `\\frac12`): the string is
    tokenized again by _tokens()."""


def tokens(latex: str) -> list[str]:
    """The tokens the walk reads: _FAST's matches, or where there is a comment, _tokens()'s."""
    if "%" in latex:
        return _rare_tokens(latex)
    return _FAST.findall(latex)


def _rare_tokens(latex: str) -> list[str]:
    """tokenizer.tokenize(latex), but for the names of text commands (_TEXT_MARK);
    Unsupported for `\\verb`, dimensions and unbalanced braces."""
    # What fast_mathml() converts has balanced braces, so that to_mathml() need not check them:
    # on _FAST's tokens the walk declines where they are not, on these it might not. (math.py
    # imports this module with its first equation: no cycle.)
    from circuitpress.markup.math import _check_braces

    try:
        _check_braces(latex)
    except ValueError:
        raise Unsupported from None
    if _TEXT_MARK in latex:
        raise Unsupported
    return _tokens(latex)


def _tokens(latex: str) -> list[str]:
    """tokens() for any string: tokenize()'s loop over _TOKEN's matches."""
    out: list[str] = []
    append = out.append
    for token in _token_pattern().findall(latex):
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
            elif token in _TEXTS:
                append(_TEXT_MARK + token)
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
        command = token[:brace].rstrip()
        text = token[brace + 1 : -1] or _TEXT_MARK  # (the walk reads no "": see _primary)
        captured = [_TEXT_MARK + command if command in _TEXTS else command, text]
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
# Tokens that are never a node on their own (_plain would write some of them), "": what the
# walk reads where no token is left, and _TEXT_MARK: what _tokens() writes for the text of
# `\text{}` (tokenize() writes "", which the walk would read as no token left).
_NOT_NODES = frozenset((*_STRUCTURAL, C.SUBSCRIPT, C.SUPERSCRIPT, C.APOSTROPHE, "", "\x00"))
_SCRIPTED = frozenset((C.SUBSCRIPT, C.SUPERSCRIPT))  # the `last` of a sub- or superscript
_LARGE = frozenset((C.SUMMATION, C.PRODUCT))  # what takes its scripts as limits in a block
_NO_BASE = frozenset(("&", C.DOUBLEBACKSLASH))  # the `last` nodes that take no script
_CELL = "&"  # an environment's node where a cell ends (the MathML of a node starts with "<")


# walker._walk builds a tree of nodes and the converter writes each; here the walk writes each
# node's MathML as soon as it is complete, which depends on nothing but the node in the subset
# (no fonts, no style from the parent). A node's MathML is all that is kept, and of the last
# node of a walk what a sub- or superscript after it needs.


def _walk(
    it: Iterator[str], terminator: str | None, limit: int, block: bool, read: tuple[str, ...] = ()
) -> list[str]:
    """walker._walk over the tokens of `it` (shared with the nested walks, as latex2mathml's
    iterator is): the MathML of each node up to `terminator`, which must come (`\\right` adds
    its fence), or of the `limit` nodes of an argument, which must all come. An environment's
    nodes include _CELL where a cell ends. `read`: tokens already read from `it`, to walk first."""
    out: list[str] = []
    append = out.append
    plain = _SYMBOL_HTML
    scripts = _SCRIPT_HTML
    # The last node: the token it started with (a sub- or superscript's is _ or ^), and for a
    # sub- or superscript the MathML of its base and script and whether it took \limits, which
    # a second script after it keeps (the two join into one msubsup).
    last = base = script = ""
    limits = False
    for token in chain(read, it) if read else it:  # the nested walks read `it`
        html = plain.get(token)
        if html is None:  # a plain symbol is never a terminator
            kind = token[0]
            if kind == "_" or kind == "^":  # _FAST's token holds the argument where it can
                if not out or last == kind or last in _NO_BASE:
                    raise Unsupported  # an empty base, a double script, or a prime and then ^
                html = scripts.get(token)
                if html is None:
                    argument = token[1:] or next(it, "")
                    html = plain.get(argument)
                    if html is None:
                        html = _braces(it) if argument == "{" else _primary(it, argument, False)
                    elif len(token) > 1:  # `_{2}` or `^n`, whose MathML is all its own
                        _remember(scripts, token, html)
                if last == "_" or last == "^":  # x_1^2
                    inner = base + html + script if kind == "_" else base + script + html
                    if limits:
                        out[-1] = f"<munderover>{inner}</munderover>"
                    else:
                        out[-1] = f"<msubsup>{inner}</msubsup>"
                    last = C.SUBSUP
                    continue
                base = out[-1]
                script = html
                limits = block and last in _LARGE
                if kind == "_":
                    out[-1] = (
                        f"<munder>{base}{html}</munder>" if limits else f"<msub>{base}{html}</msub>"
                    )
                else:
                    out[-1] = (
                        f"<mover>{base}{html}</mover>" if limits else f"<msup>{base}{html}</msup>"
                    )
                last = kind
                continue  # the same number of nodes: never the last of a limit
            if token == terminator:
                if limit:  # an argument that closes its parent: latex2mathml's odd corner
                    raise Unsupported
                if token == C.RIGHT:
                    append(_fence(C.RIGHT, _delimiter(it)))
                return out
            if token == C.APOSTROPHE:
                if not out or last == C.SUPERSCRIPT or last in _NO_BASE:
                    raise Unsupported  # '' and x^a' are latex2mathml's prime upgrades or errors
                if last == C.SUBSCRIPT:  # x_1'
                    tag = "munderover" if limits else "msubsup"
                    out[-1] = f"<{tag}>{base}{script}{_PRIME}</{tag}>"
                    last = C.SUBSUP
                else:
                    base = out[-1]
                    out[-1] = f"<msup>{base}{_PRIME}</msup>"
                    script = _PRIME
                    limits = False
                    last = C.SUPERSCRIPT
                continue
            if token == "{":
                html = _braces(it)
            elif token == "&" and not limit and terminator and terminator.startswith(C.END):
                html = _CELL
            else:
                html = _primary(it, token, block)
        append(html)
        last = token
        if limit and len(out) >= limit:
            return out
    if terminator is not None or limit or not out:
        raise Unsupported  # no terminator, too few arguments, or NoAvailableTokensError
    return out


def _braces(it: Iterator[str]) -> str:
    """The MathML of a {group}, its `{` read (`_{2}` needs no walk)."""
    token = next(it, "")
    html = _SYMBOL_HTML.get(token)
    if html is not None:
        after = next(it, "")
        if after == "}":
            return f"<mrow>{html}</mrow>"
        read: tuple[str, ...] = (token, after)
    elif token == "}":
        return "<mrow />"
    else:
        read = (token,)
    if not read[-1]:
        raise Unsupported  # no `}`: the walk reads no "" (NoAvailableTokensError)
    inner = "".join(_walk(it, "}", 0, False, read))
    return f"<mrow>{inner}</mrow>" if inner else "<mrow />"


def _primary(it: Iterator[str], token: str, block: bool) -> str:
    """The MathML of the node that starts with `token`, a node that is neither a plain symbol
    (the caller looked in _SYMBOL_HTML) nor a sub- or superscript: what walker._walk makes of
    it with a limit of 1, and so a command's argument."""
    if token == "{":
        return _braces(it)
    fraction = _FRACTIONS.get(token)
    if fraction is not None:
        before, after, digits = fraction
        first = next(it, "")
        if not first:
            raise Unsupported
        read: tuple[str, ...] = (first,)
        if digits and (first[0] == "." or first[0].isdecimal()):
            # tokenize() reads `\frac12` as \frac, 1, 2 (and `\frac1 .5` as \frac, 1, ., 5)
            if len(first) > 1:
                raise _Rare
            second = next(it, "")
            if second:
                if len(second) > 1 and (second[0] == "." or second[0].isdecimal()):
                    raise _Rare
                read = (first, second)
        return before + "".join(_walk(it, None, 2, False, read)) + after
    accent = _ACCENTS.get(token)
    if accent is not None:
        return accent[0] + _argument(it) + accent[1]
    if token == C.SQRT:
        argument = next(it, "")
        if argument == "[":
            raise Unsupported  # \sqrt[n]
        html = _SYMBOL_HTML.get(argument) or _primary(it, argument, False)
        return f"<msqrt>{html}</msqrt>"
    text_element = _TEXT_ELEMENTS.get(token)
    if text_element is not None:
        text = next(it, None)
        if text is None or "&" in text or "<" in text or ">" in text:
            raise Unsupported  # latex2mathml writes these raw
        text = text.removeprefix(_TEXT_MARK)  # (`\text{}`, and the text of `\emph\text`)
        return _element(*text_element, text.replace(" ", "&#x000A0;"))
    if token == C.LEFT:
        fence = _fence(C.LEFT, _delimiter(it))
        return f"<mrow>{fence}{''.join(_walk(it, C.RIGHT, 0, False))}</mrow>"
    if token.startswith(C.BEGIN):
        return _environment(it, token, block)
    if token.startswith(C.MATH):
        return _font(token)
    if token in _NOT_NODES or token in _SPECIAL or token.startswith(C.END):
        if token in _RARE_COMMANDS:  # `\end {…}`, `\operatorname {…}`, `\text{…}` from _FAST
            raise _Rare
        raise Unsupported
    first = token[0]
    if first == "{":
        return _group(token)
    if first == "_" or first == "^":
        raise Unsupported  # _FAST's script token where a script cannot be (x^_1)
    if first.isdecimal() and token[-1].isalpha():
        raise Unsupported  # a dimension
    return _plain(token)  # Unsupported unless it is a symbol the converter knows


def _group(token: str) -> str:
    """The MathML of one of _FAST's {group} tokens, as _braces writes it for its tokens."""
    it = iter(_FAST.findall(token, 1))
    html = _braces(it)
    if next(it, None) is not None:  # (its braces are the pattern's: never)
        raise Unsupported
    return _remember(_SYMBOL_HTML, token, html)


def _font(token: str) -> str:
    """The MathML of a `\\math…` token: tokenize() writes the symbol of those that have one."""
    if token.partition("{")[0] in C.MATH_NON_FONT_COMMANDS:
        raise Unsupported
    code = SYMBOLS.get(token)
    if not code:
        raise Unsupported
    return _remember(_SYMBOL_HTML, token, _plain(f"&#x{code};"))


def _argument(it: Iterator[str]) -> str:
    """The MathML of a command's one argument."""
    token = next(it, "")
    return _SYMBOL_HTML.get(token) or _primary(it, token, False)


def _delimiter(it: Iterator[str]) -> str:
    token = next(it, "")
    # A `\math…` token is read as tokenize() would have replaced it: never a delimiter.
    if (token in SYMBOLS and not token.startswith(C.MATH)) or token in _RAW_DELIMITERS:
        return token
    raise Unsupported


def _environment(it: Iterator[str], token: str, block: bool) -> str:
    name = token[len(C.BEGIN) + 1 : -1] if token.startswith(C.BEGIN + "{") else ""
    command = _ENVIRONMENTS.get(name)
    if command is None:
        if token == C.BEGIN:  # `\begin {…}` from _FAST
            raise _Rare
        raise Unsupported
    nodes = _walk(it, rf"{C.END}{{{name}}}", 0, block)
    if nodes and (nodes[0] == _OPEN_BRACKET or _COLUMNS.fullmatch(nodes[0])):
        raise Unsupported  # a column specification
    return _matrix(command, nodes)


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
    html = _FENCE_HTML.get((command, delimiter))
    if html is None:
        tag, attributes = C.CONVERSION_MAP[command]
        text = "" if delimiter == "." else _raw(_code(delimiter))
        html = _FENCE_HTML[command, delimiter] = _element(tag, _attrs(attributes), text)
    return html


_FENCE_HTML: dict[tuple[str, str], str] = {}  # at most two per symbol


def _fraction(command: str) -> tuple[str, str, bool]:
    """What comes before and after the two arguments of a two-argument command (never
    empty, so its mfrac is never written <mfrac />)."""
    tag, attributes = C.CONVERSION_MAP[command]
    before, after = "", ""
    if command == C.DFRAC:
        before, after = '<mstyle displaystyle="true" scriptlevel="0">', "</mstyle>"
    elif command == C.TFRAC:
        before, after = '<mstyle displaystyle="false" scriptlevel="0">', "</mstyle>"
    elif command == C.BINOM:
        # The parent's displaystyle="false" would pick 1.2em; no parent in the subset has it.
        size = ' minsize="2.047em" maxsize="2.047em"'
        left, right = _code(r"\lparen"), _code(r"\rparen")
        before, after = f"<mo{size}>{left}</mo>", f"<mo{size}>{right}</mo>"
    # (the flag: whether tokenize() takes digits after it apart)
    return f"{before}<{tag}{_attrs(attributes)}>", f"</{tag}>{after}", command != C.BINOM


def _accent(command: str) -> tuple[str, str]:
    """What comes before and after the argument of an accent."""
    tag, attributes = C.CONVERSION_MAP[command]
    mark, mark_attributes = C.DIACRITICS[command]
    return f"<{tag}{_attrs(attributes)}>", f"<mo{_attrs(mark_attributes)}>{mark}</mo></{tag}>"


_FRACTIONS = {c: _fraction(c) for c in _FRACTION_COMMANDS}
_ACCENTS = {c: _accent(c) for c in _ACCENT_COMMANDS}
# A text command's argument is its token's text in _tokens(), but _FAST's {group} or tokens:
# the walk takes a text command only as _tokens() writes its name.
_TEXT_MARK = "\x00"
_TEXT_ELEMENTS = {
    _TEXT_MARK + c: (C.CONVERSION_MAP[c][0], _attrs(C.CONVERSION_MAP[c][1])) for c in _TEXTS
}
_RARE_COMMANDS = frozenset((*_TEXTS, C.BEGIN, C.END, C.OPERATORNAME, C.OPERATORNAMEWITHLIMITS))


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


# The MathML of each plain symbol met so far (a few hundred in a site), and of _FAST's groups
# and `\math…` tokens, which are plain symbols to the walk.
_SYMBOL_HTML: dict[str, str] = {}
# The MathML of the argument of each script token whose argument is a plain symbol.
_SCRIPT_HTML: dict[str, str] = {}


def _plain(token: str) -> str:
    html = _SYMBOL_HTML.get(token)
    if html is None:
        html = _remember(_SYMBOL_HTML, token, _leaf(token))
    return html


# What only one token writes, where walker._walk's tokens count: `\\` ends a matrix row, and
# an environment that starts with `[` or with a group of only l, c, r and | (or an empty one)
# has a column specification (tests/markup/test_mathml.py checks no other token writes these).
_NEWLINE = _plain(C.DOUBLEBACKSLASH)
_OPEN_BRACKET = _plain("[")
_COLUMNS = re.compile(
    "<mrow(?: />|>(?:" + "|".join(re.escape(_plain(c)) for c in "lcr|") + ")+</mrow>)"
)
_PRIME = _plain(C.PRIME)


def _matrix(command: str, nodes: list[str]) -> str:
    """converter._convert_matrix without column alignment, lines or numbers."""
    rows: list[list[str]] = []
    cell: list[str] | None = None
    for node in nodes:
        if not rows:
            rows.append([])
        if cell is None:
            cell = []
            rows[-1].append("")
        if node == _CELL:
            rows[-1][-1] = "".join(cell)
            cell = []
            rows[-1].append("")
        elif node == _NEWLINE:
            rows[-1][-1] = "".join(cell)
            cell = []
            rows.append([""])
        else:
            cell.append(node)
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
        body = "".join(_walk(iter(tokens(latex)), None, 0, display))
    except Unsupported:
        return None
    except _Rare:
        try:
            body = "".join(_walk(iter(_rare_tokens(latex)), None, 0, display))
        except (Unsupported, _Rare):
            return None
    mode = "block" if display else "inline"
    return f'<math display="{mode}"><mrow>{body}</mrow></math>'
