"""Each bad input of a language-model site is one line `file:line: what (hint)` and exit 1."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from circuitpress.cli import cli
from tests.lm.conftest import make_model


def build(site: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["build", str(site), "--quiet", "--jobs", "1"])
    return result.exit_code, result.output.strip()


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def page(body: str) -> dict[str, str]:
    return {"a.md": f"---\ntitle: A\n---\n\n{body}\n"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            ":::{examples} toy/blocks.0.mlp.hook_postt:3\n:::",
            r"content/a\.md:5: model 'toy' has no layer 'blocks\.0\.mlp\.hook_postt' "
            r"\(did you mean .*blocks\.0\.mlp\.hook_post",
        ),
        (
            ":::{attention} toy/blocks.1.attn:H9\n:prompt: ab ab\n:::",
            r"content/a\.md:5: head H9 out of range for toy/blocks\.1\.attn "
            r"\(it has heads H0 to H3\)",
        ),
        (
            ":::{attention} toy/blocks.1.mlp.hook_post:3\n:prompt: ab\n:::",
            r"content/a\.md:5: \{attention\} needs an attention head",
        ),
        (
            ":::{attention} toy/blocks.1.attn:H1\n:prompt: " + "abcdefgh" * 8 + "\n:::",
            r"content/a\.md:5: .*the prompt is 65 tokens long; model 'toy' reads at most 48",
        ),
        (
            ":::{tuning} toy/blocks.0.mlp.hook_post:1\n:stimulus: orientation\n:::",
            r"content/a\.md:5: 'tuning' is not available for language models \(toy\)",
        ),
        (
            ":::{heads} nomodel\n:::",
            r"content/a\.md:5: unknown model 'nomodel'",
        ),
        (
            ":::{claim} x\n:ablate: toy/blocks.0.attn:H1,Hx\n:measure: loss\n"
            ":expect: increase\n:::",
            r"content/a\.md:6: option ':ablate:' of \{claim\}: bad units",
        ),
    ],
)
def test_bad_directives(lm_site, body, expected):
    code, output = build(lm_site(page(body)))
    assert code == 1, output
    assert re.search(expected, one_line(output)), output


def test_a_model_folder_without_tokenizer(lm_site, tmp_path):
    folder = make_model(tmp_path / "notok", tokenizer=False)
    code, output = build(lm_site(page("{unit}`toy/blocks.0.attn:H1`"), folder=folder))
    assert code == 1
    assert re.fullmatch(
        r"circuitpress\.toml:3: model 'toy': '.*notok' has no tokenizer .*\(save the tokenizer.*\)",
        one_line(output),
    ), output


def test_a_missing_model_folder(lm_site, tmp_path):
    code, output = build(lm_site(page("{unit}`toy/blocks.0.attn:H1`"), folder=tmp_path / "nowhere"))
    assert code == 1
    assert re.match(
        r"circuitpress\.toml:3: model 'toy': model folder '.*nowhere' not found", one_line(output)
    )


def test_pickled_weights_are_refused(lm_site, tmp_path):
    folder = make_model(tmp_path / "pickled")
    for f in folder.glob("*.safetensors"):
        f.rename(f.with_name("pytorch_model.bin"))
    code, output = build(lm_site(page("{unit}`toy/blocks.0.attn:H1`"), folder=folder))
    assert code == 1
    assert "no .safetensors weights (refusing pytorch_model.bin" in one_line(output)


def test_an_empty_text_folder(lm_site):
    site = lm_site(page("{unit}`toy/blocks.0.mlp.hook_post:1`"), extra='dataset = "data/text"')
    (site / "data" / "text").mkdir(parents=True)
    (site / "data" / "text" / "empty.txt").write_text("  \n")
    code, output = build(site)
    assert code == 1
    assert re.match(
        r"circuitpress\.toml:3: model 'toy': text dataset 'data/text' holds no \.txt document",
        one_line(output),
    ), output


def test_a_jsonl_line_without_text(lm_site):
    site = lm_site(page("{unit}`toy/blocks.0.mlp.hook_post:1`"), extra='dataset = "data/c.jsonl"')
    (site / "data").mkdir()
    (site / "data" / "c.jsonl").write_text('{"text": "a b c"}\n{"body": "no"}\n')
    code, output = build(site)
    assert code == 1
    assert re.match(r"data/c\.jsonl:2: a line without a 'text' string", one_line(output)), output


def test_weights_and_transformers_together(lm_site):
    site = lm_site(page("hi"), extra='weights = "w.safetensors"')
    code, output = build(site)
    assert code == 1
    assert re.match(
        r"circuitpress\.toml:\d+: a transformers model reads its weights from its folder",
        one_line(output),
    ), output


def test_a_language_model_figure_of_a_vision_model(lm_site):
    site = lm_site(
        page(":::{logits} shapes-a/conv1:2\n:::"), extra='[models.shapes-a]\nzoo = "shapes-a"'
    )
    code, output = build(site)
    assert code == 1
    assert re.match(
        r"content/a\.md:5: model 'shapes-a' is not a language model", one_line(output)
    ), output
