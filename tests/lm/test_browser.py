"""The language-model figures in Chromium: the attention hover, and every number readable with
JS off (the values are in the HTML, shading is inline)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from circuitpress.cli import cli
from tests.conftest import serve_folder
from tests.lm.conftest import CONFIG

pytestmark = pytest.mark.browser

PAGE = """\
---
title: Patterns
---

:::{attention} toy/blocks.1.attn:H0
:prompt: abcab abcab
:::

:::{heads} toy
:::

:::{examples} toy/blocks.0.mlp.hook_post:2
:k: 3
:::

:::{circuit} toy/blocks.1.attn:H3
:::
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[str]:
    site = tmp_path_factory.mktemp("lmb") / "site"
    (site / "content").mkdir(parents=True)
    (site / "circuitpress.toml").write_text(CONFIG.format(folder=tiny_model, extra=""))
    (site / "content" / "p.md").write_text(PAGE)
    result = CliRunner().invoke(cli, ["build", str(site), "--quiet", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    with serve_folder(site / "_site") as url:
        yield url


def test_hovering_a_query_token_marks_where_it_attends(served, browser):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(served + "p/")
    row = page.locator("table.cp-attention tbody tr").nth(7)
    row.hover()
    assert "cp-active" in (row.get_attribute("class") or "")
    marked = page.locator("table.cp-attention thead th.cp-attended")
    weights = [
        float(w)
        for w in row.locator("td[data-weight]").evaluate_all(
            "cells => cells.map(c => c.dataset.weight)"
        )
    ]
    assert marked.count() == sum(w >= 0.2 for w in weights)
    assert errors == []
    page.close()


def test_the_figures_read_with_javascript_off(served, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(served + "p/")
    text = page.locator("table.cp-heads").inner_text()
    assert "H3" in text and "blocks.1.attn" in text
    assert page.locator("table.cp-heads td a").count() == 8
    assert page.locator(".cp-token-example .cp-example-value").count() == 3
    shaded = page.locator(".cp-token").first.evaluate("s => getComputedStyle(s).backgroundColor")
    assert shaded.startswith("rgb")
    context.close()


def test_hovering_a_composition_edge_names_its_scores(served, browser):
    page = browser.new_page()
    page.goto(served + "p/")
    page.locator(".cp-edge .cp-edge-line").first.hover()
    card = page.locator(".cp-circuit-card")
    card.wait_for(state="visible")
    text = card.inner_text()
    assert "composition" in text and "excitatory" not in text, text
    page.close()
