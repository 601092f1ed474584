"""Where the engine's groups run: this process (`LocalExecutor`) or a Ray cluster
(`analysis/ray_executor.py`, the only module that imports ray).

An executor gets the groups of one `compute` call and must keep the engine's promises: the
listener hears `planned` once, then `started`, `advanced` and `finished` for each group (or
chunk of one) in the order they finish; `deliver` receives each finished group's results in
this process, so that every cache write happens in the build's own process (content keys
make a retried or duplicated task harmless); a `UserError` of a handler reaches the build.
"""

from __future__ import annotations

from functools import partial
from typing import Protocol

from circuitpress.analysis.engine import (
    Deliver,
    EngineEnv,
    Handler,
    _forward_to,
    load_handler,
    run_group,
)
from circuitpress.analysis.progress import GroupRecord, Progress, plan_group
from circuitpress.config import EXECUTORS, SiteConfig
from circuitpress.errors import UserError
from circuitpress.requests import Request, Result


class Executor(Protocol):
    """Runs groups of requests; `tasks` counts what it ran (the build's summary line)."""

    name: str
    tasks: int

    def run(
        self,
        groups: list[list[Request]],
        env: EngineEnv,
        *,
        handlers: dict[str, Handler],
        listener: Progress,
        deliver: Deliver | None,
        threads: int | None,
    ) -> dict[Request, Result]: ...


class LocalExecutor:
    """The groups one after the other in this process (the engine's behaviour before
    executors existed, and what the preview server's background computer uses)."""

    name = "local"

    def __init__(self) -> None:
        self.tasks = 0

    def run(
        self,
        groups: list[list[Request]],
        env: EngineEnv,
        *,
        handlers: dict[str, Handler],
        listener: Progress,
        deliver: Deliver | None,
        threads: int | None,
    ) -> dict[Request, Result]:
        results: dict[Request, Result] = {}
        plans = [plan_group(group, env.sample_size) for group in groups]
        listener.planned(plans)
        for plan, group in zip(plans, groups, strict=True):
            kind = group[0].kind
            handler = handlers.get(kind) or load_handler(kind, group, env.config)
            env.progress = _forward_to(listener)
            done, cpu, wall = run_group(
                group, env, handler, threads, started=partial(listener.started, plan)
            )
            self.tasks += 1
            results.update(done)
            if deliver is not None:
                deliver(done)
            listener.finished(GroupRecord(plan, cpu, wall, batches=env.batches))
        return results


def make_executor(
    name: str, config: SiteConfig, address: str | None = None, device: str = "auto"
) -> Executor:
    """The executor a build asked for (`--executor`, `[build] executor`). Ray is imported only
    here, only for `ray`: a local build never imports it."""
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        from circuitpress.analysis.ray_executor import RayExecutor

        return RayExecutor(config, address, device)
    raise UserError(f"unknown executor '{name}'", hint=f"use one of: {', '.join(EXECUTORS)}")
