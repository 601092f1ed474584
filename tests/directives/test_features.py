"""`{feature}`, `{examples}`, `{unit}` and unit pages, through the real Markup parser and
renderer, with results made up here (no torch): HTML, escaping, requests, option errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from circuitpress.build.plan import PagePlanner
from circuitpress.config import SiteConfig
from circuitpress.directives.features import unit_chip
from circuitpress.errors import UserError
from circuitpress.extensions import default_registry
from circuitpress.markup.page import Markup
from circuitpress.requests import (
    ExamplesRequest,
    FeatureVisRequest,
    Request,
    Result,
    TopConnectionsRequest,
    UnitRef,
    unit_page_path,
)
from circuitpress.structure.units import thumbnail_request, unit_page_context, unit_page_requests

from ..conftest import chromium

FRONT = "---\ntitle: T\nmodel: m\n---\n\n"


def fake_result(request: Request) -> Result:
    """Plausible results of the right shapes, with values that identify the request."""
    rng = np.random.default_rng(len(request.key()))
    if isinstance(request, FeatureVisRequest):
        n = request.diversity
        size = request.size or 64  # 0: the model's own size, 64 px for the zoo's models
        return Result(
            data={"activation": [1.5 + i for i in range(n)], "loss_start": 0.0, "loss_end": -1.0},
            arrays={"images": rng.random((n, size, size, 3), dtype=np.float32)},
        )
    if isinstance(request, ExamplesRequest):
        k = request.k
        return Result(
            data={
                "values": [9.0 - i for i in range(k)],
                "indices": list(range(100, 100 + k)),
                "boxes": [[0, 0, 16, 16]] * k,
            },
            arrays={
                "images": rng.random((k, 16, 16, 3), dtype=np.float32),
                "heatmaps": rng.random((k, 16, 16), dtype=np.float32),
            },
        )
    if isinstance(request, TopConnectionsRequest):
        units = [
            {"channel": c, "norm": 1.0 / (c + 1), "sign": 1 if c % 2 else -1} for c in range(3)
        ]
        return Result(
            data={"layer": "conv1", "expanded": False, "units": units},
            arrays={"kernels": rng.standard_normal((3, 3, 3)).astype(np.float32)},
        )
    raise AssertionError(request)


class Services:
    file = "content/a.md"

    def __init__(self, planned: list[Request], pages: set[UnitRef] = frozenset()) -> None:
        self.planned = set(planned)
        self.pages = set(pages)
        self.images: list[tuple[str, tuple[int, ...]]] = []

    def result(self, request: Request) -> Result:
        if request not in self.planned:
            raise RuntimeError(f"no result for {request.key()}: it was not planned")
        return fake_result(request)

    def image_url(self, array: Any, *, name: str = "fig") -> str:
        self.images.append((name, np.asarray(array).shape))
        return f"/assets/{name}-{len(self.images)}.png"

    def asset_url(self, data: bytes, ext: str, *, name: str = "asset") -> str:
        return f"/assets/{name}.{ext}"

    def url(self, site_path: str) -> str:
        return "/" + site_path

    def unit_url(self, ref: UnitRef) -> str | None:
        path = unit_page_path(ref)
        return "/" + path if path else None

    def thumbnail_url(self, ref: UnitRef) -> str | None:
        channel = ref.channel_ref() or ref
        return (
            f"/assets/thumb-{channel.layer}-{channel.unit_text}.png"
            if channel in self.pages or ref.is_direction
            else None
        )

    def warn(self, message: str, line: int, hint: str | None = None) -> None:
        raise AssertionError(message)


@pytest.fixture
def markup(tmp_path: Path) -> Markup:
    config = SiteConfig(root=tmp_path, path=tmp_path / "circuitpress.toml")
    return Markup(config, default_registry())


def build(markup: Markup, body: str) -> tuple[str, PagePlanner, Services]:
    planner = PagePlanner("content/a.md", "m")
    page = markup.parse("content/a.md", FRONT + body, lambda meta: planner)
    pages = {m.ref.channel_ref() for m in planner.mentions if m.ref.channel_ref()}
    planned = list(planner.requests) + [r for ref in pages for r in unit_page_requests(ref)]
    services = Services(planned, pages)
    return markup.render(page, services).body_html, planner, services


def test_feature_figure(markup: Markup) -> None:
    html, planner, services = build(
        markup,
        ":::{feature} conv2:7\n:steps: 32\n:size: 48\n:diversity: 2\nA *curve* detector.\n:::\n",
    )
    assert planner.requests == [
        FeatureVisRequest(UnitRef("m", "conv2", ((7, 1.0),)), size=48, steps=32, diversity=2)
    ]
    assert '<figure class="cp-feature"' in html
    imgs = re.findall(r"<img [^>]*>", html)
    assert len(imgs) == 2
    assert all(
        # 48 px shown at 4x (a whole multiple of at least 192 px), crisp
        'width="192" height="192"' in i
        and 'alt="feature visualization of m/conv2:7' in i
        and "cp-pixelated" in i
        for i in imgs
    )
    assert "<em>curve</em>" in html and "<figcaption" in html
    assert 'href="/units/m/conv2/7/"' in html
    assert services.images[0][1] == (48, 48, 3)


def test_negative_direction_is_escaped_and_unlinked(markup: Markup) -> None:
    html, planner, _ = build(markup, ":::{feature} conv2:0.5*1-2*3\n:negative:\n:::\n")
    (request,) = planner.requests
    assert request.negative and request.ref.terms == ((1, 0.5), (3, -2.0))
    assert "units/" not in html  # directions have no unit page
    assert "negative" in html and "m/conv2:0.5*1-2*3" in html


def test_objective_option_plans_lucents_plain_mean(markup: Markup) -> None:
    """`:objective: mean` asks for lucent's objective: a request of its own (another cache
    key) in the same feature-vis group as the default one; the caption says so; a unit page
    that shows the article's figure keeps its objective in every variant."""
    from circuitpress.build.cache import cache_key
    from circuitpress.structure.units import unit_figure_aliases

    html, planner, _ = build(markup, ":::{feature} conv2:7\n:objective: mean\n:steps: 32\n:::\n")
    (request,) = planner.requests
    ref = UnitRef("m", "conv2", ((7, 1.0),))
    assert request == FeatureVisRequest(ref, steps=32, objective="mean")
    default = FeatureVisRequest(ref, steps=32)
    assert default.objective == "positive"
    assert request.key() != default.key()
    assert cache_key(request, ["fp"]) != cache_key(default, ["fp"])
    assert request.group_key() == default.group_key() == thumbnail_request(ref).group_key()
    assert "maximising the plain mean" in html
    html, _, _ = build(markup, ":::{feature} conv2:7\n:objective: positive\n:::\n")
    assert "plain mean" not in html
    aliases = unit_figure_aliases([request])
    assert aliases and all(figure.objective == "mean" for figure in aliases.values())
    with pytest.raises(ValueError, match="unknown feature-vis objective 'max'"):
        FeatureVisRequest(ref, objective="max")
    # Minimised, it says so; a neuron maximises its own value whatever the objective: the
    # request (and its cache entry) is the default one, and the caption claims no plain mean.
    html, _, _ = build(markup, ":::{feature} conv2:7\n:objective: mean\n:negative: true\n:::\n")
    assert "minimising the plain mean" in html
    html, planner, _ = build(markup, ":::{feature} conv2:7@1,1\n:objective: mean\n:::\n")
    (neuron,) = planner.requests
    assert neuron.objective == "positive" and "plain mean" not in html


