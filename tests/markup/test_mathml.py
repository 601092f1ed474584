"""markup/mathml.py writes exactly what latex2mathml writes, or hands the input back to it."""

from __future__ import annotations

import hashlib
import random
import re

import latex2mathml
import pytest
from latex2mathml import commands as C
from latex2mathml.converter import convert
from latex2mathml.symbols_parser import SYMBOLS
from latex2mathml.tokenizer import PATTERN, tokenize

from circuitpress.markup import mathml
from circuitpress.markup.math import _check_braces, to_mathml
from circuitpress.markup.mathml import fast_mathml

NAMESPACE = ' xmlns="http://www.w3.org/1998/Math/MathML"'


def reference(latex: str, display: bool) -> str | None:
    try:
        return convert(latex, display="block" if display else "inline").replace(NAMESPACE, "", 1)
    except Exception:  # latex2mathml's errors: the fast path must have declined
        return None


# What articles write: each must take the fast path.
COMMON = [
    r"x",
    r"f(x) = \sum_i w_i x_i + b",
    r"\alpha_{3,2} = \frac{u_{2}}{\sum_{j=1}^{9} e^{\nu_j}}",
    r"\sum_{j=1}^{n} x_j",
    r"\prod_{k} p_k^{n_k}",
    r"\int_0^1 x^2 \, dx",
    r"\hat{q}_{9}^{(5)} \approx \cos(\mu x_{5}) + 9.5",
    r"\lVert \mathbf{W}^{(6)}_{9} \rVert_2 \leq \sqrt{\nu^{6} + \xi}",
    r"\mathbf{F}_{8} = \begin{bmatrix} \psi_{8} & 8 \\ -\phi_{8} & \frac{8}{8} \end{bmatrix}",
    r"\mathbb{E}_{x \sim \mathcal{D}_{8}} \left[ \max_{c \leq 22} \operatorname{ReLU}(x) \right]",
    r"x_1^2 a' f'(x) y_1'",
    r"\mathrm{d}x \; \quad \qquad \! \: \>",
    r"\frac12 + \frac{1}{2} + \dfrac{a}{b} + \tfrac{a}{b} + \binom{n}{k}",
    r"\left( \frac{a}{b} \right)^2 \left. x \right| \left\{ y \right\}",
    r"\begin{pmatrix} a & b \\ c & d \end{pmatrix} \begin{vmatrix} 1 \end{vmatrix}",
    r"\begin{matrix} 1 & & 2 \\ \end{matrix} \begin{Bmatrix} \end{Bmatrix}",
    r"\text{if } x > 0 \textbf{ bold} \textit{it}",
    r"\vec{v} \cdot \bar{u} \times \tilde{w} \dot{x} \ddot{y} \overline{AB} \underline{z}",
    r"\nabla_\theta \log p_\theta(x) \partial \infty \to \in \pm \ldots \cdots",
    r"\lim_{n \to \infty} a_n = \sup_k b_k, \det A, \Pr(X), \argmax_x f",
    r"\sin \theta \tanh z \exp(-t) \ln 2",
    r"a \| b \{ c \} | d | [e] <f> g / h * i ! j . k : l ; m ~ n \ o",
    r"\sqrt{\sigma^2 + \epsilon} \sqrt x",
    r"\operatorname*{argmax}_x f \operatorname{softmax}(z)_i",
    r"x_{a_{b_{c}}}^{d^{e}} {}^{14}C {} x^{}",
    r"\mathbf{x}^\top \mathbf{W}",
    r"f \prime",
    r"{\mathbf{W}_{1}} {\begin{matrix} a \end{matrix}} {a \\ b} {\{ x \}} {{x}^{2}}_{3}",
    r"x^{\sum_{i}^{n}} \frac{a}{b}{c} \sqrt{{x}} {\mathdollar} \mathbb{a}",
]


