"""Figures a Distill reader expects, through the real Markup parser and renderer with results
made up here (no torch): grids of units, one caption per figure, one number format, equal
positive and negative images, stimuli along their own axis, unit pages that link every unit
they name, chips that show their model on pages naming several."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from circuitpress.build.plan import PagePlanner
from circuitpress.config import SiteConfig
from circuitpress.directives.features import split_refs
from circuitpress.errors import UserError
from circuitpress.extensions import default_registry
from circuitpress.markup.page import Markup
from circuitpress.render.numbers import fmt, percent, shared
from circuitpress.render.stimulus_plot import AxisStimuli, tuning_heatmap_svg
from circuitpress.requests import FeatureVisRequest, Request, Result, UnitRef
from circuitpress.structure.units import (
    UnitPagePlan,
    connection_requests,
    neighbour_page_requests,
    unit_page_context,
    unit_page_requests,
)

from .test_features import FRONT, Services  # the stand-ins of the unit tests next door


@pytest.fixture
def markup(tmp_path: Path) -> Markup:
    return Markup(
        SiteConfig(root=tmp_path, path=tmp_path / "circuitpress.toml"), default_registry()
    )


def render(markup: Markup, body: str, front: str = FRONT) -> tuple[str, PagePlanner]:
    planner = PagePlanner("content/a.md", "m")
    page = markup.parse("content/a.md", front + body, lambda meta: planner)
    pages = {m.ref.channel_ref() for m in planner.mentions if m.ref.channel_ref()}
    planned = list(planner.requests) + [r for ref in pages for r in unit_page_requests(ref)]
    return markup.render(page, Services(planned, pages)).body_html, planner


def figures(html: str) -> list[str]:
    return re.findall(r"<figure.*?</figure>", html, flags=re.S)


# --- the reference list ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, refs",
    [
        ("shapes-a/conv2:7", ["shapes-a/conv2:7"]),
        ("conv2:7@3,4", ["conv2:7@3,4"]),  # a neuron's comma is not a separator
        ("conv2:0.7*3 - 0.2*7", ["conv2:0.7*3 - 0.2*7"]),  # a direction written with spaces
        ("conv2:3, 7, 12", ["conv2:3", "conv2:7", "conv2:12"]),
        ("shapes-a/conv2:3,7,12", ["shapes-a/conv2:3", "shapes-a/conv2:7", "shapes-a/conv2:12"]),
        ("conv2:3 conv3:5", ["conv2:3", "conv3:5"]),
        ("a/conv2:7@3,4, conv2:8", ["a/conv2:7@3,4", "conv2:8"]),
        ("conv2:3 7 12", ["conv2:3", "conv2:7", "conv2:12"]),
    ],
)
def test_split_refs(text: str, refs: list[str]) -> None:
    assert split_refs(text) == refs


# --- grids of units ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["feature", "features"])
def test_several_units_are_one_grid_figure_with_one_caption(markup: Markup, name: str) -> None:
    html, planner = render(markup, f":::{{{name}}} conv2:3, 7, 12\n:steps: 32\nCurves.\n:::\n")
    assert [r.ref.unit_text for r in planner.requests] == ["3", "7", "12"]  # type: ignore[attr-defined]
    assert all(r.steps == 32 for r in planner.requests)  # type: ignore[attr-defined]
    (figure,) = figures(html)
    assert 'class="cp-feature cp-feature-grid"' in figure
    assert figure.count('class="cp-feature-cell"') == 3
    assert figure.count("<figcaption") == 1
    caption = re.search(r"<figcaption>.*?</figcaption>", figure, flags=re.S).group(0)  # type: ignore[union-attr]
    assert "Curves." in caption and 'class="cp-figure-facts"' in caption
    assert "m/conv2, units 3, 7, 12" in caption  # the layer named once, not per cell
    # Large and crisp: 64 px images at twice their size, pixelated; every cell links its page.
    imgs = re.findall(r"<img [^>]*>", figure)
    assert len(imgs) == 3
    assert all('width="128" height="128"' in i and "cp-pixelated" in i for i in imgs)
    for unit in ("3", "7", "12"):
        assert f'href="/units/m/conv2/{unit}/"' in figure
    # The cells' activations share their decimals (1.5 for every fake result: "1.50").
    assert figure.count(">1.50<") == 3


def test_grid_of_units_of_two_layers_names_each(markup: Markup) -> None:
    html, _ = render(markup, ":::{features} conv2:3 conv3:5\n:::\n")
    (figure,) = figures(html)
    assert ">conv2:3</a>" in figure and ">conv3:5</a>" in figure
    assert figure.count("<figcaption") == 1  # no author caption: the facts are the caption


def test_a_bad_reference_in_a_list_names_the_line(markup: Markup) -> None:
    with pytest.raises(UserError) as info:
        render(markup, "Text.\n\n:::{features} conv2:3, conv2:x\n:::\n")
    message = info.value.format()
    assert message.startswith(f"content/a.md:{FRONT.count(chr(10)) + 3}: ")
    assert "conv2:x" in message and "\n" not in message


# --- one caption per figure -------------------------------------------------------------------


def test_examples_and_feature_have_one_caption_with_facts_inside(markup: Markup) -> None:
    html, _ = render(
        markup,
        ":::{feature} conv1:2\nAn *edge*.\n:::\n\n:::{examples} conv1:2\n:k: 4\nIts images.\n:::\n",
    )
    for figure in figures(html):
        assert figure.count("<figcaption") == 1, figure
        assert "cp-feature-label" not in figure  # the machine's caption above the author's
        facts = re.search(r'<span class="cp-figure-facts">(.*?)</span></figcaption>', figure)
        assert facts is not None and "m/conv1:2" in facts.group(1)
    assert "<em>edge</em>" in html and "Its images." in html
    assert "top 4 dataset examples" in html


# --- numbers ----------------------------------------------------------------------------------


def test_number_format() -> None:
    assert fmt(-0.302) == "\u22120.302"  # a true minus sign
    assert (fmt(6.06), fmt(12.4), fmt(0.9193)) == ("6.06", "12.4", "0.919")
    assert fmt(12345.6) == "12\u202f346"  # grouped by thin no-break spaces
    assert fmt(-4.123e-5) == "\u22124.12×10⁻⁵"
    assert fmt(-0.0) == "0" and fmt(float("nan")) == "n/a"
    # Numbers shown together share their decimals.
    assert shared([-0.302, 6.06, 12.4]) == ["\u22120.3", "6.1", "12.4"]
    assert shared([2.0, 0.5]) == ["2.00", "0.50"]
    assert percent(-75.0, signed=True) == "\u221275.0\u202f%"
    assert percent(3.2, signed=True) == "+3.20\u202f%"
    assert percent(50, trim=True) == "50\u202f%"


# --- unit pages -------------------------------------------------------------------------------


def test_unit_page_positive_and_negative_are_the_same_size(tmp_path: Path) -> None:
    from circuitpress.config import load_config
    from circuitpress.render.html import Theme

    (tmp_path / "circuitpress.toml").write_text('[site]\ntitle = "S"\n')
    ref = UnitRef("m", "conv2", ((5, 1.0),))
    services = Services(unit_page_requests(ref), {ref})
    page = Theme(load_config(tmp_path)).render_template(
        "unit.html", unit_page_context(ref, services, [])
    )
    main = re.search(r'<figure class="cp-unit-vis-main">\s*<img([^>]*)>', page)
    negative = re.search(r'<figure class="cp-unit-vis-negative">\s*<img([^>]*)>', page)
    assert main and negative
    size = re.compile(r'width="(\d+)" height="(\d+)"')
    assert size.search(main.group(1)).groups() == size.search(negative.group(1)).groups()  # type: ignore[union-attr]
    assert "cp-pixelated" in main.group(1) and "cp-pixelated" in negative.group(1)


def connections_result(ref: UnitRef, layer: str, channels: list[int]) -> Result:
    units = [{"channel": c, "norm": 1.0 / (i + 1), "sign": 1} for i, c in enumerate(channels)]
    return Result(
        data={"layer": layer, "expanded": False, "units": units},
        arrays={"kernels": np.ones((len(channels), 3, 3), np.float32)},
    )


def test_unit_page_plan_links_every_named_unit() -> None:
    """Mentioned units get full pages and the units they name neighbour pages (thumbnail and
    examples, no connection lists, so nothing two steps away is computed); each round asks
    only for the connections it needs to go on."""
    a = UnitRef("m", "conv2", ((3, 1.0),))
    results: dict[Request, Result] = {}
    plan = UnitPagePlan()
    requests, needed = plan.plan([a], results)
    assert set(unit_page_requests(a)) <= set(requests)
    assert needed == connection_requests(a)
    # The connections arrive: conv1:0, conv1:1 feed a; a feeds conv3:4.
    inputs, outputs = connection_requests(a)
    results[inputs] = connections_result(a, "conv1", [0, 1])
    results[outputs] = connections_result(a, "conv3", [4])
    requests, needed = plan.plan([a], results)
    c0, c1, c4 = (
        UnitRef("m", "conv1", ((0, 1.0),)),
        UnitRef("m", "conv1", ((1, 1.0),)),
        UnitRef("m", "conv3", ((4, 1.0),)),
    )
    assert plan.fresh() == [c0, c1, c4]
    assert requests == [r for u in (c0, c1, c4) for r in neighbour_page_requests(u)]
    assert FeatureVisRequest(c0, negative=True) not in requests  # neighbour pages stay light
    assert not any(isinstance(r, type(inputs)) for r in requests)  # and list no connections
    assert needed == []
    assert plan.reached_from(c0) == [a] and plan.reached_from(a) == []
    assert plan.pages() == [c0, c1, a, c4]
    assert plan.plan([a], results) == ([], [])  # nothing new: the rounds end
    # A neighbour mentioned later by an article becomes a full page and names its own.
    requests, needed = plan.plan([a, c0], results)
    assert set(unit_page_requests(c0)) <= set(requests)
    assert set(needed) == set(connection_requests(c0))
    ins, outs = connection_requests(c0)
    results[ins] = connections_result(c0, "x", [])
    results[outs] = connections_result(c0, "conv2", [3, 9])
    plan.plan([a, c0], results)
    assert UnitRef("m", "conv2", ((9, 1.0),)) in plan.neighbours


def test_unit_page_links_and_thumbnails_for_every_connection() -> None:
    ref = UnitRef("m", "conv2", ((5, 1.0),))
    pages = {ref} | {UnitRef("m", "conv1", ((c, 1.0),)) for c in range(3)}
    services = Services(unit_page_requests(ref), pages)
    ctx = unit_page_context(ref, services, [], has_page=lambda u: u in pages)
    rows = ctx["inputs"]["units"] + ctx["outputs"]["units"]
    assert rows and all(r["url"] and r["thumb"] for r in rows)
    assert [r["norm"] for r in ctx["inputs"]["units"]] == ["1.00", "0.50", "0.33"]


def test_neighbour_page_shows_where_it_was_reached_from(tmp_path: Path) -> None:
    from circuitpress.config import load_config
    from circuitpress.render.html import Theme

    (tmp_path / "circuitpress.toml").write_text('[site]\ntitle = "S"\n')
    ref = UnitRef("m", "conv1", ((1, 1.0),))
    source = UnitRef("m", "conv2", ((5, 1.0),))
    services = Services(neighbour_page_requests(ref), {ref, source})
    context = unit_page_context(ref, services, [], reached_from=[source])
    assert context["negative"] == [] and context["diverse"] == [] and not context["pending"]
    page = Theme(load_config(tmp_path)).render_template("unit.html", context)
    assert "No article mentions this unit" in page
    assert 'href="/units/m/conv2/5/"' in page
    assert context["inputs"] is None and context["outputs"] is None
    assert "Strongest inputs" not in page and "[atlas]" in page


# --- tuning heat maps -------------------------------------------------------------------------


def test_heat_map_thumbnails_run_along_their_own_axis() -> None:
    values = [[float(i * 5 + j) for j in range(5)] for i in range(4)]
    rows = AxisStimuli("orientation (°)", [f"{a}°" for a in range(0, 180, 45)], ["r.png"] * 4)
    columns = AxisStimuli("frequency", [str(f) for f in range(5)], ["c.png"] * 5)
    svg = tuning_heatmap_svg(values, rows, columns)
    row_images = re.findall(
        r'<image class="cp-stimulus cp-stimulus-row"[^>]*x="([\d.]+)" y="([\d.]+)"', svg
    )
    col_images = re.findall(
        r'<image class="cp-stimulus cp-stimulus-column"[^>]*x="([\d.]+)" y="([\d.]+)"', svg
    )
    assert len(row_images) == 4 and len(col_images) == 5
    # Rows' stimuli in one column left of the grid, going down; columns' in one row below it.
    assert len({x for x, _ in row_images}) == 1
    assert [float(y) for _, y in row_images] == sorted(float(y) for _, y in row_images)
    assert len({y for _, y in col_images}) == 1
    assert [float(x) for x, _ in col_images] == sorted(float(x) for x, _ in col_images)
    cells = re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="34"', svg)
    assert len(cells) == 20
    grid_left = min(float(x) for x, _ in cells)
    grid_bottom = max(float(y) for _, y in cells) + 34
    assert all(float(x) < grid_left for x, _ in row_images)
    assert all(float(y) >= grid_bottom for _, y in col_images)


# --- chips ------------------------------------------------------------------------------------


def test_chips_show_their_model_when_the_page_names_several(markup: Markup) -> None:
    html, _ = render(markup, "Compare {unit}`a/conv1:3` with {unit}`b/conv1:3`.\n")
    chips = re.findall(r'<span class="cp-unit"[^>]*>.*?</a>', html)
    assert len(chips) == 2
    assert '<span class="cp-unit-model">a</span>' in chips[0]
    assert '<span class="cp-unit-model">b</span>' in chips[1]
    one, _ = render(markup, "Only {unit}`a/conv1:3` and {unit}`a/conv1:4`.\n")
    assert "cp-unit-model" not in one


def test_a_figure_of_another_model_labels_the_chips_too(markup: Markup) -> None:
    html, _ = render(markup, "See {unit}`a/conv1:3`.\n\n:::{feature} b/conv1:2\n:::\n")
    assert '<span class="cp-unit-model">a</span>' in html
