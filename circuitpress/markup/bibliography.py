"""BibTeX files into escaped reference-list HTML, with LaTeX accents decoded.

bibtexparser 2 parses; its LatexDecodingMiddleware (pylatexenc) turns `{\\"o}`, `\\'{e}` and
`{{DNA}} Models` into "ö", "é" and "DNA Models" — Distill's template printed the braces and
backslashes. A field longer than MAX_FIELD_CHARS, or one pylatexenc cannot read, is an error at
its line, not minutes of decoding or a crash. Every field is HTML-escaped here: a .bib file is
not the author's page, and a `<` in a title must not become markup. Parsed files are cached by
(path, size, mtime), so a site of hundreds of pages parses its references.bib once.
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bibtexparser
from bibtexparser import middlewares

from circuitpress.errors import UserError

# Fields shown as the venue, in order of preference.
_VENUE_FIELDS = (
    "journal",
    "booktitle",
    "publisher",
    "howpublished",
    "school",
    "institution",
    "organization",
)


@dataclass(frozen=True)
class BibEntry:
    key: str
    type: str
    fields: dict[str, str]
    authors: tuple[str, ...]  # display names, "First von Last, Jr"
    file: str
    line: int

    @property
    def url(self) -> str | None:
        if self.fields.get("url"):
            return self.fields["url"]
        doi = self.fields.get("doi")
        if doi:
            return doi if doi.startswith("http") else f"https://doi.org/{doi}"
        return None


# Fields that are not LaTeX: decoding would eat a URL's `&` (an alignment character in LaTeX).
_VERBATIM_FIELDS = {"url", "doi", "eprint", "file", "isbn", "issn"}


# What pylatexenc reads in a field: its special characters and the ligatures -- --- `` '' !` ?`.
# A field with none of them decodes to itself (tests/markup/test_bibliography.py checks it on
# generated text), so it is not decoded: pylatexenc needs ~0.1 ms even for "Distill".
_LATEX = re.compile(r"[\\{}$%&~#^_]|--|``|''|!`|\?`")

# The LaTeX nearly every .bib holds, decoded here as pylatexenc decodes it (tests compare both on
# generated text): braces that protect capitals, `{{DNA}}`, and the five accents (backslash and
# one of " ' ` ^ ~) on one ASCII letter: `\"o`, `\"{o}`, `{\"o}`. pylatexenc walks a field
# character by character, ~0.3 ms for one author list; anything else still goes to it.
_ACCENT = re.compile(r"\\([\"'`^~])(?:\{([A-Za-z])\}|([A-Za-z]))")
_COMBINING = {'"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303"}
_MAX_SIMPLE_DEPTH = 32  # braces nest 1-3 deep in real .bib files; pylatexenc copes to ~250
_NOT_SIMPLE = re.compile(r"[\\$%&~#^_]|--|``|''|!`|\?`")


def _simple_latex(value: str) -> str | None:
    """`value` decoded, when it holds only braces and the accents above; else None."""
    text = _ACCENT.sub(
        lambda m: unicodedata.normalize("NFC", (m[2] or m[3]) + _COMBINING[m[1]]), value
    )
    if _NOT_SIMPLE.search(text):
        return None
    depth = 0
    for char in text:
        if char == "{":
            depth += 1
            if depth > _MAX_SIMPLE_DEPTH:
                return None  # pylatexenc decides (deep enough, it runs out of recursion)
        elif char == "}":
            depth -= 1
            if depth < 0:
                return None  # unbalanced: pylatexenc's error names it
    if depth:
        return None
    return text.replace("{", "").replace("}", "")


# The longest field that is LaTeX-decoded. pylatexenc needs several microseconds a character
# (more for accents and macros), so a pasted 3 MB abstract would hold up every build for
# minutes; no title, venue or note is anywhere near this long.
MAX_FIELD_CHARS = 64 * 1024


class _Decoding(middlewares.LatexDecodingMiddleware):
    """LaTeX decoding for every field except the verbatim ones, one field at a time, so that a
    field too long to decode or one pylatexenc cannot read is an error at its own line."""

    def __init__(self, display: str) -> None:
        super().__init__()
        self.display = display

    def transform_entry(self, entry: Any, library: Any) -> Any:
        for f in entry.fields:
            if not isinstance(f.value, str) or f.key.lower() in _VERBATIM_FIELDS:
                continue
            # The value setter resets how the value was enclosed; only its text changes here.
            enclosing = f.enclosing
            f.value = self._decode(
                f.value, f"entry '{entry.key}': field '{f.key}'", _line(f, entry)
            )
            f.enclosing = enclosing
        return entry

    def transform_string(self, string: Any, library: Any) -> Any:
        if isinstance(string.value, str):
            enclosing = string.enclosing
            string.value = self._decode(
                string.value, f"@string '{string.key}'", _line(string, string)
            )
            string.enclosing = enclosing
        return string

    def _decode(self, value: str, where: str, line: int) -> str:
        if len(value) > MAX_FIELD_CHARS:
            raise UserError(
                f"{where} is {len(value):,} characters long, more than the "
                f"{MAX_FIELD_CHARS:,} a bibliography field may have",
                file=self.display,
                line=line,
                hint="shorten it, or leave long abstracts out of the .bib file",
            )
        if not _LATEX.search(value):
            return value
        simple = _simple_latex(value)
        if simple is not None:
            return simple
        decoded, error = self._transform_python_value_string(value)
        if error:
            detail = " ".join(error.split()).rstrip(".")
            raise UserError(
                f"{where} cannot be read as LaTeX: {detail}",
                file=self.display,
                line=line,
                hint="check its braces and backslashes",
            )
        return decoded


def _line(item: Any, block: Any) -> int:
    """The 1-based line of a field (or a block), from bibtexparser's 0-based start_line."""
    start = getattr(item, "start_line", None)
    if start is None:
        start = getattr(block, "start_line", None)
    return (start or 0) + 1


