"""Every internal link and anchor of a built site must land somewhere (`circuitpress check`).

Works on the in-memory build (`build.writer.files` and `.copies`), so it needs no server and
writes nothing. Internal URLs are resolved like a browser would (relative to the page, under the
site's base path; `dir/` is `dir/index.html`); an `#anchor` must be an `id` (or `<a name>`) in
the target page. External links are checked only when asked, with HEAD requests.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Iterable, Iterator
from urllib.parse import unquote, urljoin, urlsplit

from circuitpress.config import host_of
from circuitpress.errors import BuildWarning

if TYPE_CHECKING:
    from circuitpress.build.pipeline import SiteBuild

# Which attribute of which element holds a URL the reader's browser will fetch or follow.
_URL_ATTRS = {
    "a": ("href",),
    "area": ("href",),
    "link": ("href",),
    "img": ("src",),
    "script": ("src",),
    "iframe": ("src",),
    "embed": ("src",),
    "source": ("src",),
    "track": ("src",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "object": ("data",),
    "image": ("href", "xlink:href"),  # SVG
    "use": ("href", "xlink:href"),
    "form": ("action",),
}
# rel values whose href is not a page of this site (or not a page at all).
_SKIP_REL = {"preconnect", "dns-prefetch", "alternate-external"}
_NOT_LINKS = re.compile(r"^(mailto|tel|javascript|data|blob|about|sms):", re.IGNORECASE)
_EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
EXTERNAL_TIMEOUT_S = 6.0


@dataclass(frozen=True)
class Link:
    url: str
    line: int
    tag: str


class _PageScan(HTMLParser):
    """The links and the anchor targets (id, <a name>) of one HTML page, with line numbers."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[Link] = []
        self.ids: set[str] = set()
        self.base_href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): v for k, v in attrs if v is not None}
        line = self.getpos()[0]
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "a" and "name" in values:
            self.ids.add(values["name"])
        if tag == "base" and "href" in values and self.base_href is None:
            self.base_href = values["href"]
            return
        if tag == "link" and _SKIP_REL & set(values.get("rel", "").lower().split()):
            return
        for attr in _URL_ATTRS.get(tag, ()):
            url = values.get(attr)
            if url is not None and url.strip():
                self.links.append(Link(url.strip(), line, tag))
        if tag in ("img", "source") and values.get("srcset", "").strip():
            for url in srcset_urls(values["srcset"]):
                self.links.append(Link(url, line, tag))

    handle_startendtag = handle_starttag


def srcset_urls(srcset: str) -> list[str]:
    """The URLs of a `srcset` ("a.png 1x, a@2x.png 2x"), read as HTML does: a candidate's URL is
    a run of non-space characters (commas included, as in a data: URL or `?w=1,2`), then
    optional descriptors up to the next comma. Non-page URLs (data:, …) are left out."""
    urls: list[str] = []
    pos, end = 0, len(srcset)
    while pos < end:
        while pos < end and (srcset[pos].isspace() or srcset[pos] == ","):
            pos += 1
        start = pos
        while pos < end and not srcset[pos].isspace():
            pos += 1
        url = srcset[start:pos]
        if url.endswith(","):  # "a.png, b.png": the comma ends the candidate
            url = url.rstrip(",")
        else:
            while pos < end and srcset[pos] != ",":  # descriptors
                pos += 1
        if url and not _NOT_LINKS.match(url):
            urls.append(url)
    return urls


@dataclass
class _Page:
    rel: str
    links: list[Link]
    ids: set[str]
    base_href: str | None


