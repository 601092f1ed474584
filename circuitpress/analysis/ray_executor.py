"""The engine's groups as Ray tasks (`--executor ray`): the only module that imports ray.

Each group is one task, except feature visualization, which is split into the batches its
handler would make anyway (`featurevis.chunks` under the pixel budget): a chunk is then one
task, and since batching never changes an image (featurevis' docstring) and each chunk is
exactly one of the local build's batches, a chunk's images are the local build's. Tasks ask
for `num_gpus=1` for feature vis where the cluster has GPUs, CPUs otherwise; every task asks
for as many CPUs as torch threads it runs (`--jobs`, 1 by default), so that the arithmetic,
and with it the results, equal a local build at the same `--jobs`.

Each model is loaded once in the driver and shipped once per fingerprint through the object
store (`ray.put`), with its dataset sample where a kind reads images (examples, universality,
claims): a worker needs neither the site folder nor the model file. Results are collected
with `ray.wait` as tasks finish, in any order; a task whose worker died is retried
(`max_retries`); every result is delivered, and so cached, here in the driver. Each result
records where it was computed (`data["computed_on"]`: torch version, device, node).

Only loopback addresses are used for a Ray this module starts: it binds 127.0.0.1.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import replace
from functools import partial
from typing import Any

from circuitpress.analysis.engine import (
    Deliver,
    EngineEnv,
    Handler,
    _forward_to,
    load_handler,
    run_group,
)
from circuitpress.analysis.progress import GroupPlan, GroupRecord, Progress, plan_group
from circuitpress.config import CONFIG_NAME, SiteConfig
from circuitpress.errors import UserError
from circuitpress.requests import Request, Result, group_models

# Kinds whose handlers read the model's dataset: their tasks get the decoded sample shipped.
DATASET_KINDS = {"examples", "universality", "claim"}
# Model facts stay in the driver: it loads each model anyway to ship it, validation needs the
# facts before anything else runs, and they take milliseconds.
DRIVER_KINDS = {"model-info"}
MAX_RETRIES = 3  # a task whose worker died runs again, up to this many times
PROBE_SECONDS = 3.0
ADDRESS_HINT = (
    "start one with 'ray start --head --node-ip-address 127.0.0.1', pass --ray-address "
    "HOST:PORT, or build with --executor local"
)

_session: dict[str, Any] = {}  # the Ray this process joined: {"key": (address, cpus)}


def _import_ray(loopback: bool) -> Any:
    """ray, imported so that a Ray it starts (or joins on this machine) uses 127.0.0.1: on
    Linux Ray otherwise replaces a loopback node address by the machine's own address."""
    if loopback:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise UserError(
            "the ray executor needs Ray, which is not installed",
            file=CONFIG_NAME,
            line=1,
            hint="pip install 'circuitpress[ray]', or build with --executor local",
        ) from None
    return ray


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1", "[::1]") or host.startswith("127.")


def _host_port(address: str) -> tuple[str, int]:
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    return host.strip("[]"), int(port)


def _auto_address() -> str:
    """The address `ray start` wrote on this machine (/tmp/ray/ray_current_cluster, under
    $RAY_TMPDIR or $TMPDIR where set, as Ray looks for it)."""
    tmp = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    path = os.path.join(tmp, "ray", "ray_current_cluster")
    try:
        with open(path, encoding="utf-8") as f:
            address = f.read().strip()
    except OSError:
        address = ""
    if not address:
        raise UserError(
            "no Ray cluster is running on this machine (--ray-address auto)",
            file=CONFIG_NAME,
            line=1,
            hint=ADDRESS_HINT,
        )
    return address


def _probe(address: str, shown: str) -> None:
    """Fail in one line when nothing answers at the address: ray.init would retry for
    minutes, printing warnings."""
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=PROBE_SECONDS):
            pass
    except OSError as exc:
        raise UserError(
            f"the Ray cluster at {shown} is unreachable ({exc.strerror or exc})",
            file=CONFIG_NAME,
            line=1,
            hint=ADDRESS_HINT,
        ) from None


def connect(address: str | None, cpus: int | None = None) -> Any:
    """Join the Ray cluster at `address` ("auto": the one `ray start` made here), or start a
    local Ray bound to 127.0.0.1 when None. Kept for the process (the preview server and
    several builds in one process share it); another address shuts the old one down."""
    target = _auto_address() if address == "auto" else address
    loopback = target is None or _is_loopback(_host_port(target)[0])
    ray = _import_ray(loopback)
    key = (target, cpus)
    if ray.is_initialized() and _session.get("key") == key:
        return ray
    if ray.is_initialized():
        ray.shutdown()
    quiet: dict[str, Any] = {
        "log_to_driver": False,
        "logging_level": logging.ERROR,
        "configure_logging": True,
    }
    if target is None:
        ray.init(
            num_cpus=cpus or os.cpu_count() or 1,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            **quiet,
        )
    else:
        _probe(target, address or target)
        try:
            ray.init(address=target, **quiet)
        except (ConnectionError, RuntimeError) as exc:
            raise UserError(
                f"could not join the Ray cluster at {address}: {str(exc).splitlines()[0]}",
                file=CONFIG_NAME,
                line=1,
                hint=ADDRESS_HINT,
            ) from None
    _session["key"] = key
    return ray


