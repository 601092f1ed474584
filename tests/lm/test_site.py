"""A site on a tiny local Hugging Face model, built through the CLI: every language-model
directive, unit pages for a head and a neuron, and `circuitpress models`."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from circuitpress.cli import cli

PAGE = """\
---
title: Heads
model: toy
---

A head {unit}`toy/blocks.1.attn:H3` and a neuron {unit}`toy/blocks.0.mlp.hook_post:17`.

:::{examples} toy/blocks.0.mlp.hook_post:17
:k: 3
:context: 4
Top contexts.
:::

:::{attention} toy/blocks.1.attn:H3
:prompt: abcab abcab
:::

:::{heads} toy
:score: previous-token
:::

:::{logits} toy/blocks.0.mlp.hook_post:17
:k: 5
:::

:::{circuit} toy/blocks.1.attn:H3
:inputs: 3
:::

:::{claim} Ablating every layer-0 head changes layer-1 attention
:ablate: toy/blocks.0.attn:H0,H1,H2,H3
:measure: induction-score toy/blocks.1.attn:H3
:expect: unchanged within 100%
:::

:::{claim} Mean-ablating a neuron leaves the loss nearly unchanged
:ablate: toy/blocks.0.mlp.hook_post:17
:ablation: mean
:measure: loss
:expect: unchanged within 5%
:::
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_model):
    from tests.lm.conftest import CONFIG

    site = tmp_path_factory.mktemp("lm") / "site"
    (site / "content").mkdir(parents=True)
    (site / "circuitpress.toml").write_text(CONFIG.format(folder=tiny_model, extra=""))
    (site / "content" / "heads.md").write_text(PAGE)
    result = CliRunner().invoke(cli, ["build", str(site), "--quiet", "--strict", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    return site


def test_token_examples_carry_their_activations(built):
    html = (built / "_site" / "heads" / "index.html").read_text()
    figure = html[html.index('class="cp-examples cp-lm-examples"') :]
    figure = figure[: figure.index("</figure>")]
    rows = figure.count('class="cp-token-example"')
    assert rows == 3
    values = re.findall(r'data-activation="([-0-9.e+]+)"', figure)
    assert len(values) <= rows * 9 and len(values) >= rows * 2  # context 4 each side
    assert figure.count("cp-token-max") == rows


def test_attention_pattern_is_lower_triangular_and_rows_sum_to_one(built):
    html = (built / "_site" / "heads" / "index.html").read_text()
    table = html[html.index('<table class="cp-attention">') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr data-query=\"(\d+)\".*?</tr>", table)
    bodies = re.findall(r"(<tr data-query=.*?</tr>)", table)
    assert len(rows) == 12  # BOS and 11 characters
    for q, body in enumerate(bodies):
        weights = [float(w) for w in re.findall(r'data-weight="([0-9.]+)"', body)]
        assert len(weights) == q + 1
        assert sum(weights) == pytest.approx(1.0, abs=0.01)


def test_head_grid_links_every_head_page(built):
    html = (built / "_site" / "heads" / "index.html").read_text()
    scores = re.findall(
        r'<td data-score="([0-9.]+)" data-head="toy/blocks\.(\d)\.attn:H(\d)"', html
    )
    assert len(scores) == 8
    for layer in (0, 1):
        for head in range(4):
            assert (
                built / "_site" / "units" / "toy" / f"blocks.{layer}.attn" / f"H{head}"
            ).is_dir()
            assert f'href="/units/toy/blocks.{layer}.attn/H{head}/"' in html


def test_logits_circuit_and_claims(built):
    html = (built / "_site" / "heads" / "index.html").read_text()
    assert html.count("data-logit=") == 10
    assert html.count('class="cp-comp-edge"') == 3
    # Each diagram edge tells the hover card its composition scores, not "excitatory".
    notes = re.findall(r'data-note="strongest: ([QKV])-composition [^"]+"', html)
    assert len(notes) >= 3
    assert html.count('data-claim="held"') == 2


def test_unit_pages_of_a_head_and_a_neuron(built):
    head = built / "_site" / "units" / "toy" / "blocks.1.attn" / "H3" / "index.html"
    neuron = built / "_site" / "units" / "toy" / "blocks.0.mlp.hook_post" / "17" / "index.html"
    for page in (head, neuron):
        text = page.read_text()
        assert "On repeated random tokens" in text and "<img" in text  # its probe picture
        assert text.count("data-activation=") > 10  # its token examples
        assert 'href="/heads/"' in text  # the article that mentions it
        assert "Feature visualization" not in text and "Strongest inputs" not in text
    assert "<h1>blocks.1.attn:H3</h1>" in head.read_text()
    assert head.read_text().count('<td data-score="') == 3  # induction, previous, duplicate


def test_models_lists_hook_layers_and_heads(built):
    result = CliRunner().invoke(cli, ["models", str(built)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert re.search(r"blocks\.0\.mlp\.hook_post\s.*\b64\b", out)
    assert re.search(r"blocks\.1\.hook_resid_post\s.*\b32\b", out)
    assert re.search(r"blocks\.1\.attn\s.*4 heads", out)
