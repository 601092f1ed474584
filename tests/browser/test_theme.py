"""The theme's figures in Debian's Chromium: colour-bar labels and machine captions keep their
contrast in dark mode, the circuit diagram stays legible on a 390 px phone, hover cards near the
window's bottom stay inside it, and no page asks for a file the site does not have (the favicon).

The site is built by `circuitpress build` (templates, theme assets, favicon as a reader gets
them); the figures in its article are the {weights}, {circuit} and {unit} HTML their directives
render from made-up results (tests/directives' stand-ins), with real PNG thumbnails: a real
analysis of a circuit with six inputs takes minutes (unit pages of every unit it reaches).
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from circuitpress.cli import cli
from circuitpress.directives.circuits import CircuitDirective, WeightsDirective
from circuitpress.directives.features import unit_chip
from circuitpress.render.images import to_png
from circuitpress.requests import (
    ExamplesRequest,
    ModelInfoRequest,
    Result,
    TopConnectionsRequest,
    UnitRef,
    WeightsRequest,
)
from circuitpress.structure.units import unit_page_requests

from ..conftest import PROSE_CONFIG, write_site
from ..directives.circuit_stubs import Ctx, make_call, model_info
from ..directives.test_features import Services

pytestmark = pytest.mark.browser


ARTICLE = """\
---
title: The theme's figures
published: 2024-05-06
---

A first paragraph.

FIGURES

A paragraph between the figures and the last chip, long enough to wrap on a phone: the chip
below is the last thing before the appendix.

