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

from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token

from circuitpress.config import SiteConfig
from circuitpress.errors import UserError
from circuitpress.extensions import DirectiveCall, PlanRecorder, Registry, RenderServices
from circuitpress.markup.bibliography import BibEntry, load_bib, reference_html
from circuitpress.markup.citation import article_bibtex
from circuitpress.markup.context import RENDER_KEY, PageRenderContext
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

    def parse(
        self, file: str, source: str, plan: PlanFactory, source_hash: str | None = None
    ) -> ParsedPage:
        """Front matter, tokens and directive calls; calls every plan(). Raises UserError.
        `source_hash`, where the caller has it, is the SHA-256 of the source's UTF-8 bytes."""
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
            source_hash=source_hash or hashlib.sha256(source.encode("utf-8")).hexdigest(),
        )

    def render(self, page: ParsedPage, services: RenderServices) -> RenderedPage:
        state: PageEnv = page.env[ENV_KEY]
        ctx = PageRenderContext(services, state, self.body_md, page.env)
        page.env[RENDER_KEY] = ctx
        render = _Render.of(self.md.renderer, self.md.options, page.env)
        # What ctx.tokens_html renders with: the parser of bodies and captions.
        inner = _Render.of(ctx.md.renderer, ctx.md.options, page.env)
        try:
            body = render.block(page.tokens)
            toc = [
                TocEntry(
                    h.level,
                    str(h.open.attrGet("id")),
                    # ctx.tokens_html([h.inline], inline=True): the heading's inline content
                    _toc_html(inner.inline(h.inline.children or [])),
                )
                for h in state.headings
                if h.top and h.level in (2, 3)
            ]
            footnotes = [self._footnote(inner, state, n) for n in sorted(state.footnote_content)]
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

    def _footnote(self, render: _Render, state: PageEnv, number: int) -> Footnote:
        kind, tokens, _ = state.footnote_content[number]
        if kind == "inline":
            text = f"<p>{render.inline(tokens)}</p>"
        else:
            text = render.block(list(tokens)).strip()  # ctx.tokens_html(tokens)
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


class _Render:
    """markdown-it's RendererHTML.render and renderInline for one page, with the same output.

    The renderer's own loops cost a rule call per token: for text (half of a page's tokens) a
    bound method and escapeHtml's four replace() calls, and renderToken's string building for
    every paragraph tag. Here a text token with the default rule is escaped in the loop (and
    only when it holds a character to escape), and a tag is built by `tag` in one f-string.
    Every other token goes to its rule as before. A renderer that is not exactly RendererHTML
    with its own `text` rule keeps its own loops (`of`). Measured on the 300-page prose site:
    Markup.render 411 M -> 317 M instructions."""

    def __init__(self, renderer: RendererHTML, options: Any, env: dict[str, Any]) -> None:
        self.renderer, self.rules, self.options, self.env = renderer, renderer.rules, options, env
        self.xhtml = bool(options["xhtmlOut"])

    @staticmethod
    def of(renderer: Any, options: Any, env: dict[str, Any]) -> _Render:
        text = getattr(renderer, "rules", {}).get("text")
        if type(renderer) is RendererHTML and getattr(text, "__func__", None) is RendererHTML.text:
            return _Render(renderer, options, env)
        return _SlowRender(renderer, options, env)

    def block(self, tokens: list[Token]) -> str:
        """RendererHTML.render(tokens, options, env)."""
        rules, options, env = self.rules, self.options, self.env
        out: list[str] = []
        for i, token in enumerate(tokens):
            kind = token.type
            if kind == "inline":
                if token.children:
                    out.append(self.inline(token.children))
            elif kind in rules:
                out.append(rules[kind](tokens, i, options, env))
            else:
                out.append(self.tag(tokens, i))
        return "".join(out)

    def inline(self, tokens: list[Token]) -> str:
        """RendererHTML.renderInline(tokens, options, env)."""
        rules, options, env = self.rules, self.options, self.env
        out: list[str] = []
        for i, token in enumerate(tokens):
            kind = token.type
            if kind == "text":
                text = token.content
                if "&" in text or "<" in text or ">" in text or '"' in text:
                    text = escapeHtml(text)
                out.append(text)
            elif kind in rules:
                out.append(rules[kind](tokens, i, options, env))
            else:
                out.append(self.tag(tokens, i))
        return "".join(out)

    def tag(self, tokens: list[Token], idx: int) -> str:
        """RendererHTML.renderToken, step for step."""
        token = tokens[idx]
        if token.hidden:
            return ""
        nesting = token.nesting
        attrs = RendererHTML.renderAttrs(token) if token.attrs else ""
        head = "\n" if token.block and nesting != -1 and idx and tokens[idx - 1].hidden else ""
        close = " /" if nesting == 0 and self.xhtml else ""
        end = ">"
        if token.block:
            end = ">\n"
            if nesting == 1 and idx + 1 < len(tokens):
                after = tokens[idx + 1]
                if after.type == "inline" or after.hidden:
                    end = ">"
                elif after.nesting == -1 and after.tag == token.tag:
                    end = ">"
        return f"{head}{'</' if nesting == -1 else '<'}{token.tag}{attrs}{close}{end}"


class _SlowRender(_Render):
    """A renderer of another kind (or with its own text rule): its own render loops."""

    def __init__(self, renderer: Any, options: Any, env: dict[str, Any]) -> None:
        self.renderer, self.options, self.env = renderer, options, env

    def block(self, tokens: list[Token]) -> str:
        return str(self.renderer.render(tokens, self.options, self.env))

    def inline(self, tokens: list[Token]) -> str:
        return str(self.renderer.renderInline(tokens, self.options, self.env))


_FN_SUP = re.compile(r'<sup class="cp-fn-ref".*?</sup>', re.S)
_LINK_TAG = re.compile(r"</?a\b[^>]*>")


def _toc_html(heading_html: str) -> str:
    # The theme wraps each entry in a link to the heading: no nested links, no duplicate ids.
    return _LINK_TAG.sub("", _FN_SUP.sub("", heading_html)).strip()
