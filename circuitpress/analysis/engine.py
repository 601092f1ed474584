"""The analysis engine: every request of the site at once, each group computed in one go.

`compute` groups requests by `group_key()` (one feature-vis batch per layer and shared
hyper-parameters, one dataset pass per model for examples, …) and hands each group to the
handler of its kind. Handlers live in their own modules and are imported only when a group of
their kind exists, so a build that needs only examples never imports lucent.

A handler is `compute_group(requests: list, env: EngineEnv) -> dict[Request, Result]`.
"""

from __future__ import annotations

import importlib
import random
import threading
import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import torch

from circuitpress.analysis.models.registry import resolve_device
from circuitpress.analysis.progress import Progress
from circuitpress.config import SiteConfig
from circuitpress.errors import UserError
from circuitpress.requests import Request, Result, group_models

if TYPE_CHECKING:
    from circuitpress.analysis.executors import Executor

HANDLERS: dict[str, str] = {
    "model-info": "circuitpress.analysis.models.facts:compute_group",
    "featurevis": "circuitpress.analysis.methods.featurevis:compute_group",
    "examples": "circuitpress.analysis.methods.examples:compute_group",
    "weights": "circuitpress.analysis.methods.weights:compute_group",
    "connections": "circuitpress.analysis.methods.weights:compute_group",
    "tuning": "circuitpress.analysis.methods.tuning:compute_group",
    "claim": "circuitpress.analysis.methods.claims:compute_group",
    "universality": "circuitpress.analysis.methods.universality:compute_group",
    "lm-heads": "circuitpress.analysis.methods.heads:compute_group",
    "lm-attention": "circuitpress.analysis.methods.heads:compute_attention",
    "lm-logits": "circuitpress.analysis.methods.lm_logits:compute_group",
    "lm-composition": "circuitpress.analysis.methods.lm_logits:compute_composition",
    "lm-claim": "circuitpress.analysis.methods.lm_claims:compute_group",
}
# The shared kinds of a language model's group (analysis/lm: its facts, token examples, the
# pictures of its units' chips and pages) are computed by these handlers instead.
LM_HANDLERS: dict[str, str] = {
    "model-info": "circuitpress.analysis.lm.facts:compute_group",
    "examples": "circuitpress.analysis.methods.lm_examples:compute_group",
    "featurevis": "circuitpress.analysis.methods.lm_examples:compute_pictures",
    "connections": "circuitpress.analysis.methods.lm_examples:compute_connections",
    "weights": "circuitpress.analysis.methods.lm_examples:compute_unsupported",
    "tuning": "circuitpress.analysis.methods.lm_examples:compute_unsupported",
    "claim": "circuitpress.analysis.methods.lm_examples:compute_unsupported",
    "universality": "circuitpress.analysis.methods.lm_examples:compute_unsupported",
}

SEED = 0
ProgressFn = Callable[[str, int, int], None]
Handler = Callable[[list[Any], "EngineEnv"], dict[Any, Result]]
Deliver = Callable[[dict[Request, Result]], None]

_GROUP_LOCK = threading.RLock()
LOCK_FREE_KINDS = frozenset({"model-info"})


def _no_progress(label: str, done: int, total: int) -> None:
    return None


class _Silent:
    def planned(self, groups: Any) -> None: ...
    def started(self, group: Any) -> None: ...
    def advanced(self, done: float, total: float) -> None: ...
    def finished(self, record: Any) -> None: ...


@dataclass
class EngineEnv:
    """What handlers get: the config, the models (loaded lazily), the device, progress.

    A handler reports its progress as `progress(label, done, total)` and may set `batches`
    to the number of batches it split its group into (the build report shows it)."""

    config: SiteConfig
    device: torch.device
    progress: ProgressFn = _no_progress
    sample_size: int = 2048
    batch_size: int = 128
    batches: int = 1
    _models: Any = field(default=None, repr=False)

    @property
    def models(self) -> Any:
        """The site's `ModelRegistry`, created on first use (loading weights is not free)."""
        if self._models is None:
            from circuitpress.analysis.models.registry import ModelRegistry

            self._models = ModelRegistry(self.config, str(self.device))
        return self._models


def _forward_to(listener: Progress) -> ProgressFn:
    """A handler's `progress(label, done, total)`, passed on as the current group's."""

    def progress(_label: str, done: int, total: int) -> None:
        listener.advanced(done, total)

    return progress