@pytest.mark.parametrize("latex", COMMON)
@pytest.mark.parametrize("display", [False, True])
def test_common_math_takes_the_fast_path_and_matches(latex: str, display: bool) -> None:
    got = fast_mathml(latex, display)
    assert got is not None, "the fast path declined"
    assert got == reference(latex, display)


# Outside the subset, or mistakes: latex2mathml decides (and its errors stay ours).
DECLINED = [
    r"x^",
    r"^x",
    r"x__a",
    r"x^a^b",
    r"x''",
    r"\foo",
    r"\left( x",
    r"x \right)",
    r"\sqrt[3]{x}",
    r"\frac{a}",
    r"\begin{cases} a & b \end{cases}",
    r"\begin{array}{cc} a & b \end{array}",
    r"\begin{pmatrix} {c} & b \end{pmatrix}",
    r"\mathbf{Wx}",
    r"\text{a<b}",
    r"a \over b",
    r"\color{red} x",
    r"\hspace{1em}",
    r"\verb|x|",
    r"a & b",
    r"\overbrace{x}^{y}",
    r"\not=",
    r"3pt",
    r"\displaystyle x",
    r"{2pt}",
    r"x^{1 em}",
    r"\left\mathdollar x \right.",
    r"\mathfoo{a}",
    r"\emph\text{}",
]


@pytest.mark.parametrize("latex", DECLINED)
def test_the_rest_is_left_to_latex2mathml(latex: str) -> None:
    assert fast_mathml(latex, False) is None


def test_to_mathml_is_unchanged_where_the_fast_path_declines() -> None:
    assert to_mathml(r"\sqrt[3]{x}", False) == reference(r"\sqrt[3]{x}", False)
    with pytest.raises(ValueError, match="unknown LaTeX command"):
        to_mathml(r"\foo", False)


def test_the_tables_it_relies_on() -> None:
    # The walker gives these one and two arguments; the subset must agree.
    assert mathml._ACCENT_COMMANDS <= set(C.COMMANDS_WITH_ONE_PARAMETER)
    assert mathml._FRACTION_COMMANDS <= set(C.COMMANDS_WITH_TWO_PARAMETERS)
    # The plain commands are symbols latex2mathml's converter knows (or spaces and limits).
    for command in mathml._PLAIN_COMMANDS:
        assert mathml._plain(command).startswith(("<mi", "<mo", "<mspace", "<mtext"))


# -- generated expressions ---------------------------------------------------------------------

ATOMS = [
    *"abcxyzABW",
    *"0123456789",
    "3.14",
    "12",
    ".5",
    *"+-=<>(),[]|/*!.:;~?@",
    r"\|",
    r"\{",
    r"\}",
    r"\ ",
    r"\alpha",
    r"\beta",
    r"\Gamma",
    r"\varepsilon",
    r"\leq",
    r"\geq",
    r"\approx",
    r"\cdot",
    r"\times",
    r"\infty",
    r"\partial",
    r"\nabla",
    r"\in",
    r"\to",
    r"\sim",
    r"\pm",
    r"\ldots",
    r"\cdots",
    r"\dots",
    r"\langle",
    r"\rangle",
    r"\lVert",
    r"\rVert",
    r"\prime",
    r"\sin",
    r"\log",
    r"\tanh",
    r"\max",
    r"\lim",
    r"\inf",
    r"\sum",
    r"\prod",
    r"\int",
    r"\det",
    r"\Pr",
    r"\gcd",
    r"\argmax",
    r"\,",
    r"\;",
    r"\quad",
    r"\!",
    r"\\",
    r"\mathbf{W}",
    r"\mathbb{R}",
    r"\mathcal{L}",
    r"\mathrm{d}",
    r"\mathbf{Wx}",
    r"\operatorname{ReLU}",
    r"\operatorname{soft max}",
    r"\text{if }",
    r"\textbf{a b}",
    r"\text{}",
    r"\frac12",
    r"\foo",
    r"\limits",
    r"\displaystyle",
    "&",
    "%c\n",
    "'",
    "2pt",
    r"\mathdollar",
    r"\mathfoo{a}",
    r"\frac1 .5",
    r"\dfrac 12",
    r"\text {a}",
    r"\emph{x}",
    r"\operatorname {ab}",
]
DELIMITERS = ["(", ")", "[", "]", "|", r"\|", ".", r"\{", r"\}", r"\langle", r"\rangle", "/"]
DELIMITERS += [r"\mathdollar"]
UNARY = [
    r"\hat",
    r"\bar",
    r"\vec",
    r"\tilde",
    r"\dot",
    r"\overline",
    r"\underline",
    r"\widehat",
    r"\sqrt",
    r"\mathbf",
]
BINARY = [r"\frac", r"\dfrac", r"\tfrac", r"\binom", r"\cfrac"]
MATRICES = ["matrix", "pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix", "cases"]


