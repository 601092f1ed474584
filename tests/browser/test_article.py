"""A built article in Debian's Chromium: citation and footnote hover cards, and the page with JS
off."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from circuitpress.cli import cli
from tests.conftest import serve_folder

pytestmark = pytest.mark.browser


CONFIG = """\
[site]
title = "Browser test"
base_url = "/sub/"
"""

BIB = """\
@article{olah2020zoom,
  author = {Olah, Chris and Cammarata, Nick},
  title = {Zoom In: An Introduction to Circuits},
  journal = {Distill},
  year = {2020}
}
"""

ARTICLE = """\
---
title: Hover cards
authors: [Ada Lovelace]
published: 2024-05-06
---

Features are the unit of study {cite}`olah2020zoom`, and curves matter.[^c]

[^c]: Curve detectors respond to curves.
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The built site behind http://127.0.0.1:PORT/sub/ (its base path), served from a thread."""
    site = tmp_path_factory.mktemp("browser") / "site"
    (site / "content").mkdir(parents=True)
    (site / "circuitpress.toml").write_text(CONFIG)
    (site / "references.bib").write_text(BIB)
    (site / "content" / "hover.md").write_text(ARTICLE)
    result = CliRunner().invoke(cli, ["build", str(site), "--quiet"])
    assert result.exit_code == 0, result.output
    root = site / "www"
    shutil.copytree(site / "_site", root / "sub")
    with serve_folder(root) as url:
        yield url + "sub/"


def test_hovering_a_citation_shows_its_reference(served, browser):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    failed: list[str] = []
    page.on("requestfailed", lambda req: failed.append(req.url))
    page.goto(served + "hover/")
    card = page.locator(".cp-card")
    page.hover("a.cp-cite")
    card.wait_for(state="visible", timeout=5000)
    assert "Zoom In: An Introduction to Circuits" in card.inner_text()
    box, anchor = card.bounding_box(), page.locator("a.cp-cite").bounding_box()
    assert box and anchor and abs(box["y"] - (anchor["y"] + anchor["height"])) < 60  # near the link
    page.mouse.move(0, 0)
    card.wait_for(state="hidden", timeout=5000)
    assert errors == [] and failed == []
    page.close()


def test_footnote_card_on_keyboard_focus_and_escape(served, browser):
    page = browser.new_page()
    page.goto(served + "hover/")
    page.focus("sup.cp-fn-ref a")
    card = page.locator(".cp-card")
    card.wait_for(state="visible", timeout=5000)
    assert "Curve detectors respond to curves." in card.inner_text()
    assert "↩" not in card.inner_text()
    assert page.get_attribute("sup.cp-fn-ref a", "aria-describedby") == "cp-hover-card"
    page.keyboard.press("Escape")
    card.wait_for(state="hidden", timeout=5000)
    page.close()


def test_without_javascript_links_jump_to_the_entries(served, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(served + "hover/")
    assert page.locator(".cp-card").count() == 0
    page.click("a.cp-cite")
    assert page.url.endswith("#ref-olah2020zoom")
    assert "Zoom In" in page.locator("li:target").inner_text()
    # The stylesheet loaded from under the base path: the body is laid out in Distill's grid.
    assert page.eval_on_selector(".cp-body", "e => getComputedStyle(e).display") == "grid"
    context.close()