def load_handler(
    kind: str, group: Sequence[Request] = (), config: SiteConfig | None = None
) -> Handler:
    """The `compute_group` function of a request kind, imported on demand (a language model's
    group of a shared kind gets the LM handler)."""
    target = HANDLERS.get(kind)
    if config is not None and group and kind in LM_HANDLERS:
        from circuitpress.analysis.lm.sources import is_lm

        models = [config.models.get(m) for m in group_models(group)]
        if any(m is not None and is_lm(m) for m in models):
            target = LM_HANDLERS[kind]
    if target is None:
        raise ValueError(f"no analysis handler for request kind '{kind}'")
    module_name, func = target.split(":")
    return getattr(importlib.import_module(module_name), func)


def group_requests(requests: Sequence[Request]) -> dict[tuple[Any, ...], list[Request]]:
    """Unique requests by group key, in first-seen order (so runs are reproducible)."""
    groups: dict[tuple[Any, ...], list[Request]] = defaultdict(list)
    seen: set[Request] = set()
    for req in requests:
        if req not in seen:
            seen.add(req)
            groups[req.group_key()].append(req)
    return dict(groups)


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def seed_everything(seed: int = SEED) -> None:
    """Fixed seeds for every library a handler might draw from (per-group reproducibility)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def compute(
    requests: Sequence[Request],
    config: SiteConfig,
    *,
    device: str = "auto",
    progress: Progress | None = None,
    threads: int | None = None,
    deliver: Deliver | None = None,
    executor: Executor | None = None,
) -> dict[Request, Result]:
    """Compute one `Result` per request (duplicates computed once), group by group.

    `threads` caps torch's CPU threads for the computation (None: torch's default, one per
    core). On a machine shared with other busy processes, fewer threads can be much faster:
    torch's worker threads spin while waiting for each other. `deliver` receives each
    group's results as soon as the group finishes (the build stores them in the cache then,
    so the preview server can show a figure without waiting for the rest, and a killed
    build keeps what it finished). `executor` runs the groups (analysis/executors.py: this
    process by default, or a Ray cluster).
    """
    env = EngineEnv(
        config=config,
        device=resolve_device(device if device != "auto" else config.build.device),
        sample_size=config.build.dataset_sample,
    )
    return compute_with(
        requests, env, listener=progress, deliver=deliver, threads=threads, executor=executor
    )


def compute_with(
    requests: Sequence[Request],
    env: EngineEnv,
    handlers: dict[str, Handler] | None = None,
    listener: Progress | None = None,
    deliver: Deliver | None = None,
    threads: int | None = None,
    executor: Executor | None = None,
) -> dict[Request, Result]:
    """`compute` with a prepared environment (and optionally other handlers, for tests).

    Groups run one at a time in the whole process (`_GROUP_LOCK`): the preview server
    computes in a background thread while its rebuilds may need a model's facts, and a
    group's seeds and torch's thread count are process-wide."""
    groups = list(group_requests(requests).values())
    if executor is None:
        from circuitpress.analysis.executors import LocalExecutor

        executor = LocalExecutor()
    return executor.run(
        groups,
        env,
        handlers=handlers or {},
        listener=listener or _Silent(),
        deliver=deliver,
        threads=threads,
    )


def run_group(
    group: list[Request],
    env: EngineEnv,
    handler: Handler,
    threads: int | None,
    started: Callable[[], None] | None = None,
) -> tuple[dict[Request, Result], float, float]:
    """One group through its handler, from the engine's fixed seeds: (its results in the
    group's order, CPU seconds, wall seconds). The same steps in this process and on a Ray
    worker, so that a group's result does not depend on where it ran."""
    kind = group[0].kind
    # Each group starts from the same seeds, so a group's result does not depend on which
    # other groups ran before it (and so on what else the site asks for). Model facts (one
    # deterministic forward pass of a constant image, no seeds) need neither the lock nor
    # the thread count: the preview's quick build asks for them and must not wait for a
    # minutes-long feature-vis group of the background computation.
    free = kind in LOCK_FREE_KINDS
    with nullcontext() if free else _GROUP_LOCK, _torch_threads(None if free else threads):
        if not free:
            seed_everything()
        if started is not None:
            started()
        env.batches = 1
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            out = handler(group, env)
        except UserError as err:
            if err.file is None:
                err.requests = tuple(group)
            raise
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    missing = [r for r in group if r not in out]
    if missing:
        raise RuntimeError(f"handler for '{kind}' returned no result for {missing[0].key()}")
    return {req: out[req] for req in group}, cpu, wall
