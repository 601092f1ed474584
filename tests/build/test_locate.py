"""An analysis error raised without a location names the page line that asked for it."""

from __future__ import annotations

import pytest

from circuitpress.build.plan import PagePlanner, locate
from circuitpress.errors import UserError
from circuitpress.requests import ExamplesRequest, FeatureVisRequest


def planner() -> PagePlanner:
    page = PagePlanner(file="content/a.md", default_model="m")
    ref = page.ref("m/conv2:7", 12)
    page.request(FeatureVisRequest(ref=ref))
    return page


def test_an_unlocated_analysis_error_gets_the_reference_line() -> None:
    page = planner()
    err = UserError("layer 'conv2' produced no output in a forward pass")
    err.requests = (page.requests[0],)
    assert locate(err, [page]).format().startswith("content/a.md:12: layer 'conv2'")


def test_located_errors_and_unknown_requests_are_left_alone() -> None:
    page = planner()
    err = UserError("boom", file="circuitpress.toml", line=3)
    err.requests = (page.requests[0],)
    assert locate(err, [page]).file == "circuitpress.toml"
    other = UserError("boom")
    other.requests = (ExamplesRequest(ref=page.refs[0].ref, k=3),)
    assert locate(other, [page]).file is None


def test_the_engine_attaches_the_group_it_was_computing() -> None:
    pytest.importorskip("torch")
    from circuitpress.analysis.engine import EngineEnv, compute_with
    from circuitpress.config import SiteConfig

    request = planner().requests[0]

    def failing(group: list[FeatureVisRequest], env: EngineEnv) -> dict:
        raise UserError("layer 'conv2' produced no output in a forward pass")

    env = EngineEnv(config=SiteConfig(root=None, path=None), device=None)  # type: ignore[arg-type]
    with pytest.raises(UserError) as caught:
        compute_with([request], env, handlers={"featurevis": failing})
    assert caught.value.requests == (request,)