class LinkChecker:
    """Checks the links of a set of built files; `files` maps site paths to bytes."""

    def __init__(
        self,
        files: dict[str, bytes],
        copies: Iterable[str] = (),
        *,
        base_path: str = "/",
        base_url: str = "/",
        display_prefix: str = "_site/",
        sources: dict[str, str] | None = None,
        root: Path | None = None,
    ) -> None:
        self.files = files
        self.existing = set(files) | set(copies)
        self.base_path = base_path
        # A full base_url ('https://x.github.io/proj/') makes absolute links to it internal
        # (canonical links, Open Graph URLs); only its path matters once it is on our host.
        self.site_origin = _origin(base_url)
        self.display_prefix = display_prefix
        self.sources = sources or {}
        self.root = root
        self._pages: dict[str, _Page] = {}
        self._source_lines: dict[str, list[str]] = {}

    def page(self, rel: str) -> _Page:
        if rel not in self._pages:
            scan = _PageScan()
            scan.feed(self.files[rel].decode("utf-8", errors="replace"))
            scan.close()
            self._pages[rel] = _Page(rel, scan.links, scan.ids, scan.base_href)
        return self._pages[rel]

    def html_pages(self) -> list[str]:
        return sorted(rel for rel in self.files if rel.endswith((".html", ".htm")))

    def internal(self) -> Iterator[BuildWarning]:
        for rel in self.html_pages():
            page = self.page(rel)
            page_url = self.base_path + rel
            if page.base_href:
                page_url = urljoin(page_url, page.base_href)
            for link in page.links:
                problem = self.check(page, page_url, link)
                if problem is not None:
                    message, hint = problem
                    yield self.warning(rel, link.line, message, hint, link.url)

    def check(self, page: _Page, page_url: str, link: Link) -> tuple[str, str | None] | None:
        """(message, hint) when `link` on `page` goes nowhere; None when it is fine or external."""
        url = link.url
        if _NOT_LINKS.match(url):
            return None
        if self.site_origin and url.lower().startswith(self.site_origin):
            url = url[len(self.site_origin) :] or "/"
        elif _EXTERNAL.match(url):
            return None
        target = urlsplit(urljoin(page_url, url))
        path = unquote(target.path)
        if not path.startswith(self.base_path) and path + "/" != self.base_path:
            return (
                f"link '{link.url}' leaves the site's base path {self.base_path}",
                "write links relative to the page, or start them with the base path of base_url",
            )
        raw = path[len(self.base_path) :] if path.startswith(self.base_path) else ""
        if raw == "" or raw.endswith("/"):
            raw += "index.html"
        rel = _normalise(raw)
        if rel is None:
            return (f"link '{link.url}' climbs above the site root", None)
        if rel not in self.existing:
            if rel + "/index.html" in self.existing:
                rel = rel + "/index.html"  # hosts redirect 'a' to 'a/'
            else:
                return (
                    f"broken link '{link.url}': no {rel} in the built site",
                    _near_path(rel, self.existing),
                )
        fragment = unquote(target.fragment)
        if (
            not fragment
            or fragment == "top"
            or rel not in self.files
            or not rel.endswith((".html", ".htm"))
        ):
            return None
        ids = self.page(rel).ids
        if fragment not in ids:
            where = "this page" if rel == page.rel else rel
            return (
                f"broken anchor '{link.url}': no element with id '{fragment}' in {where}",
                _near(fragment, ids),
            )
        return None

    def external_links(self) -> dict[str, tuple[str, int]]:
        """Each external http(s) URL with the first place that links to it."""
        found: dict[str, tuple[str, int]] = {}
        for rel in self.html_pages():
            for link in self.page(rel).links:
                url = link.url
                if url.startswith("//"):
                    url = "https:" + url
                if re.match(r"^https?://", url, re.IGNORECASE) and not (
                    self.site_origin and url.lower().startswith(self.site_origin)
                ):
                    found.setdefault(url.split("#", 1)[0], (rel, link.line))
        return found

    def external(self, timeout: float = EXTERNAL_TIMEOUT_S) -> Iterator[BuildWarning]:
        links = self.external_links()
        if not links:
            return
        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(lambda url: (url, probe(url, timeout)), sorted(links)))
        for url, problem in outcomes:
            if problem is not None:
                rel, line = links[url]
                yield self.warning(rel, line, f"external link '{url}' {problem}", None, url)

    def warning(
        self, rel: str, line: int, message: str, hint: str | None, url: str | None = None
    ) -> BuildWarning:
        """Located in the article's Markdown when the link is written there (the line to edit),
        else in the built page, naming the article it was built from."""
        source = self.sources.get(rel)
        if source is not None and url is not None:
            source_line = self._line_in_source(source, url)
            if source_line is not None:
                return BuildWarning(message, file=source, line=source_line, hint=hint)
        if source is not None:
            hint = (hint + "; " if hint else "") + f"the page is built from {source}"
        return BuildWarning(message, file=self.display_prefix + rel, line=line, hint=hint)

    def _line_in_source(self, source: str, url: str) -> int | None:
        if self.root is None:
            return None
        if source not in self._source_lines:
            try:
                text = (self.root / source).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                text = ""
            self._source_lines[source] = text.splitlines()
        # The URL as the author wrote it, as a Markdown link target or an HTML attribute.
        needles = (f"]({url}", f"<{url}>", f'"{url}"', f"'{url}'")
        for number, text_line in enumerate(self._source_lines[source], 1):
            if any(n in text_line for n in needles):
                return number
        return None