def expression(rng: random.Random, depth: int) -> str:
    return " ".join(item(rng, depth) for _ in range(rng.randint(1, 4)))


def item(rng: random.Random, depth: int) -> str:
    kind = rng.random() if depth > 0 else 0.0
    if kind < 0.4:
        return rng.choice(ATOMS)
    if kind < 0.5:
        return "{" + expression(rng, depth - 1) + "}"
    if kind < 0.68:
        script = rng.choice(["_", "^", "_^", "^_", "'", "_'"])
        base = item(rng, depth - 1)
        out = base
        for mark in script:
            out += mark if mark == "'" else mark + arg(rng, depth - 1)
        return out
    if kind < 0.76:
        return rng.choice(UNARY) + arg(rng, depth - 1)
    if kind < 0.84:
        return rng.choice(BINARY) + arg(rng, depth - 1) + arg(rng, depth - 1)
    if kind < 0.92:
        left, right = rng.choice(DELIMITERS), rng.choice(DELIMITERS)
        return rf"\left{left} {expression(rng, depth - 1)} \right{right}"
    name = rng.choice(MATRICES)
    rows = []
    for _ in range(rng.randint(1, 3)):
        cells = [expression(rng, depth - 2) if rng.random() < 0.85 else "" for _ in range(2)]
        rows.append(" & ".join(cells))
    tail = r" \\" if rng.random() < 0.3 else ""
    return rf"\begin{{{name}}} " + r" \\ ".join(rows) + tail + rf" \end{{{name}}}"


def arg(rng: random.Random, depth: int) -> str:
    if rng.random() < 0.5:
        return "{" + expression(rng, max(depth, 0)) + "}"
    return " " + rng.choice(ATOMS) if rng.random() < 0.3 else rng.choice(ATOMS)


def test_generated_expressions_match_latex2mathml() -> None:
    rng = random.Random(20261201)
    fast = 0
    for n in range(2500):
        latex = expression(rng, rng.randint(1, 4))
        display = n % 2 == 1
        got = fast_mathml(latex, display)
        if got is None:
            continue
        fast += 1
        assert got == reference(latex, display), latex
        _check_braces(latex)
    assert fast > 800  # the generator mostly writes what the fast path takes


OUTSIDE = {r"\foo", r"\limits", r"\displaystyle", r"\mathbf{Wx}", r"\gcd", "&", r"\cfrac", "cases"}
OUTSIDE |= {"2pt", r"\mathfoo{a}", r"\mathdollar"}


def test_generated_expressions_inside_the_subset_match_latex2mathml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same generator without what the fast path declines: deeper trees that it converts.
    for name in ("ATOMS", "BINARY", "MATRICES", "DELIMITERS"):
        monkeypatch.setattr(
            __import__(__name__, fromlist=["_"]),
            name,
            [a for a in globals()[name] if a not in OUTSIDE],
        )
    rng = random.Random(7)
    fast = 0
    for n in range(2500):
        latex = expression(rng, rng.randint(1, 5))
        display = n % 2 == 0
        got = fast_mathml(latex, display)
        if got is None:
            continue
        fast += 1
        assert got == reference(latex, display), latex
        _check_braces(latex)
    assert fast > 1500


