"""Site-level XML: `sitemap.xml` and the Atom `feed.xml`.

Both are pure functions of the config and the pages, so a rebuild gives the same bytes: the feed's
`updated` is the newest article date (or SOURCE_DATE_EPOCH when set), never the clock.

URLs are absolute when `base_url` names a host. When it is only a path, the sitemap lists
root-relative paths (`/sub/a/`) and the feed's ids are `urn:uuid:`s derived from the site title
and path, so they stay stable however the site is later hosted. Site paths are percent-encoded
(a page `content/über.md` is `%C3%BCber/`): both formats need URLs, not file names.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from datetime import date, datetime, timezone
from typing import Any
from urllib.parse import quote

from circuitpress.config import SiteConfig


def escape(data: str, entities: dict[str, str] | None = None) -> str:
    """xml.sax.saxutils.escape, which is not imported for it: xml.sax.saxutils loads urllib's
    HTTP client (and ssl) to read external entities, 12 ms of every build."""
    data = data.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")
    if entities:
        for key, value in entities.items():
            data = data.replace(key, value)
    return data


def _attr(value: str) -> str:
    """An XML attribute value: saxutils' `escape` alone leaves '"' as is, which would end it."""
    return escape(value).replace('"', "&quot;")


def page_path(slug: str) -> str:
    """Site path of an article: `content/a/b.md` (slug `a/b`) -> `a/b/`; the index -> ``."""
    slug = slug.strip("/")
    if slug in ("", "index"):
        return ""
    if slug.endswith("/index"):
        slug = slug[: -len("/index")]
    return slug + "/"


def site_url(config: SiteConfig, site_path: str) -> str:
    """Absolute URL of a site path when base_url has a host, else the root-relative path.

    The site path is a path of the output folder ('a/b/', 'units/m/l/3/'), so it is
    percent-encoded: every character but ASCII letters, digits, '-', '_', '.', '~' and '/' (a
    '#', '?', '%', a space or a non-ASCII letter)."""
    return _Links(config).url(site_path)


class _Links:
    """What every URL of one sitemap or feed shares, read from the config once: parsing
    base_url again for each URL (its host, then its path) was most of their cost."""

    def __init__(self, config: SiteConfig) -> None:
        host = config.host
        self.absolute = host is not None
        self.prefix = (host or "") + config.base_path
        self.title = config.site.title

    def url(self, site_path: str) -> str:
        path = site_path.lstrip("/")
        # quote() leaves such a path as it is: skip its per-call set-up for the usual one.
        return self.prefix + (path if _UNQUOTED.fullmatch(path) else quote(path, safe="/"))

    def stable_id(self, site_path: str) -> str:
        if self.absolute:
            return self.url(site_path)
        return "urn:uuid:" + _uuid5(f"circuitpress:{self.title}:/{site_path}")


_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes


def _uuid5(name: str) -> str:
    """`str(uuid.uuid5(uuid.NAMESPACE_URL, name))` without building the UUID object (its
    Python-level constructor was a third of a feed's cost): the SHA-1 of namespace and name,
    its first 16 bytes with the version (5) and variant (RFC 4122) bits set, as 8-4-4-4-12
    hex."""
    b = bytearray(hashlib.sha1(_URL_NAMESPACE + name.encode("utf-8")).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# What quote(path, safe="/") never changes: its always-safe ASCII characters and "/".
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~/-]*")


def sitemap_xml(config: SiteConfig, paths: list[str]) -> str:
    """A sitemap of the given site paths ('', 'a/b/', 'units/m/l/3/'), sorted, without dups."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
    ]
    links = _Links(config)
    for path in sorted(set(paths)):
        lines.append(f"  <url><loc>{escape(links.url(path))}</loc></url>")
    lines.append("</urlset>")
    return "\n".join(lines) + "\n"


def _timestamp(d: date | datetime) -> str:
    if isinstance(d, datetime):
        d = d.astimezone(timezone.utc) if d.tzinfo else d.replace(tzinfo=timezone.utc)
        return d.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{d.isoformat()}T00:00:00Z"


def _entry_date(meta: Any) -> date | None:
    return meta.updated or meta.published


def feed_updated(entries: list[tuple[str, Any, str]]) -> str:
    """The feed's `updated`: SOURCE_DATE_EPOCH when set, else the newest article date."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return _timestamp(datetime.fromtimestamp(int(epoch), tz=timezone.utc))
    dates = [d for _, meta, _ in entries if (d := _entry_date(meta)) is not None]
    return _timestamp(max(dates)) if dates else "1970-01-01T00:00:00Z"


def _authors(names: list[str], indent: str) -> list[str]:
    return [f"{indent}<author><name>{escape(n)}</name></author>" for n in names]


def feed_xml(config: SiteConfig, entries: list[tuple[str, Any, str]]) -> str:
    """An Atom feed of articles `(slug, meta, summary_html)`, newest first (ties by slug)."""
    site = config.site
    links = _Links(config)
    updated = feed_updated(entries)

    def newest_first(entry: tuple[str, Any, str]) -> tuple[int, str]:
        d = entry[1].published
        return (-(d.toordinal() if d else 0), entry[0])

    site_authors = [a.name for a in site.authors] or [site.title]
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{_attr(site.language)}">',
        f"  <title>{escape(site.title)}</title>",
    ]
    if site.description:
        lines.append(f"  <subtitle>{escape(site.description)}</subtitle>")
    lines += [
        f'  <link rel="self" type="application/atom+xml" href="{_attr(links.url("feed.xml"))}"/>',
        f'  <link rel="alternate" type="text/html" href="{_attr(links.url(""))}"/>',
        f"  <id>{escape(links.stable_id(''))}</id>",
        f"  <updated>{updated}</updated>",
        *_authors(site_authors, "  "),
        "  <generator>circuitpress</generator>",
    ]
    for slug, meta, summary in sorted(entries, key=newest_first):
        path = page_path(slug)
        when = _entry_date(meta)
        lines += [
            "  <entry>",
            f"    <title>{escape(meta.title)}</title>",
            f'    <link rel="alternate" type="text/html" href="{_attr(links.url(path))}"/>',
            f"    <id>{escape(links.stable_id(path))}</id>",
            f"    <updated>{_timestamp(when) if when else updated}</updated>",
        ]
        if meta.published:
            lines.append(f"    <published>{_timestamp(meta.published)}</published>")
        lines += _authors([a.name for a in meta.authors], "    ")
        if summary:
            lines.append(f'    <summary type="html">{escape(summary)}</summary>')
        elif meta.description:
            lines.append(f"    <summary>{escape(meta.description)}</summary>")
        lines.append("  </entry>")
    lines.append("</feed>")
    return "\n".join(lines) + "\n"