def test_examples_figure(markup: Markup) -> None:
    html, planner, services = build(markup, "```{examples} conv3:4@2,1\n:k: 5\n:crop: false\n```\n")
    assert planner.requests == [
        ExamplesRequest(UnitRef("m", "conv3", ((4, 1.0),), (2, 1)), k=5, crop=False)
    ]
    assert html.count('class="cp-example"') == 5
    assert ">9.00<" in html and ">5.00<" in html  # the values, with shared decimals
    assert 'alt="dataset example 100 of m/conv3:4@2,1' in html
    assert all(shape == (16, 16, 3) for _, shape in services.images)  # overlays, one per example


def test_unit_chip_and_card(markup: Markup) -> None:
    html, planner, _ = build(markup, "See {unit}`conv1:3`, and {unit}`conv1:1+2`.\n")
    chip, direction = re.findall(r'<span class="cp-unit".*?</span></span></span>', html)
    assert 'href="/units/m/conv1/3/"' in chip and 'class="cp-unit-thumb"' in chip
    assert 'class="cp-unit-card"' in chip and chip.count('class="cp-unit-card-example"') == 6
    assert "conv1:3" in chip
    assert "href" not in direction and 'tabindex="0"' in direction  # focusable, not a link
    assert thumbnail_request(UnitRef("m", "conv1", ((3, 1.0),))) in planner.requests


@pytest.mark.parametrize(
    "option, value, words",
    [
        ("steps", "0", "must be from 1 to 4096"),
        ("steps", "many", "expected a whole number"),
        ("size", "8", "must be from 16"),
        ("lr", "3", "must be from 0.0001"),
        ("diversity", "99", "must be from 1 to 16"),
        ("negative", "perhaps", "expected true or false"),
        ("objective", "max", "unknown value 'max' (expected one of: mean, positive)"),
        ("objective", "means", "unknown value 'means' (did you mean 'mean'?)"),
        ("colour", "red", "unknown option ':colour:'"),
    ],
)
def test_bad_options_name_file_line_and_option(
    markup: Markup, option: str, value: str, words: str
) -> None:
    body = f"Text.\n\n:::{{feature}} conv1:2\n:seed: 3\n:{option}: {value}\n:::\n"
    with pytest.raises(UserError) as info:
        build(markup, body)
    message = info.value.format()
    option_line = FRONT.count("\n") + 5
    assert message.startswith(f"content/a.md:{option_line}: ")
    assert f":{option}:" in message and words in message
    assert "\n" not in message


