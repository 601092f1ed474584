"""The engine: grouping, dispatch, seeds, and both of its own handlers through a stand-in
model registry (a tiny nn.Module and an in-memory dataset)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from circuitpress.analysis.engine import EngineEnv, compute_with, group_requests, load_handler
from circuitpress.config import SiteConfig
from circuitpress.requests import (
    ExamplesRequest,
    FeatureVisRequest,
    ModelInfoRequest,
    Result,
    UnitRef,
)


class Images:
    def __init__(self, data: torch.Tensor) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def batches(self, batch_size: int = 64, limit: int | None = None):
        stop = len(self.data) if limit is None else min(limit, len(self.data))
        for s in range(0, stop, batch_size):
            yield s, self.data[s : min(s + batch_size, stop)], None

    def images(self, indices: list[int]) -> np.ndarray:
        return self.data[indices].permute(0, 2, 3, 1).numpy()


@dataclass
class Loaded:
    module: nn.Module
    data: torch.Tensor
    input_size: tuple[int, int] = (32, 32)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 0.5) / 0.25

    def layer(self, name: str) -> nn.Module:
        return dict(self.module.named_modules())[name]

    def dataset(self) -> Images:
        return Images(self.data)


@dataclass
class Registry:
    models: dict[str, Loaded] = field(default_factory=dict)
    gets: int = 0

    def get(self, name: str) -> Loaded:
        self.gets += 1
        return self.models[name]


def env_with(sample: int = 64) -> EngineEnv:
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, padding=1)
    )
    data = torch.rand(80, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    config = SiteConfig(root=Path("."), path=Path("circuitpress.toml"))
    env = EngineEnv(config=config, device=torch.device("cpu"), sample_size=sample, batch_size=16)
    env._models = Registry({"m": Loaded(module, data)})
    return env


def u(layer: str, ch: int) -> UnitRef:
    return UnitRef("m", layer, ((ch, 1.0),))


def test_groups_deduplicate_and_split_by_key() -> None:
    a = FeatureVisRequest(u("3", 1), steps=8)
    b = FeatureVisRequest(u("3", 2), steps=8)
    c = FeatureVisRequest(u("0", 2), steps=8)
    # Steps, sign, seed and diversity share a layer's batch; image size and lr do not.
    d = FeatureVisRequest(u("3", 2), steps=64, diversity=2, negative=True, seed=3)
    s = FeatureVisRequest(u("3", 2), steps=8, size=32)
    e1, e2 = ExamplesRequest(u("0", 1)), ExamplesRequest(u("3", 4), k=3)
    groups = group_requests([a, b, a, c, d, s, e1, e2, b])
    assert list(groups.values()) == [[a, b, d], [c], [s], [e1, e2]]


def test_real_handlers_through_the_engine() -> None:
    env = env_with()
    listener = Listener()
    fv = [FeatureVisRequest(u("3", c), size=32, steps=8) for c in range(3)]
    ex = [ExamplesRequest(u("0", 1), k=4), ExamplesRequest(u("3", 2), k=3)]
    results = compute_with(fv + ex + [fv[0]], env, listener=listener)
    assert set(results) == set(fv + ex)
    assert results[fv[1]].arrays["images"].shape == (1, 32, 32, 3)
    assert results[ex[0]].arrays["images"].shape[0] == 4
    assert max(results[ex[1]].data["indices"]) < 64  # only the configured sample is read
    # The listener hears the plan, each group's start, progress and cost, in that order.
    assert [(g.kind, g.requests, g.images) for g in listener.planned_groups] == [
        ("featurevis", 3, 3),
        ("examples", 2, 64),
    ]
    assert [e[0] for e in listener.events if e[0] != "advanced"] == ["started", "finished"] * 2
    assert ("advanced", 24.0, 24.0) in listener.events  # 3 images x 8 steps
    assert ("advanced", 64.0, 64.0) in listener.events  # the 64-image sample
    fv_record = listener.records[0]
    assert fv_record.plan.label == "feature vis m/3" and fv_record.plan.steps == 8
    assert fv_record.wall_seconds > 0 and fv_record.batches == 1


class Listener:
    def __init__(self) -> None:
        self.planned_groups: list = []
        self.events: list[tuple] = []
        self.records: list = []

    def planned(self, groups: list) -> None:
        self.planned_groups.extend(groups)

    def started(self, group: object) -> None:
        self.events.append(("started", group))

    def advanced(self, done: float, total: float) -> None:
        self.events.append(("advanced", float(done), float(total)))

    def finished(self, record: object) -> None:
        self.events.append(("finished", record))
        self.records.append(record)


def test_each_group_starts_from_the_same_seeds() -> None:
    draws: list[float] = []

    def handler(requests: list[Any], env: EngineEnv) -> dict[Any, Result]:
        draws.append(float(torch.rand(1)))
        return {r: Result(data={"n": len(requests)}) for r in requests}

    env = env_with()
    # Two groups (two layers) of a seeded kind. Model facts are not seeded (nor locked): a
    # dummy forward of a constant image draws nothing, and the preview server's quick build
    # computes them beside a running group (see the next test).
    two = [FeatureVisRequest(UnitRef("m", layer, ((0, 1.0),))) for layer in ("a", "b")]
    compute_with(two, env, {"featurevis": handler})
    assert len(draws) == 2 and draws[0] == draws[1]


def test_model_facts_never_wait_for_a_running_group() -> None:
    """The preview's quick build asks for model facts while the background computation holds
    the engine's lock for a group: the facts must not wait for it."""
    import threading

    from circuitpress.analysis.engine import _GROUP_LOCK

    env = env_with()
    done = threading.Event()

    def facts(requests: list[Any], env: EngineEnv) -> dict[Any, Result]:
        return {r: Result(data={"layers": []}) for r in requests}

    with _GROUP_LOCK:  # a group of the other thread is running
        worker = threading.Thread(
            target=lambda: (
                compute_with([ModelInfoRequest("m")], env, {"model-info": facts}),
                done.set(),
            )
        )
        worker.start()
        assert done.wait(10), "model facts waited for the engine lock"
    worker.join(10)


def test_missing_result_is_an_internal_error() -> None:
    env = env_with()
    with pytest.raises(RuntimeError, match="no result"):
        compute_with([ModelInfoRequest("m")], env, {"model-info": lambda reqs, env: {}})


def test_handlers_are_imported_lazily() -> None:
    assert load_handler("featurevis").__module__ == "circuitpress.analysis.methods.featurevis"
    assert load_handler("examples").__module__ == "circuitpress.analysis.methods.examples"
    with pytest.raises(ValueError, match="no analysis handler"):
        load_handler("nonsense")


def test_neuron_position_follows_the_image_size() -> None:
    """`@Y,X` names a position of the layer at the model's own input size (32 px: a 16x16
    grid); a 16 px visualization has an 8x8 grid, so (8, 8) becomes (4, 4) there."""
    env = env_with()
    loaded = env.models.get("m")
    request = FeatureVisRequest(UnitRef("m", "3", ((2, 1.0),), (8, 8)), size=16, steps=6)
    result = compute_with([request], env)[request]
    image = torch.from_numpy(result.arrays["images"]).permute(0, 3, 1, 2)
    with torch.no_grad():
        acts = loaded.module[:4](loaded.normalize(image))
    assert acts.shape[2:] == (8, 8)
    assert result.data["activation"][0] == pytest.approx(float(acts[0, 2, 4, 4]), abs=1e-5)