def shutdown() -> None:
    """Leave (or stop, when this process started it) the Ray of `connect`."""
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
    _session.clear()


def _run_task(
    group: list[Request],
    config: SiteConfig,
    device_name: str,
    threads: int,
    sample_size: int,
    *shipped: Any,
) -> tuple[dict[Request, Result], float, float, int]:
    """On a worker: one group (or chunk) through its handler, with the shipped models."""
    import torch

    from circuitpress.analysis.models.registry import ModelRegistry

    device = torch.device(
        device_name if device_name != "cuda" or torch.cuda.is_available() else "cpu"
    )
    env = EngineEnv(config=config, device=device, sample_size=sample_size)
    registry = ModelRegistry(config, str(device))
    for loaded, dataset in zip(shipped[::2], shipped[1::2], strict=True):
        registry._loaded[loaded.name] = replace(
            loaded,
            module=loaded.module.to(device),
            device=device,
            _dataset=dataset,
            _shared=registry._datasets,
        )
    env._models = registry
    handler = load_handler(group[0].kind, group, config)
    out, cpu, wall = run_group(group, env, handler, threads)
    import ray

    where = {
        "executor": "ray",
        "torch": torch.__version__,
        "device": str(device),
        "node": ray.get_runtime_context().get_node_id()[:12],
    }
    results = {
        r: Result(data={**res.data, "computed_on": where}, arrays=res.arrays)
        for r, res in out.items()
    }
    return results, cpu, wall, env.batches


