"""The site's index: every article but the index page itself, newest first."""

from __future__ import annotations

from typing import Sequence, TypeVar

from circuitpress.structure.series import Article

A = TypeVar("A", bound=Article)


def newest_first(articles: Sequence[A]) -> list[A]:
    """Dated articles newest first, then undated ones; ties by title (reverse)."""
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
