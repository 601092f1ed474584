"""The circuit diagram in Debian's Chromium: edge hover shows the kernel, nodes open unit pages
by click and by keyboard, and with JS off every node is still a plain link."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from circuitpress.directives.circuits import CircuitDirective
from circuitpress.requests import ExamplesRequest, Result, TopConnectionsRequest, UnitRef
from tests.conftest import serve_folder

from .circuit_stubs import Ctx, make_call

pytestmark = pytest.mark.browser

ASSETS = Path(__file__).resolve().parents[2] / "themes" / "distill" / "assets"


def unit(layer: str, channel: int) -> UnitRef:
    return UnitRef("toy", layer, ((channel, 1.0),))


def circuit_html() -> str:
    d = CircuitDirective()
    ctx = Ctx()
    call = make_call(d, "conv2:1", {"inputs": "3"})
    d.plan(call, ctx)
    kernels = np.stack(
        [
            np.arange(9, dtype=np.float32).reshape(3, 3) - 4,
            np.eye(3, dtype=np.float32),
            -np.ones((3, 3), np.float32),
        ]
    )
    ctx.results[TopConnectionsRequest(unit("conv2", 1), n=3)] = Result(
        data={
            "layer": "conv1",
            "expanded": False,
            "units": [
                {"channel": 2, "norm": 7.7, "sign": -1},
                {"channel": 0, "norm": 1.7, "sign": 1},
                {"channel": 3, "norm": 3.0, "sign": -1},
            ],
        },
        arrays={"kernels": kernels},
    )
    for c in (1, 2, 0, 3):
        layer = "conv2" if c == 1 else "conv1"
        ctx.results[ExamplesRequest(unit(layer, c))] = Result(
            arrays={"images": np.zeros((4, 8, 8, 3), np.float32)}
        )
    return d.render(call, ctx)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("circuit")
    (root / "assets").mkdir()
    for name in ("thumb-conv1-0", "thumb-conv1-2", "thumb-conv1-3", "thumb-conv2-1"):
        (root / "assets" / f"{name}.png").write_bytes(b"")
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>circuit</title>"
        f"<style>{(ASSETS / 'css' / 'circuits.css').read_text()}</style></head><body>"
        f"{circuit_html()}<script>{(ASSETS / 'js' / 'circuit.js').read_text()}</script>"
        "</body></html>"
    )
    (root / "index.html").write_text(page, encoding="utf-8")
    for layer, c in (("conv2", 1), ("conv1", 2), ("conv1", 0), ("conv1", 3)):
        folder = root / "units" / "toy" / layer / str(c)
        folder.mkdir(parents=True)
        (folder / "index.html").write_text(
            f"<!doctype html><title>{layer}:{c}</title><h1>unit {layer}:{c}</h1>"
        )
    with serve_folder(root) as url:
        yield url


def test_hovering_an_edge_shows_its_kernel(browser, served) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(served)
    card = page.locator(".cp-circuit-card")
    assert card.is_hidden()
    page.hover('.cp-edge[data-src="toy/conv1:2"] .cp-edge-line')
    assert card.is_visible()
    assert card.get_attribute("data-showing") == "edge"
    assert "toy/conv1:2 → toy/conv2:1" in card.inner_text()
    cells = card.locator(".cp-card-kernel span")
    assert cells.count() == 9
    # The figure's one symmetric scale is the largest |w| of its kernels (4): -4 is full blue.
    assert cells.nth(0).evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(33, 102, 172)"
    assert cells.nth(8).evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(178, 24, 43)"
    page.mouse.move(0, 0)
    assert card.is_hidden()
    page.close()


def test_hovering_a_node_shows_name_and_examples(browser, served) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(served)
    page.hover('.cp-node[data-node="toy/conv1:3"] image')
    card = page.locator(".cp-circuit-card")
    assert card.is_visible() and "toy/conv1:3" in card.inner_text()
    assert card.locator(".cp-card-examples img").count() == 4
    page.close()


def test_clicking_a_node_opens_its_unit_page(browser, served) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(served)
    page.click('.cp-node[data-node="toy/conv1:0"] image')
    page.wait_for_url("**/units/toy/conv1/0/")
    assert page.locator("h1").inner_text() == "unit conv1:0"
    page.close()


def test_the_diagram_is_usable_by_keyboard(browser, served) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(served)
    seen = []
    for _ in range(12):
        page.keyboard.press("Tab")
        kind, name = page.evaluate(
            "[document.activeElement.classList.contains('cp-edge') ? 'edge' : 'node',"
            " document.activeElement.getAttribute('data-node') ||"
            " document.activeElement.getAttribute('data-src')]"
        )
        seen.append((kind, name))
        if kind == "edge":
            assert page.locator(".cp-circuit-card").get_attribute("data-showing") == "edge"
        if (kind, name) == ("node", "toy/conv1:3"):
            break
    assert ("edge", "toy/conv1:2") in seen and ("node", "toy/conv1:0") in seen
    assert seen[-1] == ("node", "toy/conv1:3")
    card = page.locator(".cp-circuit-card")
    assert card.is_visible() and card.get_attribute("data-showing") == "node"
    page.keyboard.press("Enter")
    page.wait_for_url("**/units/toy/conv1/3/")
    page.close()


def test_without_javascript_nodes_are_plain_links(browser, served) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(served)
    hrefs = page.eval_on_selector_all("a.cp-node", "els => els.map(e => e.getAttribute('href'))")
    assert sorted(hrefs) == [
        "/units/toy/conv1/0/",
        "/units/toy/conv1/2/",
        "/units/toy/conv1/3/",
        "/units/toy/conv2/1/",
    ]
    page.click('.cp-node[data-node="toy/conv1:2"] image')
    page.wait_for_url("**/units/toy/conv1/2/")
    context.close()
