"""The progress a person reads: without a terminal, one plain line per finished group with the
overall count, elapsed time and an estimate that weighs each kind of analysis by its own rate."""

from __future__ import annotations

import io

from circuitpress.analysis.progress import GroupPlan, GroupRecord
from circuitpress.commands.console import Display


def plan(kind: str, cost: float, requests: int = 2) -> GroupPlan:
    return GroupPlan(kind, "m", "conv1" if kind == "featurevis" else None, requests, 4, 8, cost)


def test_plain_lines_and_an_estimate_per_kind() -> None:
    out = io.StringIO()
    display = Display(out, terminal=False)
    fv1, ex, fv2 = plan("featurevis", 100.0), plan("examples", 1000.0), plan("featurevis", 300.0)
    display.planned([fv1, ex, fv2])
    display.started(fv1)
    display.advanced(16, 32)
    assert out.getvalue() == ""  # nothing but finished groups without a terminal
    display.finished(GroupRecord(fv1, cpu_seconds=9.0, wall_seconds=10.0))
    display.started(ex)
    display.finished(GroupRecord(ex, cpu_seconds=1.0, wall_seconds=1.0))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("feature vis m/conv1: 2 requests, 4 images x 8 steps, 10.0 s")
    assert "(CPU 9.0 s) [analyses 2/6" in lines[0]
    assert lines[1].startswith("examples m: 2 requests, 4 dataset images, 1.0 s")
    # 300 units of feature vis at 0.1 s per unit are left; the fast examples pass does not
    # make the estimate optimistic (an overall rate would say 300 * 11/1100 = 3 s).
    assert display.seconds_left() == 30.0
    display.started(fv2)
    display.advanced(1, 2)
    assert display.seconds_left() == 15.0
    display.stop()