_cache: dict[tuple[str, int, int], dict[str, BibEntry]] = {}


def load_bib(path: Path, display: str) -> dict[str, BibEntry]:
    """Entries of one .bib file by key. `display` is the site-relative name used in errors."""
    stat = path.stat()
    cache_key = (str(path), stat.st_size, stat.st_mtime_ns)
    cached = _cache.get(cache_key)
    if cached is None:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(
                "bibliography is not UTF-8 text", file=display, line=1, hint=str(exc.reason)
            ) from None
        cached = parse_bib(text, display)
        _cache[cache_key] = cached
    return cached


def parse_bib(text: str, display: str) -> dict[str, BibEntry]:
    # bibtexparser logs each broken entry as a warning; we report it ourselves, as one line.
    splitter_log = logging.getLogger("bibtexparser.splitter")
    level = splitter_log.level
    splitter_log.setLevel(logging.ERROR)
    try:
        library = bibtexparser.parse_string(
            text,
            append_middleware=[
                _Decoding(display),
                middlewares.SeparateCoAuthors(),
                middlewares.SplitNameParts(),
            ],
        )
    finally:
        splitter_log.setLevel(level)
    if library.failed_blocks:
        block = library.failed_blocks[0]
        raise UserError(
            f"bad BibTeX: {_reason(block)}",
            file=display,
            line=(block.start_line or 0) + 1,
            hint="check the braces, quotes and commas of this entry",
        )
    entries: dict[str, BibEntry] = {}
    for entry in library.entries:
        fields: dict[str, str] = {}
        authors: tuple[str, ...] = ()
        for f in entry.fields:
            if f.key.lower() == "author":
                authors = (
                    tuple(_name(n) for n in f.value)
                    if isinstance(f.value, list)
                    else (str(f.value),)
                )
            elif isinstance(f.value, str):
                fields[f.key.lower()] = " ".join(f.value.split())
        entries[entry.key] = BibEntry(
            key=entry.key,
            type=entry.entry_type.lower(),
            fields=fields,
            authors=authors,
            file=display,
            line=(entry.start_line or 0) + 1,
        )
    return entries


def _reason(block: Any) -> str:
    if type(block).__name__ == "DuplicateBlockKeyBlock":
        return f"the key '{getattr(block, 'key', '?')}' is used twice"
    error = getattr(block, "error", None)
    reason = getattr(error, "abort_reason", None) or str(error or "") or "syntax error"
    return " ".join(reason.split()).rstrip(".").lower()


def _name(parts: Any) -> str:
    if isinstance(parts, str):
        return parts
    first = " ".join(parts.first)
    von = " ".join(parts.von)
    last = " ".join(parts.last)
    name = " ".join(p for p in (first, von, last) if p)
    jr = " ".join(parts.jr)
    return f"{name}, {jr}" if jr else name


def author_list(names: tuple[str, ...]) -> str:
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def reference_html(entry: BibEntry) -> str:
    """One reference-list entry: authors, title (linked), venue, year — all escaped."""
    e = html.escape
    parts: list[str] = []
    if entry.authors:
        names = author_list(entry.authors)
        parts.append(f'<span class="cp-ref-authors">{e(names)}</span>{_stop(names)}')
    title = entry.fields.get("title", entry.key)
    url = entry.url
    # Only web links: a .bib from elsewhere must not smuggle in a javascript: URL.
    if url and re.match(r"^https?://", url):
        parts.append(f'<a class="cp-ref-title" href="{e(url)}">{e(title)}</a>{_stop(title)}')
    else:
        parts.append(f'<span class="cp-ref-title">{e(title)}</span>{_stop(title)}')
    venue = next((entry.fields[f] for f in _VENUE_FIELDS if entry.fields.get(f)), None)
    year = entry.fields.get("year")
    if venue:
        parts.append(
            f'<span class="cp-ref-venue">{e(venue)}</span>'
            + (f", {e(year)}." if year else _stop(venue))
        )
    elif year:
        parts.append(f"{e(year)}.")
    return " ".join(parts)


def _stop(text: str) -> str:
    """A full stop, unless the text already ends with one (titles ending in '?')."""
    return "" if text.rstrip().endswith((".", "?", "!")) else "."
