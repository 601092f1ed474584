"""Planning: collect every page's requests and references, validate them, and get results.

The build parses every page before any model runs; each page's `PagePlanner` (the
`PlanContext` directives see) records references, layers, mentions and requests. `Planner`
then validates all references against model facts, deduplicates requests over the whole
site, serves what it can from the cache, and hands only the misses to the engine — imported
lazily, so a build whose results are all cached never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from circuitpress.analysis.progress import GroupPlan, GroupRecord, Progress
from circuitpress.build.cache import Cache, cache_key
from circuitpress.config import CONFIG_NAME, SiteConfig
from circuitpress.errors import UserError
from circuitpress.markup.refs import parse_layer_ref, parse_ref, resolve_ref
from circuitpress.requests import ModelInfoRequest, Request, Result, UnitRef

__all__ = ["Mention", "PagePlanner", "Planner", "Progress", "locate"]


@dataclass
class Mention:
    ref: UnitRef
    file: str
    line: int


@dataclass
class PagePlanner:
    """The PlanContext of one page."""

    file: str
    default_model: str | None
    refs: list[Mention] = field(default_factory=list)
    layers: list[tuple[str, str, str, int]] = field(
        default_factory=list
    )  # model, layer, file, line
    requests: list[Request] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)
    # The build's images found so far, shared by its pages: (name, page folder) -> where.
    site_images: dict[tuple[str, str], tuple[str, Path]] = field(default_factory=dict)

    def ref(self, text: str, line: int) -> UnitRef:
        try:
            ref = parse_ref(text, self.default_model)
        except UserError as err:
            raise err.located(self.file, line) from None
        self.refs.append(Mention(ref, self.file, line))
        self.mentions.append(Mention(ref, self.file, line))
        return ref

    def layer(self, text: str, line: int) -> tuple[str, str]:
        try:
            model, layer = parse_layer_ref(text, self.default_model)
        except UserError as err:
            raise err.located(self.file, line) from None
        self.layers.append((model, layer, self.file, line))
        return model, layer

    def request(self, request: Request) -> None:
        self.requests.append(request)

    def mention(self, ref: UnitRef, line: int) -> None:
        self.mentions.append(Mention(ref, self.file, line))


class Planner:
    """Fingerprints, cache and engine for one build."""

    def __init__(
        self,
        config: SiteConfig,
        cache: Cache,
        *,
        device: str,
        progress: Progress | None,
        memory: dict[str, Result] | None = None,
        threads: int | None = None,
        executor: str = "local",
        ray_address: str | None = None,
    ):
        self.config = config
        # Where misses are computed (analysis/executors.py), made on the first miss.
        self.executor_name, self.ray_address = executor, ray_address
        self._executor: Any = None
        self.threads = threads
        self.memory = memory if memory is not None else {}  # results by key, kept across builds
        self.cache = cache
        self.device = device
        self.progress = progress
        self.results: dict[Request, Result] = {}
        self.deferred: dict[Request, str] = {}  # request -> cache key, computed by flush()
        self.aliases: dict[Request, Request] = {}
        self.computed = 0
        self.records: list[GroupRecord] = []  # every computed group, for the build report
        self.engine_imported = False
        self._fingerprints: dict[str, tuple[str, str]] = {}

    # -- fingerprints (no torch) --------------------------------------------------------------

    def fingerprints(self, model: str) -> tuple[str, str]:
        if model not in self._fingerprints:
            from circuitpress.analysis.models.fingerprint import (
                dataset_fingerprint,
                model_fingerprint,
            )

            cfg = self.config.models.get(model)
            if cfg is None:
                raise UserError(f"unknown model '{model}'", file=CONFIG_NAME, line=1)
            self._fingerprints[model] = (
                model_fingerprint(cfg, self.config),
                dataset_fingerprint(cfg, self.config),
            )
        return self._fingerprints[model]

    def fingerprints_seen(self) -> dict[str, tuple[str, str]]:
        return dict(self._fingerprints)

    def key_of(self, request: Request) -> str:
        parts: list[str] = []
        for model in request.models:
            parts.extend(self.fingerprints(model))
        return cache_key(request, parts)

    # -- results ------------------------------------------------------------------------------

    def canonical(self, request: Request) -> Request:
        """The request whose result serves this one (a unit page's default figure is the
        author's figure of the same unit where one exists, see `alias`)."""
        return self.aliases.get(request, request)

    def alias(self, request: Request, serves_it: Request) -> None:
        """`request` is answered by `serves_it`'s result: one computation, one image."""
        if request != serves_it:
            self.aliases[request] = serves_it

    def known(self, request: Request) -> bool:
        """Whether the request has a result or waits in the deferred work."""
        canonical = self.canonical(request)
        return request in self.results or canonical in self.results or canonical in self.deferred

    def resolve(self, requests: Iterable[Request], *, defer: bool = False) -> list[Request]:
        """Make results available for every request: from memory or the cache, else computed.

        With `defer`, what must be computed waits for `flush` instead: the build collects the
        requests of every round first, so that each layer's feature visualizations optimise
        as one batch and each model's dataset is passed once. Returns the requests computed."""
        asked = list(requests)
        todo: dict[Request, str] = {}
        for request in asked:
            canonical = self.canonical(request)
            if canonical in self.results or canonical in todo:
                continue
            key = self.deferred.get(canonical) or self.key_of(canonical)
            hit = self.memory.get(key) or self.cache.get(key)
            if hit is not None:
                self.results[canonical] = hit
                self.memory[key] = hit
            elif defer:
                self.deferred.setdefault(canonical, key)
            else:
                todo[canonical] = key
                self.deferred.pop(canonical, None)
        computed = self._compute(todo)
        self._serve_aliases()
        return computed

    def flush(self) -> list[Request]:
        """Compute all deferred requests at once."""
        todo, self.deferred = self.deferred, {}
        computed = self._compute(todo)
        self._serve_aliases()
        return computed

    def _serve_aliases(self) -> None:
        for request, canonical in self.aliases.items():
            if canonical in self.results:
                self.results[request] = self.results[canonical]

    def _compute(self, todo: dict[Request, str]) -> list[Request]:
        if not todo:
            return []
        from circuitpress.analysis import engine  # torch enters here, and only here

        self.engine_imported = True
        if self._executor is None:
            from circuitpress.analysis.executors import make_executor

            self._executor = make_executor(
                self.executor_name, self.config, self.ray_address, self.device
            )

        def store(done: dict[Request, Result]) -> None:
            # Each group's results are in the cache as soon as the group ends: the preview
            # server shows them while the rest computes, and a killed build keeps them.
            for request, result in done.items():
                key = todo[request]
                self.cache.put(key, result)
                self.results[request] = result
                self.memory[key] = result
            self.computed += len(done)

        engine.compute(
            list(todo),
            self.config,
            device=self.device,
            progress=_Recording(self.records, self.progress),
            threads=self.threads,
            deliver=store,
            executor=self._executor,
        )
        return list(todo)

    @property
    def tasks(self) -> int:
        """Groups (or chunks) the executor ran for this build."""
        return self._executor.tasks if self._executor is not None else 0

    def result(self, request: Request) -> Result:
        try:
            return self.results[request]
        except KeyError:
            raise RuntimeError(f"no result for {request.key()}: it was not planned") from None

    # -- model facts and validation -----------------------------------------------------------

    def layers_of(self, models: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = sorted(set(models))
        requests = [ModelInfoRequest(m) for m in wanted]
        self.resolve(requests)
        return {
            m: {layer["name"]: layer for layer in self.results[r].data["layers"]}
            for m, r in zip(wanted, requests, strict=True)
        }

    def validate(self, pages: Iterable[PagePlanner], errors: list[UserError] | None = None) -> None:
        """Check every reference and layer of every page against the model facts.

        Without `errors` the first bad one is raised; with it, every bad one is appended (and
        a model whose facts cannot be had is reported once, its references skipped)."""

        def fail(err: UserError) -> None:
            if errors is None:
                raise err
            errors.append(err)

        pages = list(pages)
        known = set(self.config.models)
        used: set[str] = set()
        for page in pages:
            places = [(m.ref.model, m.file, m.line) for m in page.refs]
            places += [(model, file, line) for model, _layer, file, line in page.layers]
            for model, file, line in places:
                if model in known:
                    used.add(model)
                else:
                    fail(self._unknown_model(model, file, line))
        layers: dict[str, dict[str, Any]] = {}
        try:
            layers = self.layers_of(used)  # one engine call for all models
        except UserError:
            if errors is None:
                raise
            for model in sorted(used):  # which models' facts can be had, each error once
                try:
                    layers.update(self.layers_of([model]))
                except UserError as err:
                    fail(err)
        for page in pages:
            for m in page.refs:
                if m.ref.model not in layers:
                    continue
                try:
                    resolve_ref(m.ref, known, layers)
                except UserError as err:
                    fail(err.located(m.file, m.line))
            for model, layer, file, line in page.layers:
                error = layers.get(model, {}).get(layer, {}).get("error")
                if error:  # the model facts say why this module is not a layer to analyse
                    fail(UserError(str(error), file=file, line=line))
                elif model in layers and layer not in layers[model]:
                    from circuitpress.errors import choices_hint

                    fail(
                        UserError(
                            f"model '{model}' has no layer '{layer}'",
                            file=file,
                            line=line,
                            hint=choices_hint(
                                layer, [n for n, i in layers[model].items() if i.get("units")]
                            ),
                        )
                    )

    def _unknown_model(self, model: str, file: str, line: int) -> UserError:
        from circuitpress.errors import choices_hint

        hint = choices_hint(model, self.config.models)
        if not self.config.models:
            hint = f"declare it in {CONFIG_NAME} as [models.{model}]"
        return UserError(f"unknown model '{model}'", file=file, line=line, hint=hint)


class _Recording:
    """The engine's listener: keeps every finished group's record, passes all on."""

    def __init__(self, records: list[GroupRecord], outer: Progress | None):
        self.records, self.outer = records, outer

    def planned(self, groups: Sequence[GroupPlan]) -> None:
        if self.outer is not None:
            self.outer.planned(groups)

    def started(self, group: GroupPlan) -> None:
        if self.outer is not None:
            self.outer.started(group)

    def advanced(self, done: float, total: float) -> None:
        if self.outer is not None:
            self.outer.advanced(done, total)

    def finished(self, record: GroupRecord) -> None:
        self.records.append(record)
        if self.outer is not None:
            self.outer.finished(record)


def locate(err: UserError, planners: Iterable[PagePlanner]) -> UserError:
    """An analysis error without a location, placed at the first page line that asked for one
    of the requests it was computing (the reference's line when the request has one)."""
    if err.file is not None or not err.requests:
        return err
    wanted = set(err.requests)
    for page in planners:
        for request in page.requests:
            if request not in wanted:
                continue
            ref = getattr(request, "ref", None)
            for mention in page.mentions:
                if ref is not None and mention.ref in (ref, ref.channel_ref()):
                    return err.located(mention.file, mention.line)
            return err.located(page.file, 1)
    return err