def test_examples_k_out_of_range(markup: Markup) -> None:
    with pytest.raises(
        UserError, match=r"content/a.md:\d+: bad value for option ':k:'.*from 1 to 64"
    ):
        build(markup, ":::{examples} conv1:2\n:k: 500\n:::\n")


def test_unit_page_requests_and_context() -> None:
    ref = UnitRef("m", "conv2", ((5, 1.0),))
    requests = unit_page_requests(ref)
    kinds = [
        (type(r).__name__, getattr(r, "negative", None), getattr(r, "diversity", None))
        for r in requests
    ]
    assert kinds[:3] == [
        ("FeatureVisRequest", False, 1),
        ("FeatureVisRequest", True, 1),
        ("FeatureVisRequest", False, 4),
    ]
    assert requests[0] == thumbnail_request(ref)
    assert requests[3] == ExamplesRequest(ref, k=12)
    assert {(r.direction, r.n) for r in requests[4:]} == {("inputs", 8), ("outputs", 8)}  # type: ignore[attr-defined]

    linked = UnitRef("m", "conv1", ((1, 1.0),))
    services = Services(requests, {ref, linked})
    backlinks = [{"title": "Curves", "url": "/curves/", "file": "content/curves.md"}]
    ctx = unit_page_context(ref, services, backlinks)
    assert len(ctx["positive"]) == 1 and len(ctx["negative"]) == 1 and len(ctx["diverse"]) == 4
    assert len(ctx["examples"]) == 12
    inputs = ctx["inputs"]["units"]
    assert [u["name"] for u in inputs] == ["conv1:0", "conv1:1", "conv1:2"]
    assert [u["url"] for u in inputs] == [None, "/units/m/conv1/1/", None]  # only units with pages
    assert inputs[0]["sign"] == "inhibits" and inputs[1]["sign"] == "excites"
    assert inputs[0]["kernel_size"] == (24, 24)
    assert ctx["backlinks"] == backlinks


def test_unit_template_renders(tmp_path: Path) -> None:
    from circuitpress.render.html import Theme

    (tmp_path / "circuitpress.toml").write_text('[site]\ntitle = "S"\n')
    from circuitpress.config import load_config

    theme = Theme(load_config(tmp_path))
    ref = UnitRef("m", "conv2", ((5, 1.0),))
    services = Services(unit_page_requests(ref), {ref})
    html = theme.render_template(
        "unit.html",
        unit_page_context(
            ref, services, [{"title": "Curves &amp; co", "url": "/curves/", "file": "x"}]
        ),
    )
    assert "<h1>conv2:5</h1>" in html
    assert html.count('class="cp-example"') == 12
    assert 'href="/curves/"' in html and "Strongest inputs" in html and "Mentioned in" in html
    assert "&amp;amp;" in html  # template data is escaped


# --- in a real browser ------------------------------------------------------------------------

ASSETS = Path(__file__).resolve().parents[2] / "themes/distill/assets"


def page_with_chip(folder: Path) -> Path:
    ref = UnitRef("m", "conv1", ((3, 1.0),))
    chip = unit_chip(ref, Services(unit_page_requests(ref), {ref}))
    # Images are not on disk: only layout and visibility matter here.
    html = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<style>{(ASSETS / 'css/units.css').read_text()}</style></head>"
        f"<body><p style='margin:40px'>A unit: {chip} in a sentence.</p>"
        f"<script>{(ASSETS / 'js/units.js').read_text()}</script></body></html>"
    )
    path = folder / "chip.html"
    path.write_text(html)
    return path


@pytest.fixture(params=[True, False], ids=["js", "no-js"])
def chip_page(request: pytest.FixtureRequest) -> Iterator[object]:
    with chromium() as browser:
        yield browser.new_page(java_script_enabled=request.param)


@pytest.mark.browser
def test_hover_shows_the_card(chip_page, tmp_path: Path) -> None:
    chip_page.goto(page_with_chip(tmp_path).as_uri())
    card = chip_page.locator(".cp-unit-card")
    assert not card.is_visible()
    assert chip_page.locator("a.cp-unit-chip").get_attribute("href") == "/units/m/conv1/3/"
    chip_page.hover(".cp-unit-chip")
    card.wait_for(state="visible", timeout=3000)
    assert "m/conv1:3" in card.inner_text()
    chip_page.mouse.move(0, 0)
    card.wait_for(state="hidden", timeout=3000)


@pytest.mark.browser
def test_keyboard_focus_shows_and_escape_hides(chip_page, tmp_path: Path) -> None:
    chip_page.goto(page_with_chip(tmp_path).as_uri())
    chip_page.focus("a.cp-unit-chip")
    card = chip_page.locator(".cp-unit-card")
    card.wait_for(state="visible", timeout=3000)
    if chip_page.evaluate("document.documentElement.classList.contains('cp-js-units')"):
        chip_page.keyboard.press("Escape")
        card.wait_for(state="hidden", timeout=3000)