def test_the_tokenizer_is_latex2mathmls() -> None:
    # _TOKEN is PATTERN regrouped: a new latex2mathml tokenizer needs a new _TOKEN.
    assert hashlib.sha256(PATTERN.pattern.encode()).hexdigest() == mathml.PATTERN_SHA256
    assert mathml.ENABLED, f"latex2mathml {latex2mathml.__version__} is not verified"
    rng = random.Random(3)
    pieces = [*ATOMS, *DELIMITERS, *UNARY, *BINARY, "{", "}", "_1", "^23", "-2pt", "2 em", " "]
    pieces += [r"\frac 1 2", r"\dfrac.5", r"\text {a}", r"\begin {pmatrix}", r"\end{pmatrix}"]
    pieces += [r"\mathchoice{a}", r"\mathdollar", r"\_1", "\\", "%", "%x", r"\textbfx", "\\\n"]
    pieces += [r"\mathbb{a}", r"\mathbf{1}", r"\mathring{a}", r"\operatorname*{a}", "1.5", "x_12"]
    pieces += ["{a}", "{12}", r"{\alpha_{1}}", "{{x}}", r"{\}", r"\\{", "{a\\\n}", ".5pt", "{2pt}"]
    fast = 0
    for _ in range(3000):
        latex = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        expected = list(tokenize(latex))
        try:
            got = _unmarked(mathml._tokens(latex))  # the loop, for any string
        except mathml.Unsupported:
            got = None
        if got is not None:
            assert got == expected, latex
        if not _takes_the_fast_path(latex):
            continue  # the walk takes these to _tokens() (tests below)
        fast += 1
        if any(_DIMENSION.fullmatch(token) for token in expected):
            assert _tokenize_or_dimension(latex) is Dimension, latex
        else:
            assert _tokenize_or_dimension(latex) == expected, latex
    assert fast > 500


_DIMENSION = re.compile(r"-?\d+(?:\.\d+)?\s*(?:%s)" % "|".join(mathml._UNITS))


# Where tokenize() splits or joins what _FAST's matches do not: a comment, and these (the walk
# finds them among _FAST's tokens and tokenizes the string again with _tokens()).
_RARE = re.compile(
    r"\\(?:verb|(?:begin|end)\s|operatorname[^}]*\s|[cdt]?frac\s*[.\d]"
    r"|cla|color|emph|fbox|hbox|href|llap|mbox|rlap|style|tag|text|underbar)"
)


def _takes_the_fast_path(latex: str) -> bool:
    return not ("%" in latex or _RARE.search(latex))


def _unmarked(tokens: list[str]) -> list[str]:
    """_tokens()'s list as tokenize() writes it: the names of text commands unmarked."""
    return [t.removeprefix(mathml._TEXT_MARK) for t in tokens]


class Dimension(Exception):
    """A dimension among the tokens: the fast path declines, whichever the tokens."""


def _as_tokenize(tokens: list[str]) -> list[str]:
    r"""The tokens the walk reads as tokenize() writes them: _FAST's groups, scripts and `\math…`
    tokens split or replaced as tokenize() does, and Dimension for a dimension."""
    out = []
    for token in tokens:
        if token[0] == "{" and len(token) > 1:
            out += ["{", *_as_tokenize(mathml._FAST.findall(token, 1))]
        elif token[0] in "_^" and len(token) > 1:
            out += [token[0], *_as_tokenize([token[1:]])]
        elif token.startswith(C.MATH) and token not in C.MATH_NON_FONT_COMMANDS:
            command, brace, rest = token.partition("{")
            code = SYMBOLS.get(token) if command not in C.MATH_NON_FONT_COMMANDS else None
            out += [f"&#x{code};"] if code else [command, "{", *rest] if brace else [token]
        elif token.endswith(mathml._UNITS) and token.lstrip("-")[:1].isdigit():
            raise Dimension
        else:
            out.append(token)
    return out


def _tokenize_or_dimension(latex: str) -> list[str] | type[Dimension]:
    try:
        return _as_tokenize(mathml.tokens(latex))
    except Dimension:
        return Dimension


