"""The build: discover → parse → plan → compute → render → write (atomic swap).

All pages are parsed before any model runs, so the engine sees every request of the site at
once. Rendering never runs a model; results come from the planner (cache or engine).
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from circuitpress.build.cache import CACHE_DIR, Cache
from circuitpress.build.collisions import (
    GENERATED,
    Output,
    check_collisions,
    generated,
    page_claim,
    unit_claim,
)
from circuitpress.build.contexts import FollowUp, PageState, Services
from circuitpress.build.discover import (
    check_page_name,
    check_unique_slugs,
    page_sources,
    read_source,
)
from circuitpress.build.memo import BuildMemo, Tools, content_hash, input_signature
from circuitpress.build.options import BuildOptions, BuildReport
from circuitpress.build.plan import Mention, PagePlanner, Planner, locate
from circuitpress.build.write import SiteWriter, check_output_folder
from circuitpress.config import AtlasLayer, SiteConfig, load_config
from circuitpress.errors import BuildWarning, UserError
from circuitpress.extensions import Directive
from circuitpress.paths import site_file, walk_files
from circuitpress.requests import Request, UnitRef, unit_page_path
from circuitpress.structure.index import index_entries, newest_first
from circuitpress.structure.series import series_navigation, series_warnings

if TYPE_CHECKING:
    from circuitpress.markup import FrontMatter

__all__ = ["BuildMemo", "BuildOptions", "BuildReport", "SiteBuild", "build_site"]

MAX_FOLLOW_UP_ROUNDS = 6
REPORT_PATH = ".circuitpress/build-report.json"


class SiteBuild:
    """One build of a site folder."""

    def __init__(
        self,
        root: str | Path,
        options: BuildOptions | None = None,
        memo: BuildMemo | None = None,
        pages: dict[str, bytes] | None = None,
    ):
        self.options = options or BuildOptions()
        # Pages the up-to-date check has read (stamp.input_stamp), by path: not read again.
        self.page_bytes = pages or {}
        self.memo = memo or BuildMemo()
        self.config: SiteConfig = load_config(root)
        self.root = self.config.root
        self.out = (self.options.out or self.root / "_site").resolve()
        shown = f"--out {self.options.out}" if self.options.out is not None else "_site"
        if self.options.write:
            # Before any analysis runs: a folder that holds the user's files is refused now,
            # not after minutes of computing.
            check_output_folder(self.root, self.out, shown)
        self.warnings: list[BuildWarning] = []
        self.errors: list[UserError] = []  # with options.collect_errors (see fail)
        self.pending_pages = 0  # pages rendered with a placeholder figure
        self.cache = Cache(
            self.root / CACHE_DIR, warnings=self.warnings, read_only=not self.options.compute
        )
        device = self.options.device or self.config.build.device
        self.planner = Planner(
            self.config,
            self.cache,
            device=device,
            progress=self.options.progress,
            memory=self.memo.results,
            # --jobs, else [build] jobs (default 1); 0 in either: torch's one per core.
            threads=_threads(self.options.jobs, self.config.build.jobs),
            executor=self.options.executor or self.config.build.executor,
            ray_address=self.options.ray_address or self.config.build.ray_address,
        )
        # A build that writes its own output keeps a manifest of it; an in-memory one (check,
        # serve, publish) is bound by whoever commits it (publish to a folder does).
        owner = self.root if self.options.write else None
        self.writer = SiteWriter(self.out, root=owner, shown=shown)
        self.claims: list[tuple[str, Output]] = []  # (output path, its source), see render()
        self.site_images: dict[tuple[str, str], tuple[str, Path]] = {}  # see PagePlanner
        signature = input_signature(self.config)
        if self.memo.tools is None or self.memo.signature != signature:
            from circuitpress.extensions import default_registry
            from circuitpress.markup import Markup
            from circuitpress.render.html import Theme

            registry = default_registry()
            self.memo.tools = Tools(registry, Markup(self.config, registry), Theme(self.config))
            self.memo.signature = signature
            self.memo.parsed.clear()
            self.memo.rendered.clear()
        self.registry, self.markup, self.theme = self.memo.tools

    # -- mistakes -------------------------------------------------------------------------------

    def fail(self, err: UserError) -> None:
        """A mistake of the site: raised, or collected when the build reports them all."""
        if not self.options.collect_errors:
            raise err
        if all(e.format() != err.format() for e in self.errors):
            self.errors.append(err)

    # -- discover & parse ---------------------------------------------------------------------

    def default_model(self, meta: FrontMatter) -> str | None:
        """The model a reference without `MODEL/` names: the page's, or the site's only one."""
        if meta.model:
            return meta.model
        if len(self.config.models) == 1:
            return next(iter(self.config.models))
        return None

    def parse(self) -> list[PageState]:
        states = []
        for path in page_sources(self.root):
            file = path.relative_to(self.root).as_posix()
            try:
                state = self.parse_page(path, file)
            except UserError as err:
                self.fail(err)
                continue
            if state is not None:
                states.append(state)
                # Unknown keys, a date in the future: kept on the (memoised) page, reported
                # by every build that publishes it.
                self.warnings.extend(state.page.meta.warnings)
        # Pages replayed from the memo (the preview server's rebuilds) are as long-lived as
        # fresh ones: frozen too, or the first full collection of the build walks them all.
        gc.freeze()
        for gone in set(self.memo.parsed) - {s.page.file for s in states}:
            if not (self.root / gone).exists():
                del self.memo.parsed[gone]
        try:
            check_unique_slugs(states)
        except UserError as err:
            self.fail(err)
        return states

    def parse_page(self, path: Path, file: str) -> PageState | None:
        """One page, parsed (or from the memo); None for a draft left out."""
        check_page_name(file)
        raw, source = read_source(path, file, self.page_bytes.pop(str(path), None))
        digest = content_hash(raw)
        memo = self.memo.parsed.get(file)
        if memo is not None and memo[0] == digest:
            page, planner = memo[1], memo[2]
        else:
            holder: dict[str, PagePlanner] = {}

            def plan(
                meta: FrontMatter, file: str = file, holder: dict[str, PagePlanner] = holder
            ) -> PagePlanner:
                holder["p"] = PagePlanner(
                    file=file, default_model=self.default_model(meta), site_images=self.site_images
                )
                return holder["p"]

            page = self.markup.parse(file, source, plan, source_hash=digest)  # (raw's SHA-256)
            planner = holder.get("p") or PagePlanner(file=file, default_model=None)
            self.memo.parsed[file] = (digest, page, planner)
            self.memo.parses += 1
            # The parsed page (tens of thousands of tokens and dicts) lives until the build
            # ends; left to the cyclic collector, every later collection walks all pages parsed
            # so far again (3.0 of 17 CPU s at 3,000 pages, 0.1 s at 300). Frozen, it is never
            # walked; run() unfreezes at the end, so that garbage frozen with it is freed.
            gc.freeze()
        if page.meta.draft and not self.options.drafts:
            return None
        return PageState(page, planner)

    # -- what goes where ------------------------------------------------------------------------

    def page_claims(self, states: list[PageState]) -> Iterator[tuple[str, Output]]:
        """The output files known before any model runs: pages, static files, the theme's
        assets and the generated files."""
        yield from map(page_claim, states)
        if not any(s.slug == "" for s in states):
            yield "index.html", generated("index.html")
        for name in GENERATED:
            yield name, generated(name)
        for rel, _ in self.theme.assets():
            yield rel, Output("generated", f"the theme's {rel}")
        for rel, _ in self.static_files():
            yield rel, Output("static", rel)

    def claim(self, rel: str, owner: Output) -> None:
        self.claims.append((rel.lstrip("/"), owner))

    # -- plan & compute -----------------------------------------------------------------------

    def unit_mentions(self, states: list[PageState]) -> dict[UnitRef, list[Mention]]:
        """Channel units mentioned anywhere, each with the places that mention it."""
        units: dict[UnitRef, list[Mention]] = {}
        for planner in self.all_planners(states):
            for m in planner.mentions:
                channel = m.ref.channel_ref()
                if channel is not None:
                    units.setdefault(channel, []).append(m)
        return dict(
            sorted(units.items(), key=lambda kv: (kv[0].model, kv[0].layer, kv[0].channel or 0))
        )

    def all_planners(self, states: list[PageState]) -> list[PagePlanner]:
        return [s.planner for s in states] + list(self.followups.values())

    def compute(self, states: list[PageState]) -> dict[UnitRef, list[Mention]]:
        """Validate, plan every round, then compute: one batch per layer, one pass per model.

        Follow-ups run in rounds until no directive asks for more. A round computes only what
        a follow-up needs to go on (model facts, a circuit's connections, a comparison's
        matches; all cheap); feature visualizations, dataset examples and the rest wait, so
        that the requests of pages, unit pages and every round meet in the same groups.
        Follow-ups also run before the first computation: directives then see the model
        facts (resolved by validation) and report mistakes such as a layer pair in the wrong
        order before any long analysis starts."""
        from circuitpress.structure.units import UnitPagePlan, unit_figure_aliases

        collected = self.errors if self.options.collect_errors else None
        self.followups: dict[str, PagePlanner] = {}
        self.planner.validate((s.planner for s in states), collected)
        pending: list[Request] = [r for s in states for r in s.planner.requests]
        units: dict[UnitRef, list[Mention]] = {}
        # Mentioned units and the units their pages name get pages (structure/units.py); so
        # does every unit of the atlas' layers (structure/atlas.py).
        self.unit_pages = UnitPagePlan()
        self.atlas = self.atlas_units()
        try:
            for _ in range(MAX_FOLLOW_UP_ROUNDS):
                new, needed = self.follow_ups(states)
                self.planner.validate(self.followups.values(), collected)
                current = self.unit_mentions(states)
                for atlas_units in self.atlas.values():
                    for unit in atlas_units:
                        current.setdefault(unit, [])
                page_requests, page_needed = self.unit_pages.plan(current, self.planner.results)
                fresh = self.unit_pages.fresh()
                # A page in content/units/ where a unit page goes: reported before its
                # analyses run.
                check_collisions(
                    [
                        *map(page_claim, states),
                        *(unit_claim(unit_page_path(u) or "") for u in fresh),
                    ]
                )
                units = current
                # A unit page shows the author's figure of its unit where there is one.
                asked = [r for p in self.all_planners(states) for r in p.requests]
                for default, figure in unit_figure_aliases(asked).items():
                    self.planner.alias(default, figure)
                todo = pending + new + page_requests
                pending = []
                needed = [r for r in needed + page_needed if r not in self.planner.results]
                if not self.options.compute:
                    # `check` and the preview: what the cache has, and nothing more; another
                    # round only if the cache had something a follow-up was waiting for.
                    self.planner.resolve(needed, defer=True)
                    needed = [r for r in needed if r in self.planner.results]
                if not todo and not needed:
                    break
                self.planner.resolve(todo, defer=True)
                if self.options.compute:
                    self.planner.resolve(needed)
            if self.options.compute:
                self.planner.flush()
        except UserError as err:
            self.fail(locate(err, self.all_planners(states)))
        return {ref: units.get(ref, []) for ref in self.unit_pages.pages()}

    def atlas_units(self) -> dict[AtlasLayer, list[UnitRef]]:
        """Every unit of the `[atlas]` layers, checked against the model facts."""
        from circuitpress.structure.atlas import atlas_units

        if not self.config.atlas:
            return {}
        known = [e.model for e in self.config.atlas if e.model in self.config.models]
        try:
            return atlas_units(self.config.atlas, self.planner.layers_of(known))
        except UserError as err:
            self.fail(err)
            return {}

    def follow_ups(self, states: list[PageState]) -> tuple[list[Request], list[Request]]:
        """Give every directive with a `follow_up` the results so far; collect what it asks
        for (new requests) and what it looked for and could not find (needed to go on)."""
        new: list[Request] = []
        needed: list[Request] = []
        for s in states:
            for call in s.page.calls:
                directive = self.registry.directives.get(call.name)
                if directive is None or type(directive).follow_up is Directive.follow_up:
                    continue
                recorder = PagePlanner(file=s.page.file, default_model=s.planner.default_model)
                ctx = FollowUp(self, s, recorder)
                try:
                    directive.follow_up(call, ctx)
                except UserError as err:
                    self.fail(err.located(call.file, call.line))
                    continue
                self.followups[f"{s.page.file}:{call.line}"] = recorder
                new.extend(ctx.new)
                needed.extend(ctx.needed)
        return new, needed

    # -- render -------------------------------------------------------------------------------

    def render(self, states: list[PageState], units: dict[UnitRef, list[Mention]]) -> None:
        self.claims = []
        nav = series_navigation(states, self.theme.url)
        self.warnings.extend(series_warnings(states))
        index_state = None
        for s in states:
            rel, owner = page_claim(s)
            self.claim(rel, owner)
            try:
                self.writer.write(rel, self.render_page(s, nav.get(s.page.file)))
            except UserError as err:
                self.fail(err)
            if s.slug == "":
                index_state = s
        articles = newest_first(states)
        if index_state is None:
            self.claim("index.html", generated("index.html"))
            entries = index_entries(states)  # a series once, its parts in reading order
            self.writer.write(
                "index.html",
                self.theme.render_index(
                    [(s.slug, s.page.meta) for e in entries for s in e.articles],
                    [(e.series, [(s.slug, s.page.meta) for s in e.articles]) for e in entries],
                ),
            )
        self.render_units(states, units)
        self.render_atlas()
        self.claim("404.html", generated("404.html"))
        self.writer.write("404.html", self.theme.render_404())
        self.copy_static()
        for rel, data in self.theme.assets():
            self.claim(rel, Output("generated", f"the theme's {rel}"))
            self.writer.write(rel, data)
        from circuitpress.render.html import feed_xml, sitemap_xml

        pages = [p for p in self.writer.paths() if p.endswith("index.html")]
        self.claim("sitemap.xml", generated("sitemap.xml"))
        self.writer.write(
            "sitemap.xml", sitemap_xml(self.config, [p[: -len("index.html")] for p in pages])
        )
        self.claim("feed.xml", generated("feed.xml"))
        self.writer.write(
            "feed.xml", feed_xml(self.config, [(s.slug, s.page.meta, "") for s in articles])
        )
        # Figures are written by the directives through Services (content-addressed names).
        claimed = {rel for rel, _ in self.claims}
        figures = [
            (rel, Output("generated", f"the generated figure {rel}"))
            for rel in self.writer.paths()
            if rel not in claimed
        ]
        try:
            check_collisions(self.claims + figures)
        except UserError as err:
            self.fail(err)

    def render_page(self, s: PageState, nav: dict[str, object] | None) -> str:
        """One article's HTML; replayed from the memo when its text and context are unchanged."""
        key = content_hash(
            self.memo.parsed[s.page.file][0],
            repr(nav),
            repr(self.options.drafts),
            # results change with the models
            repr(sorted(self.planner.fingerprints_seen().items())),
        )
        memo = self.memo.rendered.get(s.page.file)
        if (
            memo is not None
            and memo[0] == key
            and all(r in self.planner.results for r in s.planner.requests)
        ):
            for rel, data in memo[2].items():
                self.writer.files[rel] = data
            return memo[1]
        services = Services(self, s.page.file)
        rendered = self.markup.render(s.page, services)
        html = self.theme.render_page(
            s.page.meta, rendered, slug=s.slug, series_nav=nav, draft=bool(s.page.meta.draft)
        )
        if services.pending:  # a page with placeholders is rendered again when complete
            self.pending_pages += 1
        else:
            self.memo.rendered[s.page.file] = (key, html, services.assets)
        self.memo.renders += 1
        return html

    def render_units(self, states: list[PageState], units: dict[UnitRef, list[Mention]]) -> None:
        from circuitpress.structure.atlas import atlas_layer_of
        from circuitpress.structure.units import backlinks, unit_page_context

        titles = {s.page.file: (s.page.meta.title, s.url_path) for s in states}
        for ref, mentions in units.items():
            links = backlinks([m.file for m in mentions], titles, self.theme.url)
            services = Services(self, f"units/{ref.model}/{ref.layer}/{ref.channel}")
            context = unit_page_context(
                ref,
                services,
                links,
                reached_from=self.unit_pages.reached_from(ref),
                has_page=self.unit_pages.has_page,
            )
            # A unit of an atlas layer links to the layer's atlas page.
            context["atlas_layer"] = atlas_layer_of(ref, self.atlas, self.theme.url)
            self.pending_pages += services.pending
            rel, owner = unit_claim(unit_page_path(ref) or "")
            self.claim(rel, owner)
            self.writer.write(rel, self.theme.render_template("unit.html", context))

    def render_atlas(self) -> None:
        """`atlas/index.html` and a page per atlas layer (structure/atlas.py)."""
        from circuitpress.structure.atlas import (
            ATLAS_INDEX,
            atlas_path,
            index_context,
            layer_page_context,
        )

        if not self.atlas:
            return
        facts = self.planner.layers_of({e.model for e in self.atlas})
        for entry, refs in self.atlas.items():
            rel = atlas_path(entry.model, entry.layer) + "index.html"
            services = Services(self, rel)
            context = layer_page_context(entry, refs, services, facts[entry.model])
            self.pending_pages += services.pending
            self.claim(rel, Output("generated", f"the atlas page {rel}"))
            self.writer.write(rel, self.theme.render_template("atlas.html", context))
        services = Services(self, ATLAS_INDEX)
        self.claim(ATLAS_INDEX, Output("generated", f"the generated {ATLAS_INDEX}"))
        self.writer.write(
            ATLAS_INDEX,
            self.theme.render_template("atlas.html", index_context(self.atlas, services)),
        )

    def static_files(self, warn: bool = False) -> Iterator[tuple[str, Path]]:
        """(output path `static/REL`, file) of every file of static/ that is published; with
        `warn`, a warning for each one that is not: a link that leads out of the site folder
        (paths.site_file's rule) is skipped, so that a folder of static files linked from
        elsewhere publishes what lies inside the site and never what lies outside it."""
        static = self.root / "static"
        if not static.is_dir():
            return
        # Hidden files are left out, hidden folders are not (a figure may live in static/.img/).
        for path in walk_files(self.root, static, skip=()):
            if path.name.startswith("."):
                continue
            rel = f"static/{path.relative_to(static).as_posix()}"
            try:
                yield rel, site_file(self.root, path, shown=rel)
            except UserError as err:
                if warn:
                    self.warnings.append(
                        BuildWarning(
                            f"{rel} {err.message} and was not copied",
                            file=rel,
                            line=1,
                            hint="copy the file into static/ instead of linking it",
                        )
                    )

    def copy_static(self) -> None:
        for rel, path in self.static_files(warn=True):
            self.claim(rel, Output("static", rel))
            self.writer.copy(rel, path)

    # -- the whole build ----------------------------------------------------------------------

    def write_report(self, seconds: float) -> None:
        """`.circuitpress/build-report.json`: what this build computed, group by group (kind,
        model, layer, requests, images, steps, batches, CPU and wall seconds), and totals."""
        import json
        import os

        records = [r.to_json() for r in self.planner.records]
        report = {
            "executor": self.planner.executor_name,
            "tasks": self.planner.tasks,
            "seconds": round(seconds, 3),
            "computed": self.planner.computed,
            "cached": self.cache.hits,
            "groups": records,
            "totals": {
                "groups": len(records),
                "requests": sum(r["requests"] for r in records),
                "cpu_seconds": round(sum(r["cpu_seconds"] for r in records), 3),
                "wall_seconds": round(sum(r["wall_seconds"] for r in records), 3),
            },
        }
        path = self.root / REPORT_PATH
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:  # the site is built; a report it cannot write is a warning
            tmp.unlink(missing_ok=True)
            self.warnings.append(
                BuildWarning(f"could not write {REPORT_PATH}: {exc.strerror}", file=".", line=1)
            )

    def run(self) -> BuildReport:
        try:
            return self._run()
        finally:
            gc.unfreeze()  # see parse_page

    def _run(self) -> BuildReport:
        start = time.perf_counter()
        states = self.parse()
        # Before any model runs: a page that would overwrite a generated or static file.
        try:
            check_collisions(self.page_claims(states))
        except UserError as err:
            self.fail(err)
        units = self.compute(states)
        self.render(states, units)
        if self.options.strict and self.warnings:
            w = self.warnings[0]
            raise UserError(w.message + " (--strict)", file=w.file, line=w.line, hint=w.hint)
        if self.options.write:
            self.writer.commit()
            self.write_report(time.perf_counter() - start)
        report = BuildReport(
            out=self.out,
            pages=len(states),
            unit_pages=len(units),
            requests=len(self.planner.results),
            computed=self.planner.computed,
            cached=self.cache.hits,
            engine_imported=self.planner.engine_imported,
            groups=len(self.planner.records),
            pending_pages=self.pending_pages,
            analysis_cpu_seconds=sum(r.cpu_seconds for r in self.planner.records),
            executor=self.planner.executor_name,
            tasks=self.planner.tasks,
            warnings=list(self.warnings),
            files=self.writer.paths(),
            manifest=self.writer.manifest,
        )
        report.seconds = time.perf_counter() - start
        return report


