"""What the engine tells whoever watches it: the groups it will compute, how far the current
one is, and what each finished group cost (the build report's rows).

Torch-free, so that the console and the build report can use these types without the
engine. A group's `cost` is a rough estimate of its work in one unit for all kinds (about a
feature-vis image-step at 64 px), so that an estimate of the time left can weigh a batch of
256-step optimisations against a few weight lookups.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol, Sequence

from circuitpress.requests import ExamplesRequest, FeatureVisRequest, Request

# Relative costs measured on the example site (2-core CPU): one feature-vis image-step at
# 64 px is the unit; a dataset pass costs about a 64-px image-step per image it runs, and the
# other kinds are a few units per request.
OTHER_COST = 4.0


@dataclass(frozen=True)
class GroupPlan:
    """One group the engine is about to compute."""

    kind: str
    model: str
    layer: str | None
    requests: int
    images: int  # feature-vis images optimised, or dataset images passed
    steps: int  # the most optimisation steps of any request (0 where nothing optimises)
    cost: float

    @property
    def label(self) -> str:
        where = f"{self.model}/{self.layer}" if self.layer else self.model
        what = {"featurevis": "feature vis", "model-info": "model facts"}.get(self.kind, self.kind)
        return f"{what} {where}"

    @property
    def size(self) -> str:
        """The group's work in words, e.g. '96 images x 256 steps' or '12 requests'."""
        requests = f"{self.requests} request{'s' if self.requests != 1 else ''}"
        if self.kind == "featurevis":
            return f"{requests}, {self.images} images x {self.steps} steps"
        if self.kind == "examples":
            return f"{requests}, {self.images} dataset images"
        return requests


@dataclass(frozen=True)
class GroupRecord:
    """A finished group: its plan and what it cost."""

    plan: GroupPlan
    cpu_seconds: float
    wall_seconds: float
    batches: int = 1

    def to_json(self) -> dict[str, Any]:
        row = asdict(self.plan)
        row.pop("cost")
        return {
            **row,
            "batches": self.batches,
            "cpu_seconds": round(self.cpu_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
        }


def plan_group(requests: Sequence[Request], sample_size: int) -> GroupPlan:
    """The plan of one group of requests (all of one kind and group key)."""
    first = requests[0]
    ref = getattr(first, "ref", None)
    model = ref.model if ref is not None else first.models[0]
    layer = ref.layer if ref is not None and first.kind in ("featurevis", "examples") else None
    if isinstance(first, FeatureVisRequest):
        fv = [r for r in requests if isinstance(r, FeatureVisRequest)]
        images = sum(r.diversity for r in fv)
        steps = max(r.steps for r in fv)
        cost = sum(r.diversity * r.steps * ((r.size or 64) / 64) ** 2 for r in fv)  # 0: own size
        return GroupPlan(first.kind, model, layer, len(fv), images, steps, cost)
    if isinstance(first, ExamplesRequest):
        return GroupPlan(first.kind, model, None, len(requests), sample_size, 0, sample_size)
    return GroupPlan(first.kind, model, None, len(requests), 0, 0, OTHER_COST * len(requests))


class Progress(Protocol):
    """The engine's listener (the console's display, a test's recorder)."""

    def planned(self, groups: Sequence[GroupPlan]) -> None:
        """The groups of one `compute` call, before the first runs (a build may call compute
        more than once: model facts, then what follow-ups need, then everything else)."""

    def started(self, group: GroupPlan) -> None: ...

    def advanced(self, done: float, total: float) -> None:
        """How far the current group is (in its own units: image-steps, images, requests)."""

    def finished(self, record: GroupRecord) -> None: ...
