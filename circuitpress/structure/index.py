"""The site's index: every article but the index page itself, a series as one entry.

A series is listed once, where its newest part would stand, with its parts in reading order
under its name (Part 1 first, as Distill's Circuits thread lists its articles); an article in
no series stands alone. Entries are newest first; undated ones come last.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Generic, Sequence, TypeVar

from circuitpress.structure.series import Article, series_members

A = TypeVar("A", bound=Article)


def newest_first(articles: Sequence[A]) -> list[A]:
    """Dated articles newest first, then undated ones; ties by title (reverse). The feed's
    order."""
    listed = [a for a in articles if a.page.slug != ""]
    listed.sort(
        key=lambda a: (
            a.page.meta.published is not None,
            a.page.meta.published or 0,
            a.page.meta.title,
        ),
        reverse=True,
    )
    return listed


@dataclass
class IndexEntry(Generic[A]):
    """One entry of the index: a series (`series` is its name) or a single article."""

    series: str | None
    articles: list[A] = field(default_factory=list)

    @property
    def newest(self) -> datetime.date | None:
        dates = [a.page.meta.published for a in self.articles if a.page.meta.published]
        return max(dates) if dates else None


def index_entries(articles: Sequence[A]) -> list[IndexEntry[A]]:
    """The index in order: series and single articles, newest first (a series by its newest
    part), undated last, ties by name."""
    listed = [a for a in articles if a.page.slug != ""]
    entries: list[IndexEntry[A]] = [
        IndexEntry(name, members) for name, members in series_members(listed).items()
    ]
    entries += [IndexEntry(None, [a]) for a in listed if not a.page.meta.series]

    def key(entry: IndexEntry[A]) -> tuple[bool, datetime.date, str]:
        name = entry.series or entry.articles[0].page.meta.title
        return (entry.newest is not None, entry.newest or datetime.date.min, name)

    # Newest first; among equal dates, names A to Z (a stable sort by name, then by date).
    entries.sort(key=lambda e: key(e)[2])
    entries.sort(key=lambda e: key(e)[:2], reverse=True)
    return entries
