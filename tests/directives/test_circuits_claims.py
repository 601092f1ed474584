"""{claim}, {tuning} and {universality}: validation with file, line and option; rendering."""

from __future__ import annotations

import numpy as np
import pytest

from circuitpress.directives.claims import ClaimDirective, expectation
from circuitpress.directives.tuning import TuningDirective
from circuitpress.directives.universality import UniversalityDirective
from circuitpress.errors import UserError
from circuitpress.requests import ClaimRequest, Result, TuningRequest, UnitRef, UniversalityRequest

from .circuit_stubs import Ctx, make_call


def claim_call(options: dict[str, str], line: int = 20):  # type: ignore[no-untyped-def]
    d = ClaimDirective()
    return d, make_call(d, "Curve units need edge units", options, line=line)


def test_expectations() -> None:
    assert expectation("decrease >= 50%").percent == 50.0
    assert expectation("Increase").direction == "increase"
    assert expectation("unchanged within 2.5%").percent == 2.5
    assert expectation("unchanged").percent == 5.0
    for bad in ("smaller", "decrease 50", "unchanged >= 5%"):
        with pytest.raises(ValueError, match="unknown expectation"):
            expectation(bad)
    e = expectation("decrease >= 50%")
    assert e.holds(1.0, 0.4, -0.6) and not e.holds(1.0, 0.6, -0.4)
    assert expectation("unchanged within 5%").holds(1.0, 1.04, 0.04)
    assert not expectation("increase").holds(1.0, 1.0, 0.0)


def run_claim(before: float, after: float, expect: str) -> tuple[str, Ctx]:
    d, call = claim_call({"ablate": "toy/conv1:0,3", "measure": "conv2:1", "expect": expect})
    ctx = Ctx()
    d.plan(call, ctx)
    d.follow_up(call, ctx)
    request = ctx.requests[-1]
    assert request == ClaimRequest(
        "toy",
        UnitRef("toy", "conv2", ((1, 1.0),)),  # the measure as markup parsed it
        ablate=(UnitRef("toy", "conv1", ((0, 1.0), (3, 1.0))),),
    )
    change = (after - before) / abs(before)
    ctx.results[request] = Result(
        data={
            "before": before,
            "after": after,
            "change": change,
            "measure": "toy/conv2:1",
            "samples": 96,
        }
    )
    return d.render(call, ctx), ctx


def test_a_claim_that_holds() -> None:
    html, ctx = run_claim(2.0, 0.5, "decrease >= 50%")
    assert 'data-claim="held"' in html and not ctx.warnings
    assert ">2.00<" in html and ">0.50<" in html and "\u221275.0\u202f%" in html
    assert "decreases by at least 50\u202f%" in html


def test_class_accuracy_says_how_many_images_of_the_class_it_measured() -> None:
    d, call = claim_call({"ablate": "toy/conv1:0", "measure": "accuracy:red", "expect": "decrease"})
    ctx = Ctx()
    d.plan(call, ctx)
    d.follow_up(call, ctx)
    data = {
        "before": 0.9,
        "after": 0.5,
        "change": -0.44,
        "measure": "accuracy:red",
        "samples": 96,
        "measured": 41,
    }
    ctx.results[ctx.requests[-1]] = Result(data=data)
    html = d.render(call, ctx)
    assert "the accuracy on the 41 images of class ‘red’ among 96 dataset images" in html


def test_a_claim_that_fails_warns_with_its_line() -> None:
    html, ctx = run_claim(2.0, 1.5, "decrease >= 50%")
    assert 'data-claim="failed"' in html
    assert len(ctx.warnings) == 1
    message, line = ctx.warnings[0]
    assert line == 20 and "failed" in message and "2 -> 1.5" in message


@pytest.mark.parametrize(
    "options, option, message",
    [
        (
            {"ablate": "toy/conv1:0,7", "measure": "conv2:1", "expect": "decrease"},
            "ablate",
            "has no unit 7",
        ),
        (
            {"ablate-weights": "conv2:1 -> conv1:0", "measure": "conv2:1", "expect": "decrease"},
            "ablate-weights",
            "comes after",
        ),
        (
            {"ablate-weights": "conv1:1 -> conv3:0", "measure": "conv3:0", "expect": "decrease"},
            "ablate-weights",
            "no single kernel",
        ),
        (
            {"ablate": "toy/conv1:0", "measure": "accuracy:green", "expect": "decrease"},
            "measure",
            "no class 'green'",
        ),
        (
            {"ablate": "toy/conv1:a,b", "measure": "conv2:1", "expect": "decrease"},
            "ablate",
            "bad units",
        ),
        (
            {
                "ablate-weights": "conv1:1 -> other/conv2:0",
                "measure": "conv2:0",
                "expect": "decrease",
            },
            "ablate-weights",
            "different models",
        ),
    ],
)
def test_bad_claims_name_the_option_and_its_line(
    options: dict[str, str], option: str, message: str
) -> None:
    d, call = claim_call(options)
    ctx = Ctx()
    with pytest.raises(UserError) as err:
        d.plan(call, ctx)
        d.follow_up(call, ctx)
    assert message in err.value.message
    assert f"':{option}:'" in err.value.message
    assert err.value.file == "content/test.md" and err.value.line == call.option_line(option)


