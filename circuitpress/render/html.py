"""The theme: a Jinja2 environment over `SITE/themes/NAME/` then the built-in theme, and the pages.

`Theme` turns what markup produced (a `FrontMatter` and a `RenderedPage`) into whole HTML
documents. Templates stay presentational: everything a template would otherwise compute (dates,
the byline, the plain-text citation, meta-tag values, base-aware URLs) is computed here, so it
is tested once and every overriding template gets it for free.

Links are always absolute paths under the site's base path (`/sub/a/`), never relative ones,
because `404.html` is served at arbitrary depths. Output depends only on the inputs: asset URLs
carry a content hash (`?v=…`), assets are listed sorted, no clock is read.

What each template receives is listed in themes/distill/README.md. `sitemap_xml`, `feed_xml`
(render/feeds.py) are re-exported here for the build.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import re
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Iterable

import jinja2
from markupsafe import Markup

from circuitpress.config import SiteConfig, is_organisation
from circuitpress.errors import UserError, choices_hint
from circuitpress.paths import site_file, walk_files
from circuitpress.render.feeds import feed_xml, page_path, sitemap_xml
from circuitpress.render.jinja import CompiledTemplates, Environment, escape_text
from circuitpress.render.themes import builtin_themes
from circuitpress.urls import LINK_HINT, is_safe_link

__all__ = ["Theme", "feed_xml", "page_path", "sitemap_xml"]

BUILTIN_THEMES = builtin_themes()
DEFAULT_THEME = "distill"
ASSET_PREFIX = "assets/theme/"
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
# Reuse licences a reader can follow; anything else is shown as text.
LICENSE_URLS = {
    "cc-by 4.0": "https://creativecommons.org/licenses/by/4.0/",
    "cc-by-sa 4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "cc-by-nc 4.0": "https://creativecommons.org/licenses/by-nc/4.0/",
    "cc0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "cc0 1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
}


def long_date(d: date | None) -> str:
    """'March 10, 2020' — spelled out without the locale, so output never depends on it."""
    return f"{MONTHS[d.month - 1]} {d.day}, {d.year}" if d else ""


def scholar_name(name: str) -> str:
    """Google Scholar wants 'Last, First'; a name that already has a comma is left alone."""
    parts = name.strip().rsplit(" ", 1)
    if "," in name or len(parts) == 1 or is_organisation(name):
        return name
    return f"{parts[1]}, {parts[0]}"


def surname(name: str) -> str:
    if is_organisation(name):
        return name.strip()
    return name.split(",")[0].strip() if "," in name else name.strip().rsplit(" ", 1)[-1]


def citation_text(
    title: str, authors: list[str], journal: str, d: date | None, doi: str | None
) -> str:
    """Distill's plain-text citation: 'Olah, et al., "Zoom In", Distill, 2020.'"""
    if len(authors) >= 3:
        who = f"{surname(authors[0])}, et al., "
    elif len(authors) == 2:
        who = f"{surname(authors[0])} & {surname(authors[1])}, "
    else:
        who = "".join(f"{surname(a)}, " for a in authors)
    where = f"{journal}, {d.year}." if d else f"{journal}."
    return f"{who}\u201c{title}\u201d, {where}" + (f" https://doi.org/{doi}" if doi else "")


