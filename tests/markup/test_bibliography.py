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