class RayExecutor:
    """Groups as Ray tasks on the cluster at `address` (None: a local Ray for the build)."""

    name = "ray"

    def __init__(self, config: SiteConfig, address: str | None, device: str = "auto") -> None:
        self.config = config
        self.address = address
        self.device = device
        self.tasks = 0
        self._ray: Any = None
        self._remote: Any = None
        self._shipped: dict[tuple[str, ...], Any] = {}  # fingerprint -> ObjectRef
        self._cpu_models: Any = None

    # -- shipping -----------------------------------------------------------------------------

    def _models(self, env: EngineEnv) -> Any:
        """The driver's models on the CPU (a worker moves them to its own device)."""
        if env.device.type == "cpu":
            return env.models
        if self._cpu_models is None:
            from circuitpress.analysis.models.registry import ModelRegistry

            self._cpu_models = ModelRegistry(self.config, "cpu")
        return self._cpu_models

    def _ship(self, group: list[Request], env: EngineEnv) -> list[Any]:
        """(model, dataset) object refs for the models of a group, each put once."""
        from circuitpress.analysis.engine import _GROUP_LOCK
        from circuitpress.analysis.lm.sources import is_lm
        from circuitpress.analysis.models.datasets import MEMO_BYTES
        from circuitpress.analysis.models.fingerprint import (
            dataset_fingerprint,
            model_fingerprint,
        )

        refs: list[Any] = []
        needs_images = group[0].kind in DATASET_KINDS
        for name in group_models(group):
            cfg = self.config.models.get(name)
            if cfg is None or is_lm(cfg):
                continue  # a language model loads on the worker, from the site's folder
            key = (model_fingerprint(cfg, self.config),)
            with _GROUP_LOCK:  # loading a model is process-wide work (the preview server)
                if key not in self._shipped:
                    loaded = self._models(env).get(name)
                    self._shipped[key] = self._ray.put(replace(loaded, _dataset=None, _shared={}))
                dataset = None
                if needs_images:
                    dkey = (dataset_fingerprint(cfg, self.config), str(env.sample_size), name)
                    if dkey not in self._shipped:
                        self._shipped[dkey] = self._put_dataset(
                            self._models(env).get(name), MEMO_BYTES
                        )
                    dataset = self._shipped[dkey]
            refs += [self._shipped[key], dataset]
        return refs

    def _put_dataset(self, loaded: Any, limit: int) -> Any:
        """The decoded sample of a model's dataset in the object store (None when it is too
        large to keep in memory: the worker then reads the files itself)."""
        dataset = loaded.dataset()
        h, w = dataset.size
        if dataset.count * h * w * 3 * 4 > limit:
            return None
        dataset._memo_read(0, dataset.count)  # decoded once, here
        return self._ray.put(dataset)

    # -- tasks --------------------------------------------------------------------------------

    def _chunks(self, group: list[Request], env: EngineEnv) -> list[list[Request]]:
        """Feature vis in the batches its handler makes; any other group whole."""
        from circuitpress.analysis.lm.sources import is_lm
        from circuitpress.analysis.methods.featurevis import batch_limit, chunks

        first = group[0]
        cfg = self.config.models.get(first.models[0])
        if first.kind != "featurevis" or cfg is None or is_lm(cfg):
            return [group]
        size = (
            getattr(first, "size", 0) or self._models(env).get(first.models[0]).visualization_size()
        )
        return [list(c) for c in chunks(group, batch_limit(size)) if c]  # type: ignore[arg-type]

    def _node_cpus(self) -> int:
        """The most CPUs one live node of the cluster has (at least 1)."""
        nodes = [n for n in self._ray.nodes() if n.get("Alive")]
        return max([int(n.get("Resources", {}).get("CPU", 0)) for n in nodes] + [1])

    def _gpus(self) -> bool:
        if self.device == "cpu":
            return False
        return float(self._ray.cluster_resources().get("GPU", 0)) >= 1

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
        cpus = threads or 1
        here = [g for g in groups if g[0].kind in DRIVER_KINDS or g[0].kind in handlers]
        there = [g for g in groups if not (g[0].kind in DRIVER_KINDS or g[0].kind in handlers)]
        work: list[tuple[GroupPlan, list[Request], bool]] = []
        for group in here:
            work.append((plan_group(group, env.sample_size), group, True))
        if there:
            self._connect()
        gpus = bool(there) and self._gpus()
        for group in there:
            for chunk in self._chunks(group, env):
                work.append((plan_group(chunk, env.sample_size), chunk, False))
        listener.planned([plan for plan, _, _ in work])

        def finish(plan: GroupPlan, done: dict[Request, Result], record: GroupRecord) -> None:
            results.update(done)
            if deliver is not None:
                deliver(done)
            listener.finished(record)

        for plan, group, _ in (w for w in work if w[2]):
            handler = handlers.get(group[0].kind) or load_handler(group[0].kind, group, env.config)
            env.progress = _forward_to(listener)
            done, cpu, wall = run_group(
                group, env, handler, threads, started=partial(listener.started, plan)
            )
            finish(plan, done, GroupRecord(plan, cpu, wall, batches=env.batches))
        pending: dict[Any, tuple[GroupPlan, list[Request]]] = {}
        # A task asking for more CPUs than any node has would wait forever: it asks for the
        # most a node has, and still runs `cpus` torch threads (the local build's arithmetic).
        ask = min(cpus, self._node_cpus()) if there else cpus
        for plan, chunk, _ in (w for w in work if not w[2]):
            use_gpu = gpus and chunk[0].kind == "featurevis"
            ref = self._remote.options(
                num_cpus=ask, num_gpus=1 if use_gpu else 0, max_retries=MAX_RETRIES
            ).remote(
                chunk,
                self.config,
                "cuda" if use_gpu else "cpu",
                cpus,
                env.sample_size,
                *self._ship(chunk, env),
            )
            pending[ref] = (plan, chunk)
        try:
            while pending:
                ready, _ = self._ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    plan, chunk = pending.pop(ref)
                    done, cpu, wall, batches = self._get(ref, chunk)
                    self.tasks += 1
                    listener.started(plan)
                    finish(plan, done, GroupRecord(plan, cpu, wall, batches=batches))
        finally:
            for ref in pending:  # an error: what is still queued is of no use
                try:
                    self._ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - a task that already ended
                    pass
        return results

    def _connect(self) -> None:
        if self._ray is None:
            self._ray = connect(self.address)
            self._remote = self._ray.remote(_run_task)

    def _get(self, ref: Any, chunk: list[Request]) -> Any:
        """A task's return value; its handler's UserError as raised, a lost cluster or a
        worker that kept dying as one line."""
        ray = self._ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, UserError):
                if cause.file is None:
                    cause.requests = tuple(chunk)
                raise cause from None
            raise RuntimeError(f"a Ray task failed: {str(cause or exc).splitlines()[0]}") from exc
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
            plan = plan_group(chunk, 0)
            raise UserError(
                f"a Ray worker computing {plan.label} died {MAX_RETRIES + 1} times "
                f"({type(exc).__name__})",
                file=CONFIG_NAME,
                line=1,
                hint="a worker may run out of memory: give it more, or use fewer --jobs",
            ) from None
        except (ray.exceptions.RaySystemError, ConnectionError, ray.exceptions.RayError) as exc:
            shown = self.address or "the local Ray"
            raise UserError(
                f"lost the Ray cluster at {shown} ({type(exc).__name__})",
                file=CONFIG_NAME,
                line=1,
                hint=ADDRESS_HINT,
            ) from None