class Theme:
    """The built-in theme `config.build.theme`, overridable file by file from
    `SITE/themes/NAME/`."""

    def __init__(self, config: SiteConfig) -> None:
        self.config = config
        self.name = config.build.theme
        self.layers = self._layers()  # highest priority first
        self._check_links()
        override = self._override_dir()
        self.env = Environment(
            loader=jinja2.ChoiceLoader(
                [
                    _SiteTemplates(config.root, d / "templates", f"themes/{self.name}/templates")
                    if d == override
                    else jinja2.FileSystemLoader(str(d / "templates"))
                    for d in self.layers
                ]
            ),
            autoescape=True,
            undefined=_Undefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # A Theme lives for one build (or one preview-server memo, renewed when overrides
            # change): stat-ing every template on each include only costs time.
            auto_reload=False,
            # Never evicted (a theme has a dozen templates): a plain dict, where Jinja's LRU
            # cache takes a lock and reorders a deque on each of the 7 lookups a page.
            cache_size=-1,
        )
        # The built-in theme's templates, compiled once and kept (like .pyc), not each build.
        self.env.bytecode_cache = CompiledTemplates.create(self.env, (BUILTIN_THEMES,))
        self._assets = self._collect_assets()
        self._versions = {p: hashlib.sha256(b).hexdigest()[:10] for p, b in self._assets}
        self.env.globals.update(self._globals())

    # --- set-up ---------------------------------------------------------------------------------

    def _override_dir(self) -> Path | None:
        """The site's `themes/NAME/`, unless it is the built-in theme itself (circuitpress's own
        repository is a site whose top-level themes/ holds the built-in themes)."""
        override = self.config.root / "themes" / self.name
        if not override.is_dir() or override.resolve() == (BUILTIN_THEMES / self.name).resolve():
            return None
        return override

    def _layers(self) -> list[Path]:
        override = self._override_dir()
        builtin = BUILTIN_THEMES / self.name
        if builtin.is_dir():
            return [override, builtin] if override else [builtin]
        if override:
            # A site's own theme: whatever it leaves out comes from the default theme.
            return [override, BUILTIN_THEMES / DEFAULT_THEME]
        names = [p.name for p in BUILTIN_THEMES.iterdir() if p.is_dir()]
        hint = choices_hint(self.name, names)
        raise UserError(
            f"unknown theme '{self.name}'",
            file="circuitpress.toml",
            line=_key_line(self.config, "theme"),
            hint=f"{hint}{' ' if hint.endswith('?') else '; '}"
            f"or add the folder themes/{self.name}/",
        )

    def _check_links(self) -> None:
        """[site] URLs become hrefs on every page: a `javascript:` one would run for every
        reader."""
        site = self.config.site
        links = [("repository", site.repository)]
        links += [("authors", url) for a in site.authors for url in (a.url, a.affiliation_url)]
        for key, url in links:
            if url is not None and not is_safe_link(url):
                raise UserError(
                    f"[site] {key}: '{url}' is not a web link",
                    file="circuitpress.toml",
                    line=_key_line(self.config, key),
                    hint=LINK_HINT,
                )

    def _collect_assets(self) -> list[tuple[str, bytes]]:
        found: dict[str, bytes] = {}
        override = self._override_dir()
        site = self.config.root
        for layer in reversed(self.layers):  # lowest priority first, so overrides win
            root = layer / "assets"
            if not root.is_dir():
                continue
            for path in walk_files(site, root):
                rel = path.relative_to(root).as_posix()
                if layer == override:
                    # Every asset is published: one that links out of the site is refused.
                    path = site_file(site, path, shown=f"themes/{self.name}/assets/{rel}")
                found[ASSET_PREFIX + rel] = path.read_bytes()
        return sorted(found.items())

    def _globals(self) -> dict[str, Any]:
        site = self.config.site
        return {
            "site": SiteView(site, self.config.base_path),
            "url": self.url,
            "asset": self.asset,
            "absolute_url": self.absolute_url,
            "stylesheets": self._ordered("css", "distill.css"),
            "scripts": self._ordered("js", "distill.js"),
            "long_date": long_date,
            "feed_url": self.url("feed.xml"),
        }

    def _ordered(self, kind: str, first: str) -> list[str]:
        """Every `assets/KIND/*.KIND` of the theme: the theme's own file first, then by name."""
        prefix = f"{ASSET_PREFIX}{kind}/"
        names = [
            p[len(prefix) :]
            for p, _ in self._assets
            if p.startswith(prefix) and p.endswith("." + kind)
        ]
        names.sort(key=lambda n: (n != first, n))
        return [self.asset(f"{kind}/{n}") for n in names]

    # --- URLs -----------------------------------------------------------------------------------

    def url(self, site_path: str) -> str:
        """URL of a path relative to the site root ('a/b/', 'assets/x.png'), under base_url's path.

        External URLs and fragments pass through; a leading '/' is taken as the site root.
        """
        if _EXTERNAL.match(site_path):
            return site_path
        return self.config.base_path + site_path.lstrip("/")

    def absolute_url(self, site_path: str) -> str | None:
        """Full URL when base_url names a host (Open Graph, Scholar, feeds need one), else None."""
        host = self.config.host
        if host is None:
            return None
        url = self.url(site_path)
        return url if "://" in url else host + url

    def asset(self, path: str) -> str:
        """URL of a theme asset ('css/distill.css'), with a content hash so caches never go
        stale."""
        site_path = ASSET_PREFIX + path.lstrip("/")
        version = self._versions.get(site_path)
        return self.url(site_path) + (f"?v={version}" if version else "")

    # --- rendering ------------------------------------------------------------------------------

    def render_page(
        self, meta: Any, rendered: Any, *, slug: str, series_nav: dict[str, Any] | None, draft: bool
    ) -> str:
        path = page_path(slug)
        return self.render_template(
            "page.html",
            {
                "page": meta,
                "rendered": rendered,
                "article": self._article(meta, rendered, path),
                "series": self._series(meta, series_nav),
                "draft": draft,
                "canonical_url": self.absolute_url(path) or self.url(path),
                "body_html": Markup(rendered.body_html),
            },
        )

    def render_index(
        self,
        pages: list[tuple[str, Any]],
        groups: list[tuple[str | None, list[tuple[str, Any]]]] | None = None,
    ) -> str:
        """The front page: `articles` in the order given, and `groups`: each series with its
        parts in reading order, or one article alone (structure/index.py orders them). Without
        `groups`, every article is its own group."""

        def view(slug: str, meta: Any, series: str | None, part: int, parts: int) -> dict[str, Any]:
            return View(
                {
                    "url": self.url(page_path(slug)),
                    "title": meta.title,
                    "description": meta.description or "",
                    "date": long_date(meta.published),
                    "iso_date": meta.published.isoformat() if meta.published else "",
                    "authors": [a.name for a in meta.authors],
                    "draft": bool(meta.draft),
                    "series": series,
                    "part": part,
                    "parts": parts,
                }
            )

        if groups is None:
            groups = [(None, [page]) for page in pages]
        views = {
            slug: view(slug, meta, name, i + 1, len(members))
            for name, members in groups
            for i, (slug, meta) in enumerate(members)
        }
        return self.render_template(
            "index.html",
            {
                "articles": [
                    views.get(slug) or view(slug, meta, None, 1, 1) for slug, meta in pages
                ],
                "groups": [
                    View(series=name, articles=[views[slug] for slug, _ in members])
                    for name, members in groups
                ],
                "canonical_url": self.absolute_url("") or self.url(""),
                # The atlas (structure/atlas.py) is reachable from the front page.
                "atlas": View(
                    url=self.url("atlas/"),
                    layers=[f"{a.model}/{a.layer}" for a in self.config.atlas],
                )
                if self.config.atlas
                else None,
            },
        )

    def render_404(self) -> str:
        return self.render_template("404.html", {})

    def render_template(self, name: str, context: dict[str, Any]) -> str:
        """Render any template of the theme (e.g. `unit.html`) with the theme's globals."""
        try:
            return self.env.get_template(name).render(context)
        except UserError:
            raise  # an override that links out of the site (_SiteTemplates), already located
        except jinja2.TemplateNotFound as exc:
            # Located at the `{% include %}` or `{% extends %}` that names it, when there is one.
            file, line = _template_frame(exc.__traceback__, name, self.layers)
            missing = str(exc.name)
            raise UserError(
                f"theme '{self.name}' has no template '{missing}'",
                file=self._display(file),
                line=line or 1,
                hint=self._near_template(missing)
                or "an override must keep the name of the template it replaces",
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise UserError(
                f"template syntax error: {exc.message}",
                file=self._display(exc.name or name),
                line=exc.lineno,
            ) from None
        except jinja2.UndefinedError as exc:
            file, line = _template_frame(exc.__traceback__, name, self.layers)
            raise UserError(
                f"template error: {exc.message}",
                file=self._display(file),
                line=line,
                hint="check the variable names the theme's templates receive"
                " (docs/ARCHITECTURE.md)",
            ) from None
        except Exception as exc:  # noqa: BLE001 - only re-raised as a user error for a site's own template
            # `{{ page.title + 3 }}` in an override raises TypeError from inside the template: the
            # author's mistake, at a line of their file. The same error from the built-in theme
            # is ours, and stays an internal error.
            file, line = _template_frame(exc.__traceback__, name, self.layers)
            if line is None or not self._is_override(file):
                raise
            raise UserError(
                f"template error: {type(exc).__name__}: {exc}", file=self._display(file), line=line
            ) from None

    def assets(self) -> list[tuple[str, bytes]]:
        """Every theme asset as (site path, bytes), sorted; a site's override wins per file."""
        return list(self._assets)

    # --- page views -----------------------------------------------------------------------------

    def _near_template(self, missing: str) -> str | None:
        """'did you mean …?' among templates of the same folder and type, by their stem (the
        shared 'partials/' and '.html' would make any partial look close to any other)."""
        folder, stem, ext = _template_parts(missing)
        siblings = {
            parts[1]: name
            for name in self.env.list_templates()
            if (parts := _template_parts(name))[0] == folder and parts[2] == ext
        }
        near = difflib.get_close_matches(stem, sorted(siblings), n=3, cutoff=0.6)
        return (
            "did you mean " + " or ".join(repr(siblings[n]) for n in near) + "?" if near else None
        )

    def _is_override(self, name: str) -> bool:
        override = self._override_dir()
        return override is not None and (override / "templates" / name).is_file()

    def _display(self, name: str) -> str:
        """A template name as the author sees it: the override's path inside the site, if any."""
        if self._is_override(name):
            return f"themes/{self.name}/templates/{name}"
        return f"(theme {self.name})/templates/{name}"

    def _article(self, meta: Any, rendered: Any, path: str) -> dict[str, Any]:
        site = self.config.site
        authors = list(meta.authors) or list(site.authors)
        published: date | None = meta.published
        extra = meta.extra or {}
        image = getattr(meta, "image", None) or extra.get("image")
        license_name = meta.license or site.license
        names = [a.name for a in authors]
        affiliations = [a.all_affiliations() for a in authors]
        toc = rendered.toc
        top = min([e.level for e in toc], default=0)  # TOC depth relative to its top level
        return View(
            {
                "authors": authors,
                "has_affiliations": any(affiliations),
                # Google Scholar's citation_author_institution, after each citation_author.
                "scholar_institutions": [
                    [_institution(f.department, f.name) for f in found] for found in affiliations
                ],
                "keywords": list(
                    dict.fromkeys([*getattr(meta, "keywords", ()), *getattr(meta, "tags", ())])
                ),
                "published": long_date(published),
                "published_iso": published.isoformat() if published else "",
                "updated": long_date(meta.updated),
                "updated_iso": meta.updated.isoformat() if meta.updated else "",
                "scholar_date": _slashed(published) if published else "",
                "scholar_authors": [scholar_name(n) for n in names],
                "doi": meta.doi or "",
                "doi_url": f"https://doi.org/{meta.doi}" if meta.doi else "",
                "absolute_url": self.absolute_url(path),
                "image": self._image(str(image)) if image else None,
                "license": license_name,
                "license_url": LICENSE_URLS.get(license_name.strip().lower())
                if license_name
                else None,
                "updates": [(long_date(d), d.isoformat(), text) for d, text in meta.updates],
                "repository": site.repository,
                "citation": citation_text(meta.title, names, site.title, published, meta.doi),
                "toc": [
                    View(level=e.level, depth=e.level - top, id=e.id, html=_markup(e.html))
                    for e in toc
                ]
                if extra.get("toc") is not False  # front matter `toc: false`
                else [],
                "footnotes": [
                    View(id=f.id, number=f.number, html=_with_backrefs(f.html, f.backrefs))
                    for f in rendered.footnotes
                ],
                "references": [
                    View(id=r.id, key=r.key, number=r.number, html=_markup(r.html))
                    for r in rendered.references
                ],
                "bibtex": rendered.bibtex or "",
            }
        )

    def _image(self, image: str) -> str:
        url = self.url(image)
        return url if "://" in url else (self.absolute_url(image) or url)

    def _series(self, meta: Any, nav: dict[str, Any] | None) -> dict[str, Any] | None:
        if not nav or not (nav.get("prev") or nav.get("next")):
            return None
        out: dict[str, Any] = View(
            {
                "name": meta.series or "",
                "index": nav.get("index"),
                "count": nav.get("count"),
            }
        )
        for side in ("prev", "next"):
            item = nav.get(side)
            if item:
                # The build may pass URLs (already under the base path) or bare site paths.
                link = item["url"] if item["url"].startswith("/") else self.url(item["url"])
                out[side] = View(title=item["title"], url=link)
            else:
                out[side] = None
        return out


_EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|//|#)", re.I)


class _SiteTemplates(jinja2.FileSystemLoader):
    """The site's override templates. A template is rendered into every page (404.html into
    the 404 page), so one that links out of the site folder would publish the file it links to:
    it is refused, by the name the author gave it, whether rendered or included."""

    def __init__(self, site: Path, folder: Path, shown: str) -> None:
        super().__init__(str(folder))
        self.site, self.folder, self.shown = site, folder, shown

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        parts = jinja2.loaders.split_template_path(template)  # TemplateNotFound for '..'
        path = self.folder.joinpath(*parts)
        if path.is_symlink() or path.is_file():
            site_file(self.site, path, shown=f"{self.shown}/{'/'.join(parts)}")
        return super().get_source(environment, template)


class _Undefined(jinja2.StrictUndefined):
    """Printing or using a missing variable fails loudly (a typo in a template must not vanish
    silently), but `{% if name %}` is False, so templates can test optional context."""

    # jinja2 types StrictUndefined.__bool__ as raising (-> Never); here it returns False.
    def __bool__(self) -> bool:  # type: ignore[override]
        return False


class View(dict[str, Any]):
    """A dict that templates read as `x.key` at the cost of a dict lookup.

    Jinja's `x.key` tries the attribute first and only then the item. With a `__getattr__`
    fallback every read first raised and caught an AttributeError inside CPython's lookup
    (~0.5 µs, ~130 reads a page); here the item is looked up first (~0.1 µs), and only a name
    that is not a key goes on to the dict's own attributes. Items, `x["key"]` and the dict's
    methods resolve as they do for a dict, as long as no key is the name of a dict method
    (`items`, `get`, …), which it would hide. (Making the dict its own `__dict__` reads as fast
    but costs a Python `__init__` per view, more than it saves.)"""

    __slots__ = ()

    def __getattribute__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            return dict.__getattribute__(self, name)


class SiteView:
    """`site` in templates: the [site] settings plus the base path."""

    def __init__(self, settings: Any, base_path: str) -> None:
        self.title: str = settings.title
        self.description: str = settings.description
        self.language: str = settings.language
        self.authors = settings.authors
        self.license: str = settings.license
        self.repository: str | None = settings.repository
        self.base_url: str = settings.base_url
        self.base_path = base_path


def _template_frame(
    tb: TracebackType | None, fallback: str, layers: list[Path]
) -> tuple[str, int | None]:
    """The innermost template frame of a rendering error (Jinja maps its frames to templates),
    as a template name ('partials/byline.html') and line."""
    found: tuple[str, int | None] = (fallback, None)
    roots = [str(layer / "templates") + "/" for layer in layers]
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        for root in roots:
            if filename.startswith(root):
                found = (filename[len(root) :], tb.tb_lineno)
        tb = tb.tb_next
    return found


def _with_backrefs(html: str, backrefs: Iterable[str]) -> Markup:
    """Footnote HTML with its ↩ links inside its last paragraph, so they don't wrap on their own."""
    links = "".join(
        [
            f' <a href="#{escape_text(ref)}" class="cp-backref"'
            ' aria-label="Back to the text">\u21a9</a>'
            for ref in backrefs
        ]
    )
    body = html.rstrip()
    if body.endswith("</p>"):
        return _markup(body[: -len("</p>")] + links + "</p>")
    return _markup(body + links)


# Markup(text) for a str, without the Python-level Markup.__new__ (which only differs for an
# object with __html__ or an encoding): a view is built with a few dozen of these a page.
_markup: Callable[[str], Markup] = functools.partial(str.__new__, Markup)


def _institution(department: str | None, name: str) -> str:
    """'Department, Institution', either alone when the other is empty."""
    return f"{department}, {name}" if department and name else (department or name or "")


def _slashed(d: date) -> str:
    """`d.strftime("%Y/%m/%d")` (Google Scholar's date), without strftime's locale set-up."""
    if d.year < 1000:  # strftime's %Y pads a year < 1000 differently across platforms
        return d.strftime("%Y/%m/%d")
    return f"{d.year}/{d.month:02d}/{d.day:02d}"


def _template_parts(name: str) -> tuple[str, str, str]:
    """'partials/title.html' -> ('partials', 'title', '.html')."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.rpartition(".")
    return (folder, stem, dot + ext) if dot else (folder, base, "")


def _key_line(config: SiteConfig, key: str) -> int:
    try:
        lines = config.path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return 1
    for i, line in enumerate(lines, 1):
        if re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return i
    return 1
