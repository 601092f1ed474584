"""The Markup API the build calls: parse a page (front matter, tokens, directive calls, plans),
then, after the engine ran, render it (body HTML, TOC, footnotes, references, citation box)."""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from markdown_it.token import Token

from circuitpress.config import SiteConfig
from circuitpress.errors import UserError
from circuitpress.extensions import DirectiveCall, PlanRecorder, Registry, RenderServices
from circuitpress.markup.bibliography import BibEntry, load_bib, reference_html
from circuitpress.markup.citation import article_bibtex
from circuitpress.markup.context import RENDER_KEY, PageRenderContext, html_renderer
from circuitpress.markup.frontmatter import FrontMatter
from circuitpress.markup.parser import create_parser
from circuitpress.markup.resolve import Resolver
from circuitpress.markup.state import ENV_KEY, PageEnv
from circuitpress.paths import is_file, is_link, site_file, site_image
from circuitpress.requests import Request, UnitRef

PlanFactory = Callable[[FrontMatter], PlanRecorder]
BIB_HINT = "a bibliography is a BibTeX file (.bib) inside the site folder"
SITE_BIBLIOGRAPHY = "references.bib"


@dataclass(frozen=True)
class TocEntry:
    level: int
    id: str
    html: str


@dataclass(frozen=True)
class Footnote:
    id: str  # "fn-N"
    number: int
    html: str  # without back-links: the theme adds them from `backrefs`
    backrefs: tuple[str, ...]  # ids of the in-text references, "fnref-N", "fnref-N-2", …


@dataclass(frozen=True)
class Reference:
    key: str
    number: int
    id: str  # "ref-KEY", the target of the in-text citation links
    html: str


@dataclass
class ParsedPage:
    file: str
    slug: str
    meta: FrontMatter
    tokens: list[Token]
    env: dict[str, Any]
    calls: list[DirectiveCall]
    source_hash: str


@dataclass(frozen=True)
class RenderedPage:
    body_html: str
    toc: list[TocEntry] = field(default_factory=list)
    footnotes: list[Footnote] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    bibtex: str = ""
    word_count: int = 0


class PagePlanContext:
    """The build's planner of a page plus the site folder, which only markup knows here
    (the `{figure}` directive checks that its image exists)."""

    def __init__(self, inner: PlanRecorder, site_root: Path):
        self.inner, self.site_root = inner, site_root
        self.file: str = inner.file
        self.default_model: str | None = inner.default_model
        found = getattr(inner, "site_images", None)
        self._images: dict[tuple[str, str], tuple[str, Path]] = {} if found is None else found

    def site_image(self, target: str, used: str) -> tuple[str, Path]:
        """`paths.site_image` for this page. What it found is remembered for the whole build
        (by the name and the page's folder): a site of hundreds of pages shows the same few
        images, and each look follows every link of the path (a dozen system calls)."""
        key = (target, posixpath.dirname(self.file))
        found = self._images.get(key)
        if found is None:
            found = self._images[key] = site_image(self.site_root, target, self.file, used=used)
        return found

    def ref(self, text: str, line: int) -> UnitRef:
        return self.inner.ref(text, line)

    def layer(self, text: str, line: int) -> tuple[str, str]:
        return self.inner.layer(text, line)

    def request(self, request: Request) -> None:
        self.inner.request(request)

    def mention(self, ref: UnitRef, line: int) -> None:
        self.inner.mention(ref, line)


def slug_of(file: str) -> str:
    """content/SLUG.md -> "SLUG"; content/index.md -> ""; content/a/b.md -> "a/b"."""
    path = re.sub(r"^content/", "", file.replace("\\", "/"))
    path = re.sub(r"\.md$", "", path)
    if path == "index":
        return ""
    return path.removesuffix("/index")


