"""Series navigation: the previous and next article of a thread, in reading order.

Reading order is the authors' `order:` (or `series_order:`), then the publication date, then the
title: a thread whose parts say their place reads in that order whatever their dates, and one
that does not reads oldest first.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, TypeVar

from circuitpress.errors import BuildWarning

if TYPE_CHECKING:
    from circuitpress.markup import ParsedPage


class Article(Protocol):
    page: ParsedPage

    @property
    def url_path(self) -> str: ...


A = TypeVar("A", bound=Article)


def reading_key(article: Article) -> tuple[Any, ...]:
    """Ordered parts first, by their number; then the rest oldest first; undated last."""
    meta = article.page.meta
    order = meta.series_order
    return (
        order is None,
        order if order is not None else 0,
        meta.published is None,
        meta.published or datetime.date.min,
        meta.title,
        article.page.file,
    )


def series_members(articles: Sequence[A]) -> dict[str, list[A]]:
    """Each series' articles in reading order, series by name."""
    by_series: dict[str, list[A]] = {}
    for a in articles:
        if a.page.meta.series:
            by_series.setdefault(a.page.meta.series, []).append(a)
    for members in by_series.values():
        members.sort(key=reading_key)
    return by_series


def series_navigation(
    articles: Sequence[Article], url: Callable[[str], str]
) -> dict[str, dict[str, Any]]:
    """Per article file in a series: its name, position, count and prev/next links."""
    nav: dict[str, dict[str, Any]] = {}
    for name, members in series_members(articles).items():
        for i, a in enumerate(members):
            prev = members[i - 1] if i > 0 else None
            nxt = members[i + 1] if i + 1 < len(members) else None
            nav[a.page.file] = {
                "name": name,
                "index": i + 1,
                "count": len(members),
                "prev": _link(prev, url),
                "next": _link(nxt, url),
            }
    return nav


def series_warnings(articles: Sequence[Article]) -> list[BuildWarning]:
    """An `order` the reader never sees (no series), and two parts claiming one place, whose
    order would then depend on their dates: located at the `order` line."""
    out = []
    for a in articles:
        meta = a.page.meta
        if meta.series_order is not None and not meta.series:
            out.append(
                BuildWarning(
                    f"front matter '{_order_key(a)}' {meta.series_order} orders nothing: the page"
                    " is in no series",
                    file=a.page.file,
                    line=meta.line_of("series_order"),
                    hint="add series: NAME, or remove the order",
                )
            )
    for name, members in series_members(articles).items():
        seen: dict[int, Article] = {}
        for a in members:
            order = a.page.meta.series_order
            if order is None:
                continue
            first = seen.setdefault(order, a)
            if first is not a:
                out.append(
                    BuildWarning(
                        f"'{_order_key(a)}' {order} is also the place of {first.page.file}"
                        f" in the series '{name}'",
                        file=a.page.file,
                        line=a.page.meta.line_of("series_order"),
                        hint="give each part its own number",
                    )
                )
    return out


def _order_key(article: Article) -> str:
    """`order` or `series_order`, as the author wrote it."""
    return article.page.meta.written("series_order")


def _link(article: Article | None, url: Callable[[str], str]) -> dict[str, str] | None:
    if article is None:
        return None
    return {"title": article.page.meta.title, "url": url(article.url_path)}