def test_claim_needs_an_edit_and_a_measure() -> None:
    d, call = claim_call({"measure": "conv2:1", "expect": "decrease"})
    with pytest.raises(UserError, match="needs an edit"):
        d.plan(call, Ctx())
    d, call = claim_call({"ablate": "toy/conv1:0", "expect": "decrease"})
    with pytest.raises(UserError, match="':measure:'"):
        d.plan(call, Ctx())


def test_unknown_stimulus_is_a_bad_option_value() -> None:
    with pytest.raises(ValueError, match="unknown stimulus 'texture'"):
        make_call(TuningDirective(), "conv2:1", {"stimulus": "texture"})
    with pytest.raises(ValueError, match="unknown stimulus"):
        claim_call(
            {
                "ablate": "toy/conv1:0",
                "measure": "conv2:1",
                "expect": "decrease",
                "stimulus": "noise",
            }
        )


def test_tuning_renders_a_line_plot_with_stimuli() -> None:
    d = TuningDirective()
    ctx = Ctx()
    call = make_call(d, "conv2:1", {"stimulus": "color", "steps": "12"})
    d.plan(call, ctx)
    request = TuningRequest(UnitRef("toy", "conv2", ((1, 1.0),)), "colour", 12)
    assert ctx.requests == [request]
    values = [30.0 * i for i in range(12)]
    response = [float(np.cos(np.radians(v - 120))) for v in values]
    ctx.results[request] = Result(
        data={
            "axes": [{"name": "colour", "values": values, "unit": "hue, degrees"}],
            "response": response,
            "peak": [4],  # 120°: the analysis finds the peak
            "position": [4, 4],
            "variants": 1,
        },
        arrays={"stimuli": np.zeros((12, 8, 8, 3), np.float32)},
    )
    html = d.render(call, ctx)
    assert "cp-line-plot" in html and "peak at 120°" in html
    assert html.count("<img ") == 12 and ctx.images == 12


def test_tuning_2d_renders_a_heat_map() -> None:
    d = TuningDirective()
    ctx = Ctx()
    call = make_call(d, "conv2:1", {"stimulus": "orientation x curvature", "steps": "6"})
    d.plan(call, ctx)
    grid = np.arange(36, dtype=float).reshape(6, 6)
    ctx.results[ctx.requests[0]] = Result(
        data={
            "axes": [
                {"name": "orientation", "values": [60.0 * i for i in range(6)], "unit": "degrees"},
                {"name": "curvature", "values": [0.05 * i for i in range(6)], "unit": "1/pixels"},
            ],
            "response": grid.tolist(),
            "peak": [5, 5],
            "variants": 1,
        },
        arrays={"stimuli": np.zeros((6, 8, 8, 3), np.float32)},
    )
    html = d.render(call, ctx)
    assert "cp-heatmap" in html and "peak at orientation 300°, curvature 0.25" in html


def test_universality_renders_pairs_strongest_first() -> None:
    d = UniversalityDirective()
    ctx = Ctx()
    call = make_call(d, "toy/conv1 ~ toy2/conv1", {"top": "2"})
    d.plan(call, ctx)
    request = UniversalityRequest("toy", "conv1", "toy2", "conv1")
    assert ctx.requests == [request] and ctx.layers == [("toy", "conv1"), ("toy2", "conv1")]
    ctx.results[request] = Result(
        data={
            "pairs": [
                {"a": 1, "b": 3, "r": 0.934},
                {"a": 0, "b": 0, "r": 0.5},
                {"a": 2, "b": 1, "r": 0.1},
            ],
            "mean_matched": 0.5113,
            "samples": 64,
            "best_a": [],
        },
    )
    ctx.mentions.clear()
    d.follow_up(call, ctx)
    assert UnitRef("toy2", "conv1", ((3, 1.0),)) in ctx.mentions and len(ctx.mentions) == 4
    html = d.render(call, ctx)
    assert html.index('data-correlation="0.93"') < html.index('data-correlation="0.5"')
    assert 'data-correlation="0.1"' not in html
    assert "<strong>0.511</strong>" in html


def test_universality_needs_a_tilde() -> None:
    d = UniversalityDirective()
    with pytest.raises(UserError, match="joined by '~'"):
        d.plan(make_call(d, "toy/conv1 toy2/conv1"), Ctx())