class Markup:
    """Markdown with circuitpress's directives, roles, citations, math and footnotes."""

    def __init__(self, config: SiteConfig, registry: Registry):
        self.config, self.registry = config, registry
        # Built once: markdown-it setup and plugin registration cost more than a short page.
        self.md = create_parser(front_matter=True)
        self.body_md = create_parser(front_matter=False)
        self.site_bib: dict[str, BibEntry] = {}
        site_bib = config.root / SITE_BIBLIOGRAPHY
        if is_file(site_bib) or is_link(site_bib):
            # Its entries are published as every page's references: never from outside the site.
            real = site_file(config.root, site_bib, shown=SITE_BIBLIOGRAPHY)
            if not real.is_file():
                raise UserError("is not a file", file=SITE_BIBLIOGRAPHY, line=1, hint=BIB_HINT)
            self.site_bib = load_bib(real, SITE_BIBLIOGRAPHY)
        self._page_bibs: dict[tuple[str, ...], dict[str, BibEntry]] = {}
        # id(entry) -> (entry, its HTML); holding the entry keeps its id from being reused.
        self._references: dict[int, tuple[BibEntry, str]] = {}

    def parse(self, file: str, source: str, plan: PlanFactory) -> ParsedPage:
        """Front matter, tokens and directive calls; calls every plan(). Raises UserError."""
        page = PageEnv(file=file, registry=self.registry, body_md=self.body_md)
        env: dict[str, Any] = {ENV_KEY: page}
        # Windows editors may start a file with an invisible byte-order mark; front matter
        # must still be recognised as the first line.
        tokens = self.md.parse(source.removeprefix("\ufeff"), env)
        meta = page.meta
        if meta is None:  # the front-matter rule raises first; this keeps the type checker honest
            raise UserError("the page has no front matter", file=file, line=1)
        page.bibliography = self._bibliography(meta, file)
        ctx = PagePlanContext(plan(meta), self.config.root)
        Resolver(page, env, ctx).run(tokens)
        return ParsedPage(
            file=file,
            slug=slug_of(file),
            meta=meta,
            tokens=tokens,
            env=env,
            calls=page.calls,
            source_hash=hashlib.sha256(source.encode("utf-8")).hexdigest(),
        )

    def render(self, page: ParsedPage, services: RenderServices) -> RenderedPage:
        state: PageEnv = page.env[ENV_KEY]
        ctx = PageRenderContext(services, state, self.body_md, page.env)
        page.env[RENDER_KEY] = ctx
        try:
            body = self.md.renderer.render(page.tokens, self.md.options, page.env)
            toc = [
                TocEntry(
                    h.level,
                    str(h.open.attrGet("id")),
                    _toc_html(ctx.tokens_html([h.inline], inline=True)),
                )
                for h in state.headings
                if h.top and h.level in (2, 3)
            ]
            footnotes = [self._footnote(ctx, state, n) for n in sorted(state.footnote_content)]
        finally:
            del page.env[RENDER_KEY]
        references = [
            Reference(key, number, f"ref-{key}", self._reference_html(state.bibliography[key]))
            for key, number in sorted(state.cites.items(), key=lambda kv: kv[1])
        ]
        return RenderedPage(
            body_html=body,
            toc=toc,
            footnotes=footnotes,
            references=references,
            bibtex=article_bibtex(page.meta, page.slug, self.config),
            word_count=state.word_count,
        )

    # -- helpers -------------------------------------------------------------------------------

    def _reference_html(self, entry: BibEntry) -> str:
        """An entry's HTML, made once: every page citing it shows the same."""
        made = self._references.get(id(entry))
        if made is None or made[0] is not entry:
            made = (entry, reference_html(entry))
            self._references[id(entry)] = made
        return made[1]

    def _footnote(self, ctx: PageRenderContext, state: PageEnv, number: int) -> Footnote:
        kind, tokens, _ = state.footnote_content[number]
        if kind == "inline":
            text = f"<p>{html_renderer(ctx.md).renderInline(tokens, ctx.md.options, ctx.env)}</p>"
        else:
            text = ctx.tokens_html(tokens)
        return Footnote(
            id=f"fn-{number}",
            number=number,
            html=text,
            backrefs=tuple(state.footnote_refs.get(number, ())),
        )

    def _bibliography(self, meta: FrontMatter, file: str) -> dict[str, BibEntry]:
        if not meta.bibliography:
            return self.site_bib
        cached = self._page_bibs.get(meta.bibliography)
        if cached is not None:
            return cached
        merged = dict(self.site_bib)
        root = self.config.root
        line = meta.line_of("bibliography")
        for name in meta.bibliography:
            # Lexically first ('../x.bib' names no file of the site), then through site_file,
            # which follows links: the entries are published in the page's references.
            path = Path(os.path.normpath(root / name))
            if not path.is_relative_to(root):
                raise UserError(
                    f"bibliography file '{name}' is outside the site folder",
                    file=file,
                    line=line,
                    hint="paths are relative to the site folder; copy the file into it",
                )
            if not is_file(path) and not is_link(path):
                raise UserError(
                    f"bibliography file '{name}' not found",
                    file=file,
                    line=line,
                    hint="paths are relative to the site folder",
                )
            shown = path.relative_to(root).as_posix()
            real = site_file(root, path, shown=shown, used=f"{file}:{line}")
            if not real.is_file():
                raise UserError(
                    f"bibliography '{name}' is not a file", file=file, line=line, hint=BIB_HINT
                )
            merged.update(load_bib(real, name))
        self._page_bibs[meta.bibliography] = merged
        return merged


_FN_SUP = re.compile(r'<sup class="cp-fn-ref".*?</sup>', re.S)
_LINK_TAG = re.compile(r"</?a\b[^>]*>")


def _toc_html(heading_html: str) -> str:
    # The theme wraps each entry in a link to the heading: no nested links, no duplicate ids.
    return _LINK_TAG.sub("", _FN_SUP.sub("", heading_html)).strip()
