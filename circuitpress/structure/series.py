"""Series navigation: the previous and next article of a thread, ordered by date then title."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

if TYPE_CHECKING:
    from circuitpress.markup import ParsedPage


class Article(Protocol):
    page: ParsedPage

    @property
    def url_path(self) -> str: ...


def series_navigation(
    articles: Sequence[Article], url: Callable[[str], str]
) -> dict[str, dict[str, Any]]:
    """Per article file in a series: its name, position, count and prev/next links."""
    by_series: dict[str, list[Article]] = {}
    for a in articles:
        if a.page.meta.series:
            by_series.setdefault(a.page.meta.series, []).append(a)
    nav: dict[str, dict[str, Any]] = {}
    for name, members in by_series.items():
        members.sort(
            key=lambda a: (
                a.page.meta.published is None,
                a.page.meta.published or 0,
                a.page.meta.title,
            )
        )
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


def _link(article: Article | None, url: Callable[[str], str]) -> dict[str, str] | None:
    if article is None:
        return None
    return {"title": article.page.meta.title, "url": url(article.url_path)}
