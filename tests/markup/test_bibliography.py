"""BibTeX: accents and braces decoded (Distill's old bug), fields escaped, files parsed once."""

from __future__ import annotations

from pathlib import Path

from circuitpress.markup import bibliography
from circuitpress.markup.bibliography import load_bib, parse_bib, reference_html

BIB = r"""
@article{k,
  author = {G{\"o}del, Kurt and Erd\H{o}s, Paul and M\"{u}ller, Hans and {\'E}mile Borel},
  title = {{{DNA}} Models of Caf\'{e}s: {\"U}ber {\i}t},
  journal = {Journal of {{AI}}},
  year = {2020},
  url = {https://example.org/a?b=1&c=2}
}
@misc{js, title = {Bad link}, url = {javascript:alert(1)}}
"""


def test_latex_accents_and_double_braces_render_as_text() -> None:
    entry = parse_bib(BIB, "references.bib")["k"]
    assert entry.authors == ("Kurt Gödel", "Paul Erdős", "Hans Müller", "Émile Borel")
    assert entry.fields["title"] == "DNA Models of Cafés: Über ıt"
    assert entry.fields["journal"] == "Journal of AI"
    assert "{" not in reference_html(entry) and "\\" not in reference_html(entry)


def test_urls_are_not_latex_decoded_and_are_escaped() -> None:
    entries = parse_bib(BIB, "references.bib")
    assert entries["k"].url == "https://example.org/a?b=1&c=2"
    assert 'href="https://example.org/a?b=1&amp;c=2"' in reference_html(entries["k"])
    assert "href" not in reference_html(entries["js"])  # only web links become links


def test_a_file_is_parsed_once(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "refs.bib"
    path.write_text(BIB, encoding="utf-8")
    calls = []
    real = bibliography.parse_bib
    monkeypatch.setattr(
        bibliography, "parse_bib", lambda text, display: calls.append(1) or real(text, display)
    )
    first = load_bib(path, "refs.bib")
    second = load_bib(path, "refs.bib")
    assert first is second and len(calls) == 1


def test_a_field_without_latex_is_what_pylatexenc_makes_of_it() -> None:
    # _Decoding skips pylatexenc for text without its special characters or ligatures.
    import random

    from bibtexparser import middlewares

    decoder = middlewares.LatexDecodingMiddleware()._decoder
    pieces = [*"abcXYZ019 .,:;()/-'\"!?*+=@<>[]|é\t\n`\u00a0\u2013", "  ", "\n\n", "--", "``"]
    pieces += ["''", "!`", "?`", "\\'e", "{x}", "$x$", "~", "%c", "&", "#", "^", "_"]
    rng = random.Random(2)
    plain = 0
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        if bibliography._LATEX.search(text):
            continue
        plain += 1
        assert decoder.latex_to_text(text) == text, repr(text)
    assert plain > 500
    # And a .bib of plain and LaTeX fields reads as it did through pylatexenc alone.
    bib = "@book{b, title = {Plain: a title, 2nd ed.}, publisher = {O'Reilly -- Media},\n"
    bib += "  year = {1999}, note = {``quoted'' \\& 50\\%}}"
    entry = parse_bib(bib, "x.bib")["b"]
    assert entry.fields["title"] == "Plain: a title, 2nd ed."
    assert entry.fields["publisher"] == "O'Reilly \u2013 Media"
    assert entry.fields["note"] == "\u201cquoted\u201d & 50%"


def test_braces_and_accents_decode_as_pylatexenc_decodes_them() -> None:
    # _simple_latex decodes braces and the five common accents itself; pylatexenc the rest.
    import random

    pylatexenc = bibliography._Decoding("x.bib")._transform_python_value_string
    pieces = [*"abcXYZ019 .,:;()/-'\"`!?é\t\n", "{", "}", "{x}", "{{DNA}}", "  ", "--", "''"]
    pieces += ['\\"o', '\\"{o}', '{\\"o}', "\\'E", "\\`a", "\\^w", "\\~n", '\\"q', "\\'{}", "\\i"]
    pieces += ["\\c{c}", "\\=a", '\\" o', "~", "$", "\\&", "-{}-", "`{}`", "\\'", "^"]
    rng = random.Random(3)
    simple = 0
    for _ in range(4000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        ours = bibliography._simple_latex(text)
        if ours is None:
            continue
        simple += 1
        theirs, error = pylatexenc(text)
        assert not error and ours == theirs, repr(text)
    assert simple > 800
    assert bibliography._simple_latex('G{\\"o}del and {T}ransformer') == "Gödel and Transformer"
    # Nested deeper than any real field: pylatexenc decides (and past ~250 it cannot).
    assert bibliography._simple_latex("{" * 32 + "a" + "}" * 32) == "a"
    assert bibliography._simple_latex("{" * 33 + "a" + "}" * 33) is None