def probe(url: str, timeout: float) -> str | None:
    """None when `url` answers; otherwise what went wrong, in a few words."""
    headers = {"User-Agent": "circuitpress-linkcheck/1 (+https://github.com)"}
    for method in ("HEAD", "GET"):  # some servers refuse HEAD (405) but serve GET
        request = urllib.request.Request(url, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if response.status < 400:
                    return None
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            if method == "HEAD" and status in (403, 405, 501):
                continue
            return f"answered HTTP {status}"
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return f"could not be reached ({reason}; offline?)"
        if method == "HEAD" and status in (403, 405, 501):
            continue
        return f"answered HTTP {status}"
    return "could not be checked"


def check_links(build: "SiteBuild", *, external: bool = False) -> Iterator[BuildWarning]:
    """Broken internal links and anchors of a finished (in-memory) build; external with
    `external`."""
    checker = LinkChecker(
        build.writer.files,
        build.writer.copies,
        base_path=build.config.base_path,
        base_url=build.config.site.base_url,
        display_prefix=_display_prefix(build.root, build.out),
        sources=_sources(build),
        root=build.root,
    )
    yield from checker.internal()
    if external:
        yield from checker.external()


def _display_prefix(root: Path, out: Path) -> str:
    try:
        return out.relative_to(root).as_posix() + "/"
    except ValueError:
        return out.as_posix() + "/"


def _sources(build: "SiteBuild") -> dict[str, str]:
    """Built page -> the article it comes from, by the slug rule (content/a/b.md -> a/b/)."""
    from circuitpress.build.discover import page_sources

    content = build.root / "content"
    found: dict[str, str] = {}
    if not content.is_dir():
        return found
    # The build's own discovery: pages in linked folders inside the site are published too.
    for path in page_sources(build.root):
        slug = path.relative_to(content).with_suffix("").as_posix()
        rel = "index.html" if slug == "index" else f"{slug}/index.html"
        if rel in build.writer.files:
            found[rel] = path.relative_to(build.root).as_posix()
    return found


def _normalise(rel: str) -> str | None:
    parts: list[str] = []
    for part in PurePosixPath(rel).parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part not in (".", "/"):
            parts.append(part)
    return "/".join(parts) or "index.html"


def _origin(base_url: str) -> str | None:
    host = host_of(base_url)
    return host.lower() if host else None


def _near_path(rel: str, existing: Iterable[str]) -> str | None:
    """'did you mean …' among pages for a missing page, among files for a missing file."""
    if rel.endswith("index.html"):
        pages = {p[: -len("index.html")] for p in existing if p.endswith("index.html")}
        return _near(rel[: -len("index.html")], pages - {""})
    return _near(rel, existing)


def _near(word: str, candidates: Iterable[str]) -> str | None:
    from circuitpress.errors import did_you_mean

    return did_you_mean(word, candidates)