def build_site(root: str | Path, options: BuildOptions | None = None) -> BuildReport:
    """Build the site in `root`; raises UserError for anything the author must fix.

    A build whose inputs are unchanged since the last one, with the output folder as that
    build left it, does nothing (see stamp.py)."""
    from circuitpress.build import stamp

    options = options or BuildOptions()
    start = time.perf_counter()
    config = load_config(root)
    out = (options.out or config.root / "_site").resolve()
    pages: dict[str, bytes] = {}
    signature = _stamp(config, out, options, pages) if options.write else None
    if signature is not None:
        previous = stamp.up_to_date(config.root, out, signature)
        if previous is not None:
            report = BuildReport(
                out=out,
                pages=previous.get("pages", 0),
                unit_pages=previous.get("unit_pages", 0),
                cached=previous.get("requests", 0),
                warnings=[BuildWarning(**w) for w in previous.get("warnings", [])],
                up_to_date=True,
            )
            report.seconds = time.perf_counter() - start
            return report
    build = SiteBuild(root, options, pages=pages)
    report = build.run()
    report.made = build
    if signature is not None:
        stamp.record(
            config.root,
            out,
            signature,
            {
                "pages": report.pages,
                "unit_pages": report.unit_pages,
                "requests": report.requests,
                "warnings": [w.__dict__ for w in report.warnings],
            },
            report.manifest,
        )
    return report


def _stamp(
    config: SiteConfig, out: Path, options: BuildOptions, pages: dict[str, bytes]
) -> str | None:
    from circuitpress.build import stamp

    fingerprints: list[str] = []
    if config.models:  # (a prose site does not even import the fingerprints' NumPy)
        from circuitpress.analysis.models.fingerprint import (
            dataset_fingerprint,
            model_fingerprint,
        )

        try:
            fingerprints = [
                f(model, config)
                for _, model in sorted(config.models.items())
                for f in (model_fingerprint, dataset_fingerprint)
            ]
        except UserError:
            return None  # the build itself reports it, where a page uses the model
    settings = {"strict": options.strict, "drafts": options.drafts, "device": options.device}
    # Where the analysis runs changes no result a page shows: not part of the stamp.
    return stamp.input_stamp(config.root, out, settings, fingerprints, pages)


def _threads(option: int | None, configured: int) -> int | None:
    """The analysis' torch threads: the command line's, else the config's; None (torch's
    default, one per core) where the chosen one is 0."""
    chosen = option if option is not None else configured
    return chosen or None