# Each needs _tokens(): _FAST's matches alone would tokenize it wrongly.
BEYOND_FINDALL = [
    "x % c",
    r"\verb|x|",
    r"\begin {matrix} a \end {matrix}",
    "\\begin{matrix} a \\end\n{matrix}",
    r"\operatorname{soft max}",
    r"\operatorname {ab}",
    r"\operatorname* {ab}_x",
    r"\text{a}",
    r"\textbf {a b}",
    r"x^\textit{a b}_2",
    r"\emph{\alpha}",
    r"\frac12",
    r"\dfrac 12",
    r"\frac1 .5",
    r"\frac 1.5 2",
    r"\tfrac.5 2",
]


@pytest.mark.parametrize("latex", BEYOND_FINDALL)
def test_what_findall_alone_gets_wrong_is_tokenized_as_tokenize_does(latex: str) -> None:
    expected = list(tokenize(latex))
    assert _as_tokenize(mathml._FAST.findall(latex)) != expected
    try:
        got = _unmarked(mathml._rare_tokens(latex))
    except mathml.Unsupported:
        assert latex.startswith(r"\verb")
        return
    assert got == expected
    for display in (False, True):
        assert fast_mathml(latex, display) == reference(latex, display)


# What _FAST's matches tokenize as tokenize() does, where _RARE finds something.
NOT_BEYOND_FINDALL = [r"\binom12 3", r"\frac1{2}", r"\frac 1 2", r"\frac{1}2", r"\text x"]


@pytest.mark.parametrize("latex", NOT_BEYOND_FINDALL)
def test_what_findall_tokenizes_as_tokenize_does_is_converted_alike(latex: str) -> None:
    assert _as_tokenize(mathml._FAST.findall(latex)) == list(tokenize(latex))
    for display in (False, True):
        assert fast_mathml(latex, display) == reference(latex, display)


# What the walk reads token by token as tokenize() would have split or replaced it.
READ_AS_TOKENIZE = [
    ("2pt", Dimension),
    ("-2 pt", Dimension),
    ("x_2pt", ["x", "_", "2", "p", "t"]),
    ("x_12^.5", ["x", "_", "1", "2", "^", ".5"]),
    (r"\_12 x\__1", [r"\_", "12", "x", r"\_", "_", "1"]),
    (r"x^\top_\hat{a}^*", ["x", "^", r"\top", "_", r"\hat", "{", "a", "}", "^", "*"]),
    (r"x^\mathbf{W}_{a}", ["x", "^", "&#x1D416;", "_", "{", "a", "}"]),
    (".5pt", [".5", "p", "t"]),
    ("{1.5em}", Dimension),
    (r"\mathbf{W}", ["&#x1D416;"]),
    (r"\mathbb{a}", ["&#x1D552;"]),
    (r"\mathfoo{a}", [r"\mathfoo", "{", "a", "}"]),
    (r"\mathchoice{a}", [r"\mathchoice", "{", "a", "}"]),
    (r"\mathdollar", ["&#x00024;"]),
    (r"\\\mathbf{W} \mathbf{W}", ["\\\\", "&#x1D416;", "&#x1D416;"]),
    (r"\\mathbf{W}", ["\\\\", *"mathbf", "{", "W", "}"]),
    ("{a_{1}} {b}", ["{", "a", "_", "{", "1", "}", "}", "{", "b", "}"]),
    (r"{\{} {\\{x}}", ["{", r"\{", "}", "{", "\\\\", "{", "x", "}", "}"]),
    ("{{{x}}}", ["{", "{", "{", "x", "}", "}", "}"]),
]


@pytest.mark.parametrize(("latex", "expected"), READ_AS_TOKENIZE)
def test_what_the_walk_reads_as_tokenize_would_have_split_it(
    latex: str, expected: list[str] | type[Dimension]
) -> None:
    assert _tokenize_or_dimension(latex) == expected
    if expected is Dimension:
        assert any(_DIMENSION.fullmatch(token) for token in tokenize(latex))
        assert fast_mathml(latex, False) is None
    else:
        assert expected == list(tokenize(latex))


