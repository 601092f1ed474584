"""The BibTeX of the article itself, shown in the appendix's citation box (as Distill does)."""

from __future__ import annotations

import re
import unicodedata

from circuitpress.config import Author, SiteConfig, is_organisation
from circuitpress.markup.frontmatter import FrontMatter


def article_bibtex(meta: FrontMatter, slug: str, config: SiteConfig) -> str:
    """`@article{…}` for this page: authors, title, the site as journal, year, URL, DOI."""
    authors = meta.authors or config.site.authors
    year = str(meta.published.year) if meta.published else None
    fields: list[tuple[str, str]] = []
    if authors:
        fields.append(("author", " and ".join(_bib_name(a) for a in authors)))
    fields.append(("title", meta.title))
    fields.append(("journal", config.site.title))
    if year:
        fields.append(("year", year))
    url = page_url(config.site.base_url, slug)
    if url:
        fields.append(("note", url))
    if meta.doi:
        fields.append(("doi", meta.doi))
    body = ",\n".join(
        f"  {k} = {{{_escape(v) if k not in ('note', 'doi', 'author') else v}}}" for k, v in fields
    )
    return f"@article{{{citation_key(authors, year, meta.title)},\n{body}\n}}"


def page_url(base_url: str, slug: str) -> str | None:
    """The article's absolute URL, when the site's base_url is a full URL."""
    if not re.match(r"^https?://", base_url):
        return None
    return base_url.rstrip("/") + "/" + (f"{slug}/" if slug else "")


def citation_key(authors: tuple[Author, ...], year: str | None, title: str) -> str:
    """Distill-style key: first author's last name, year, first significant title word."""
    first = authors[0].name if authors else ""
    last = (
        _ascii(first.split()[1 if is_organisation(first) and len(first.split()) > 1 else -1])
        if first
        else ""
    )
    words = [w for w in re.findall(r"[A-Za-z0-9]+", _ascii(title)) if w.lower() not in _STOP_WORDS]
    key = f"{last}{year or ''}{words[0] if words else ''}".lower()
    return key or "article"


_STOP_WORDS = {"a", "an", "the", "of", "on", "in", "and", "to", "for"}


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _bib_name(author: Author) -> str:
    parts = author.name.split()
    if is_organisation(author.name):
        return "{" + _escape(author.name) + "}"  # a group: BibTeX must not invert it
    if len(parts) < 2:
        return _escape(author.name)
    return _escape(f"{parts[-1]}, {' '.join(parts[:-1])}")


def _escape(value: str) -> str:
    # Braces would unbalance the field; these characters are special to LaTeX.
    value = value.replace("{", "").replace("}", "")
    return re.sub(r"(?<!\\)([&%#_$])", r"\\\1", value)