LASTCHIP
"""

INPUTS = 6  # the wide diagram is 566 px: too wide for a phone's 358 px column at 85 %


def toy(layer: str, channel: int) -> UnitRef:
    return UnitRef("toy", layer, ((channel, 1.0),))


def weights_html() -> str:
    d = WeightsDirective()
    ctx = Ctx()
    call = make_call(d, "toy/conv1:3 -> conv2:1", body="The kernel from conv1:3 to conv2:1.")
    d.plan(call, ctx)
    d.follow_up(call, ctx)
    kernel = np.array([[0.5, -1.0, 0.2], [0.25, 0.0, -0.4], [0.9, -0.1, 0.3]], np.float32)
    ctx.results[WeightsRequest(toy("conv1", 3), toy("conv2", 1))] = Result(
        data={"expanded": False, "norm": 1.6, "max_abs": 1.0, "path": ["conv1", "conv2"]},
        arrays={"kernel": kernel},
    )
    return d.render(call, ctx)


def circuit_html() -> str:
    d = CircuitDirective()
    facts = model_info(("conv1", "Conv2d", 8), ("conv2", "Conv2d", 8))
    ctx = Ctx(results={ModelInfoRequest("toy"): facts})
    call = make_call(d, "conv2:1", {"inputs": str(INPUTS)}, body="The circuit of conv2:1.")
    d.plan(call, ctx)
    rng = np.random.default_rng(0)
    ctx.results[TopConnectionsRequest(toy("conv2", 1), n=INPUTS)] = Result(
        data={
            "layer": "conv1",
            "expanded": False,
            "units": [
                {"channel": c, "norm": 6.0 - c, "sign": 1 if c % 3 else -1} for c in range(INPUTS)
            ],
        },
        arrays={"kernels": rng.standard_normal((INPUTS, 3, 3)).astype(np.float32)},
    )
    for ref in [toy("conv2", 1)] + [toy("conv1", c) for c in range(INPUTS)]:
        ctx.results[ExamplesRequest(ref)] = Result(
            arrays={"images": rng.random((4, 16, 16, 3)).astype(np.float32)}
        )
    d.follow_up(call, ctx)
    return d.render(call, ctx)


def chip_html(channel: int) -> str:
    ref = UnitRef("m", "conv1", ((channel, 1.0),))
    return unit_chip(ref, Services(unit_page_requests(ref), {ref}))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    site = write_site(
        tmp_path_factory.mktemp("theme") / "site",
        {"circuitpress.toml": PROSE_CONFIG, "content/look.md": ARTICLE},
    )
    result = CliRunner().invoke(cli, ["build", str(site), "--quiet"])
    assert result.exit_code == 0, result.output
    out = site / "_site"
    page = out / "look" / "index.html"
    html = page.read_text(encoding="utf-8")
    figures = f"<p>Unit {chip_html(3)} near the top.</p>{weights_html()}{circuit_html()}"
    html, n = re.subn(r"<p[^>]*>FIGURES</p>", lambda _: figures, html)
    html, m = re.subn(
        r"<p[^>]*>LASTCHIP</p>", lambda _: f"<p>The last chip: {chip_html(5)}.</p>", html
    )
    assert n == m == 1
    page.write_text(html, encoding="utf-8")
    # Every picture the figures show, as a real PNG (their layout depends on it).
    rng = np.random.default_rng(1)
    pictures = re.findall(r'(?:src|href)="/(assets/[^"?]+\.png)"', html)
    for examples in re.findall(r'data-examples="([^"]*)"', html):
        pictures += [u.lstrip("/") for u in examples.split()]
    for src in set(pictures):
        (out / src).parent.mkdir(parents=True, exist_ok=True)
        (out / src).write_bytes(to_png(rng.random((64, 64, 3)).astype(np.float32)))
    handler = functools.partial(_Quiet, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


# --- colour contrast (WCAG 2) ------------------------------------------------------------------

RGBA = re.compile(r"rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)")

# The colour an element is painted in (`fill` for SVG text, `stroke` for lines, else `color`)
# and the first opaque background-color behind it, both as getComputedStyle reports them.
PAINT = """(el, prop) => {
  let bg = "rgba(0, 0, 0, 0)";
  for (let e = el; e; e = e.parentElement) {
    const c = getComputedStyle(e).backgroundColor;
    if (c !== "rgba(0, 0, 0, 0)" && c !== "transparent") { bg = c; break; }
  }
  if (bg === "rgba(0, 0, 0, 0)") bg = getComputedStyle(document.documentElement).backgroundColor;
  return [getComputedStyle(el)[prop], bg];
}"""


def _rgba(text: str) -> tuple[float, float, float, float]:
    match = RGBA.match(text)
    assert match, f"not an rgb() colour: {text!r}"
    r, g, b, a = match.groups()
    return float(r), float(g), float(b), float(a) if a is not None else 1.0


def _luminance(rgb: tuple[float, float, float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = map(channel, rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: str, bg: str) -> float:
    """WCAG contrast ratio of `fg` (its alpha composited over `bg`) against opaque `bg`."""
    *f, alpha = _rgba(fg)
    *b, _ = _rgba(bg)
    mixed = tuple(x * alpha + y * (1 - alpha) for x, y in zip(f, b, strict=True))
    hi, lo = sorted((_luminance(mixed), _luminance((b[0], b[1], b[2]))), reverse=True)  # type: ignore[arg-type]
    return (hi + 0.05) / (lo + 0.05)


def ratios(page: Any, selector: str, prop: str) -> list[tuple[float, str, str]]:
    out = []
    for el in page.query_selector_all(selector):
        fg, bg = el.evaluate(PAINT, prop)
        out.append((contrast(fg, bg), fg, bg))
    return out


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_colour_bar_labels_and_captions_keep_their_contrast(browser, served, scheme) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(color_scheme=scheme, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(served + "look/")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    dark = _luminance(_rgba(background)[:3]) < 0.05
    assert dark == (scheme == "dark"), background  # the theme followed the colour scheme

    labels = ratios(page, "svg.cp-colorbar text", "fill")
    assert len(labels) == 3, "the weights figure's colour bar has three tick labels"
    assert min(labels)[0] >= 4.5, labels
    captions = ratios(
        page, ".cp-weights-meta, .cp-circuit-legend, figcaption, .cp-node-label", "color"
    )
    assert len(captions) >= 4
    assert min(captions)[0] >= 4.5, min(captions)
    # Edges are graphics: WCAG asks 3:1 of them against what they are drawn on.
    edges = ratios(page, ".cp-circuit-wide .cp-edge-line", "stroke")
    assert len(edges) == 6 and min(edges)[0] >= 3.0, min(edges)
    context.close()


# --- the circuit diagram on a phone ---------------------------------------------------------

VISIBLE_DIAGRAM = """() => {
  const svgs = [...document.querySelectorAll(".cp-circuit-diagram svg")];
  const shown = svgs.filter(s => getComputedStyle(s).display !== "none");
  return shown.map(s => ({
    cls: s.getAttribute("class"),
    width: s.getBoundingClientRect().width,
    labels: [...s.querySelectorAll(".cp-node-label")].map(t => t.getBoundingClientRect().height),
    thumbs: [...s.querySelectorAll(".cp-node image")].map(i => i.getBoundingClientRect().width),
  }));
}"""


@pytest.mark.parametrize("javascript", [True, False])
def test_circuit_diagram_stays_legible_at_390_px(browser, served, javascript) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, java_script_enabled=javascript
    )
    page = context.new_page()
    page.goto(served + "look/")
    shown = page.evaluate(VISIBLE_DIAGRAM)
    assert len(shown) == 1, shown
    diagram = shown[0]
    assert "cp-circuit-tall" in diagram["cls"], "a phone gets the tall layout"
    assert len(diagram["labels"]) == INPUTS + 1
    assert min(diagram["labels"]) >= 10, diagram["labels"]
    assert min(diagram["thumbs"]) >= 50, diagram["thumbs"]
    # It fits the phone's column: nothing to scroll sideways.
    assert diagram["width"] <= 390 - 16
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


def test_circuit_diagram_on_a_desktop_is_the_wide_one(browser, served) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(served + "look/")
    (diagram,) = page.evaluate(VISIBLE_DIAGRAM)
    assert "cp-circuit-wide" in diagram["cls"]
    assert min(diagram["labels"]) >= 10 and min(diagram["thumbs"]) >= 54
    context.close()


@pytest.mark.parametrize("javascript", [True, False])
def test_circuit_diagram_in_a_tablet_column(browser, served, javascript) -> None:  # type: ignore[no-untyped-def]
    # 900 px: the text column is 472 px, narrower than the wide layout at 85 % (481 px). The
    # script measures the column and shows the tall layout; without it the wide one scrolls.
    context = browser.new_context(
        viewport={"width": 900, "height": 900}, java_script_enabled=javascript
    )
    page = context.new_page()
    page.goto(served + "look/")
    (diagram,) = page.evaluate(VISIBLE_DIAGRAM)
    assert ("cp-circuit-tall" if javascript else "cp-circuit-wide") in diagram["cls"]
    assert min(diagram["labels"]) >= 10 and min(diagram["thumbs"]) >= 54
    context.close()


# --- hover cards near the window's bottom -----------------------------------------------------


def _inside(box: dict[str, float], width: float, height: float) -> bool:
    return (
        box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= width
        and box["y"] + box["height"] <= height
    )


@pytest.mark.parametrize("width", [1280, 390])
def test_unit_card_near_the_bottom_opens_inside_the_window(browser, served, width) -> None:  # type: ignore[no-untyped-def]
    height = 700
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(served + "look/")
    unit = page.locator(".cp-body .cp-unit").last
    # The chip's bottom 10 px above the window's: a card below it would be cut off.
    page.evaluate(
        "([y, h]) => window.scrollBy(0, y - h + 10)",
        [unit.evaluate("e => e.getBoundingClientRect().bottom"), height],
    )
    chip = unit.bounding_box()
    assert chip and height - 40 < chip["y"] + chip["height"] <= height
    unit.hover()
    card = unit.locator(".cp-unit-card")
    card.wait_for(state="visible", timeout=5000)
    box = card.bounding_box()
    assert box and _inside(box, width, height), (box, chip)
    assert box["y"] + box["height"] <= chip["y"] + 1, "it opened upward"
    context.close()


OVERLAPS = """(card) => {
  const c = card.getBoundingClientRect();
  const shown = [...document.querySelectorAll(".cp-circuit-diagram svg")]
    .find(s => getComputedStyle(s).display !== "none");
  return [...shown.querySelectorAll(".cp-node-frame")].map(f => {
    const r = f.getBoundingClientRect();
    const w = Math.min(c.right, r.right) - Math.max(c.left, r.left);
    const h = Math.min(c.bottom, r.bottom) - Math.max(c.top, r.top);
    return w > 0 && h > 0 ? w * h : 0;
  });
}"""


@pytest.mark.parametrize("width", [1280, 390])
def test_circuit_node_card_stays_inside_and_off_the_other_units(browser, served, width) -> None:  # type: ignore[no-untyped-def]
    height = 700
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(served + "look/")
    diagram = ".cp-circuit-diagram svg:visible"
    root = page.locator(f'{diagram} .cp-node[data-level="0"] image')
    # The output unit at the window's bottom edge.
    page.evaluate(
        "([y, h]) => window.scrollBy(0, y - h + 30)",
        [root.evaluate("e => e.getBoundingClientRect().bottom"), height],
    )
    root.hover()
    card = page.locator(".cp-circuit-card")
    card.wait_for(state="visible", timeout=5000)
    assert card.get_attribute("data-showing") == "node"
    box = card.bounding_box()
    assert box and _inside(box, width, height), box
    assert sum(card.evaluate(OVERLAPS)) == 0, "the card covers another unit"
    context.close()


# --- no missing files --------------------------------------------------------------------------


def test_no_page_asks_for_a_missing_file(browser, served) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context()
    page = context.new_page()
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
    page.on("requestfailed", lambda r: missing.append(r.url))
    for path in ("", "look/", "404.html"):
        page.goto(served + path)
        page.wait_for_load_state("networkidle")
        icon = page.get_attribute('link[rel="icon"]', "href")
        assert icon and "favicon.svg" in icon
        response = context.request.get(served.rstrip("/") + icon)
        assert response.status == 200 and "svg" in response.headers["content-type"]
    assert missing == []
    context.close()