def test_only_one_token_writes_what_the_walk_reads_as_structure() -> None:
    # \\ ends a matrix row, [ and a group of l, c, r and | start a column specification: the
    # walk knows them by their MathML, which no other token may write.
    special = {
        mathml._NEWLINE: C.DOUBLEBACKSLASH,
        mathml._OPEN_BRACKET: "[",
        **{mathml._leaf(c): c for c in "lcr|"},
    }
    names = {*SYMBOLS, *mathml._named_commands(), *map(chr, range(32, 127))}
    for name in names:
        try:
            html = mathml._leaf(name)
        except mathml.Unsupported:
            continue
        assert special.get(html, name) == name, name
        assert not html.startswith("<mrow"), name


def test_the_converter_tables_it_copies_are_latex2mathmls() -> None:
    from latex2mathml import converter

    assert mathml.OPERATORS == converter.OPERATORS
    assert mathml.MOVABLE_LIMIT_TEXTS == converter.MOVABLE_LIMIT_TEXTS
    assert mathml.NUMBER_PATTERN.pattern == converter.NUMBER_PATTERN.pattern


def _check_braces_by_depth(source: str) -> str | None:
    """The brace check as it was first written: one pass keeping the depth."""
    depth = 0
    for m in re.finditer(r"\\.|[{}]", source, re.S):
        if m.group() == "{":
            depth += 1
        elif m.group() == "}":
            depth -= 1
            if depth < 0:
                return "unbalanced '}'"
    return "unclosed '{'" if depth else None


def test_what_the_fast_path_converts_has_balanced_braces() -> None:
    # to_mathml checks the braces only where fast_mathml declines.
    rng = random.Random(11)
    pieces = ["{", "}", r"\{", r"\}", "\\\\", "\\", "a", " ", " ", "x_", "^", "'", "2", "%", "\n"]
    pieces += [r"\text{", r"\frac", r"\left(", r"\right)", r"\begin{matrix}", r"\end{matrix}", "&"]
    pieces += [r"\mathbf{W}", r"\operatorname{a}", r"\sqrt", r"\hat", r"\verb|", "|", r"\frac12"]
    converted = 0
    for _ in range(20000):
        latex = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 10)))
        got = fast_mathml(latex, False)
        if got is None:
            continue
        converted += 1
        _check_braces(latex)  # ValueError where they do not pair up
        assert got == reference(latex, False), latex
    assert converted > 2000


def test_what_tokenize_reads_otherwise_is_converted_as_latex2mathml_does() -> None:
    # The walk finds these among _FAST's tokens and tokenizes the string again.
    rng = random.Random(13)
    pieces = [
        r"\frac",
        r"\dfrac",
        r"\binom",
        "1",
        "2",
        ".5",
        "12",
        " ",
        " ",
        "{",
        "}",
        "x",
        "_",
        "^",
    ]
    pieces += [r"\text", r"\textbf", r"\emph", r"\begin", r"\end", "{matrix}", "{pmatrix}", "&"]
    pieces += [r"\operatorname", "*", "{ab}", "{a b}", "\\\\", "%", "\n", r"\verb", "|", r"\color"]
    converted = 0
    for _ in range(20000):
        latex = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 9)))
        got = fast_mathml(latex, False)
        if got is not None:
            converted += 1
            assert got == reference(latex, False), latex
    assert converted > 2000


def test_the_brace_check_reports_what_a_depth_count_reports() -> None:
    rng = random.Random(5)
    for _ in range(5000):
        source = "".join(
            rng.choice(["{", "}", "\\{", "\\}", "\\\\", "\\", "a", " ", "é", "\n", "\ud800", "𝑥"])
            for _ in range(rng.randint(0, 12))
        )
        try:
            _check_braces(source)
            got = None
        except ValueError as exc:
            got = str(exc)
        assert got == _check_braces_by_depth(source), source
