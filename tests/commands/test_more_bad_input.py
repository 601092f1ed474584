"""More author mistakes through the real CLI: exit 1, one line `file:line: what (hint)`, never
a traceback or an internal error (exit 3).

The model cases use a tiny factory model defined in the site (random weights, seeded), so they
need no zoo weights and run in a few seconds: only model facts (layers, units) are computed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from circuitpress.cli import cli

FM = "---\ntitle: T\n---\n"  # the body starts on line 4
SITE = '[site]\ntitle = "S"\n'
MODEL_SITE = SITE + '[models.m]\nfactory = "tinynet_more_bad_input:build"\n'
TINY = (
    """\
from collections import OrderedDict

import torch
from torch import nn


def build():
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 16, 3, padding=1), relu1=nn.ReLU(),
        conv2=nn.Conv2d(16, 32, 3, padding=1), relu2=nn.ReLU(),
    ))


def build_strided():
    torch.manual_seed(1)
"""
    "    return nn.Sequential(OrderedDict(conv1=nn.Conv2d(3, 16, 3, stride=2, padding=1),"
    " relu1=nn.ReLU()))\n"
)
TWO_MODELS = MODEL_SITE + '[models.n]\nfactory = "tinynet_more_bad_input:build_strided"\n'


def page(body: str) -> dict[str, str | bytes]:
    return {"content/a.md": FM + body}


def with_model(body: str) -> dict[str, str | bytes]:
    return {
        "circuitpress.toml": MODEL_SITE,
        "tinynet_more_bad_input.py": TINY,
        "content/a.md": FM + body,
    }


# (id, files over a one-article prose site, expected "file:line:", a fragment of the message)
PROSE = [
    (
        "config-authors-not-list",
        {"circuitpress.toml": SITE + 'authors = "Ada"\n'},
        "circuitpress.toml:3:",
        "must be a list",
    ),
    (
        "config-unknown-theme",
        {"circuitpress.toml": SITE + '[build]\ntheme = "distil"\n'},
        "circuitpress.toml:4:",
        "did you mean 'distill'?",
    ),
    (
        "fm-series-order-text",
        {"content/a.md": "---\ntitle: T\nseries_order: first\n---\n"},
        "content/a.md:3:",
        "whole number",
    ),
    (
        "fm-tags-number",
        {"content/a.md": "---\ntitle: T\ntags: 3\n---\n"},
        "content/a.md:3:",
        "list of text",
    ),
    (
        "fm-updates-text",
        {"content/a.md": "---\ntitle: T\nupdates: [fixed a typo]\n---\n"},
        "content/a.md:3:",
        "{date, text}",
    ),
    (
        "fm-updates-bad-date",
        {"content/a.md": "---\ntitle: T\nupdates:\n  - {date: soon, text: x}\n---\n"},
        "content/a.md:3:",
        "not a date",
    ),
    (
        "fm-tab-indent",
        {"content/a.md": "---\ntitle: T\nauthors:\n\t- Ada\n---\n"},
        "content/a.md:4:",
        "not valid YAML",
    ),
    (
        "fm-year-only",
        {"content/a.md": "---\ntitle: T\npublished: 2020\n---\n"},
        "content/a.md:3:",
        "YYYY-MM-DD",
    ),
    (
        "config-title-control-char",
        {"circuitpress.toml": '[site]\ntitle = "A\\u0008B"\n'},
        "circuitpress.toml:2:",
        "control character U+0008",
    ),
    (
        "fm-title-yaml-escape",
        {"content/a.md": '---\ntitle: "Curves\\b"\n---\n'},
        "content/a.md:2:",
        "control character U+0008",
    ),
    (
        "fm-author-control-char",
        {"content/a.md": '---\ntitle: T\nauthors: ["Ada\\a"]\n---\n'},
        "content/a.md:3:",
        "control character U+0007",
    ),
    (
        "fm-title-form-feed",
        {"content/a.md": '---\ntitle: "A\\fB"\n---\n'},
        "content/a.md:2:",
        "control character U+000C",
    ),
    (
        "fm-update-control-char",
        {"content/a.md": '---\ntitle: T\nupdates: [{date: 2024-01-01, text: "fixed\\bit"}]\n---\n'},
        "content/a.md:3:",
        "U+0008",
    ),
    (
        "fm-tag-control-char",
        {"content/a.md": '---\ntitle: T\ntags: ["a\\bb"]\n---\n'},
        "content/a.md:3:",
        "U+0008",
    ),
    (
        "fm-doi-with-space",
        {"content/a.md": "---\ntitle: T\ndoi: 10.1234/a b\n---\n"},
        "content/a.md:3:",
        "not a DOI",
    ),
    ("footnote-undefined", page("A claim.[^src]\n"), "content/a.md:4:", "[^src] is not defined"),
    ("empty-file", {"content/a.md": ""}, "content/a.md:1:", "no front matter"),
    (
        "fm-unknown-model",
        {"content/a.md": "---\ntitle: T\nmodel: nope\n---\n{unit}`conv1:3`\n"},
        "content/a.md:5:",
        "unknown model 'nope'",
    ),
    (
        "two-files-one-slug",
        {"content/a.md": FM + "x\n", "content/a/index.md": FM + "y\n"},
        "content/a.md:1:",
        "slug 'a'",
    ),
    ("math-block", page("\n$$\n\\frac{1}{\n$$\n"), "content/a.md:5:", "bad math"),
    (
        "figure-leaves-site",
        page(":::{figure} ../../x.png\n:::\n"),
        "content/a.md:4:",
        "leaves the site folder",
    ),
    (
        "figure-width",
        page(":::{figure} a.png\n:width: wide\n:::\n") | {"static/a.png": b"\x89PNG"},
        "content/a.md:5:",
        "CSS size",
    ),
    (
        "figure-is-a-folder",
        page(":::{figure} img.png\n:::\n") | {"static/img.png/x": "x"},
        "content/a.md:4:",
        "not found",
    ),
    (
        "numref-to-a-note",
        page(":::{note}\n:name: n1\nx\n:::\nSee {numref}`n1`.\n"),
        "content/a.md:8:",
        "not a numbered figure",
    ),
    (
        "crlf-unknown-directive",
        {"content/a.md": "---\r\ntitle: T\r\n---\r\n\r\n:::{nope}\r\n:::\r\n"},
        "content/a.md:5:",
        "'{nope}'",
    ),
    (
        "bib-duplicate-key",
        page("{cite}`x`\n")
        | {"references.bib": "@article{x, title={A}}\n@article{x, title={B}}\n"},
        "references.bib:2:",
        "used twice",
    ),
    (
        "bib-not-utf8",
        page("{cite}`x`\n") | {"references.bib": b"@article{x, title={\xff}}\n"},
        "references.bib:1:",
        "UTF-8",
    ),
    (
        "page-not-utf8",
        {"content/a.md": b"---\ntitle: T\n---\nok\n\xe9\n"},
        "content/a.md:1:",
        "UTF-8",
    ),
    (
        "theme-syntax",
        {"themes/distill/templates/partials/title.html": "<h1>{{ page.title }</h1>\n"},
        "themes/distill/templates/partials/title.html:1:",
        "syntax",
    ),
    (
        "theme-typo",
        {"themes/distill/templates/partials/title.html": "<h1>{{ page.titel }}</h1>\n"},
        "themes/distill/templates/partials/title.html:1:",
        "'titel'",
    ),
    (
        "theme-type-error",
        {"themes/distill/templates/partials/title.html": "\n<h1>{{ page.title + 3 }}</h1>\n"},
        "themes/distill/templates/partials/title.html:2:",
        "TypeError",
    ),
    (
        "theme-missing-include",
        {"themes/distill/templates/partials/title.html": "{% include 'partials/titel.html' %}\n"},
        "themes/distill/templates/partials/title.html:1:",
        "did you mean 'partials/title.html'?",
    ),
    ("refs-without-models", page("{unit}`conv1:3`\n"), "content/a.md:4:", "names no model"),
    ("feature-no-argument", page(":::{feature}\n:::\n"), "content/a.md:4:", "needs an argument"),
    (
        "weights-without-arrow",
        page(":::{weights} m/conv1:3 m/conv2:1\n:::\n"),
        "content/a.md:4:",
        "'->'",
    ),
    (
        "claim-without-expect",
        page(":::{claim} X\n:ablate: m/conv1:3\n:measure: m/conv2:1\n:::\n"),
        "content/a.md:4:",
        "':expect:'",
    ),
    (
        "claim-bad-expect",
        page(":::{claim} X\n:expect: halves\n:::\n"),
        "content/a.md:5:",
        "unknown expectation",
    ),
    (
        "tuning-unknown-stimulus",
        page(":::{tuning} m/conv1:3\n:stimulus: wiggles\n:::\n"),
        "content/a.md:5:",
        "unknown stimulus",
    ),
    (
        "universality-without-tilde",
        page(":::{universality} m/conv1 m/conv1\n:::\n"),
        "content/a.md:4:",
        "'~'",
    ),
]

MODEL = [
    (
        "unknown-layer",
        with_model("{unit}`m/conv9:1`\n"),
        "content/a.md:4:",
        "did you mean 'conv2' or 'conv1'?",
    ),
    (
        "unit-out-of-range",
        with_model("Text.\n{unit}`m/conv1:99`\n"),
        "content/a.md:5:",
        "units 0 to 15",
    ),
    (
        "position-out-of-range",
        with_model("{unit}`m/conv1:3@99,99`\n"),
        "content/a.md:4:",
        "position @99,99",
    ),
    (
        "direction-out-of-range",
        with_model("{unit}`m/conv1:0.5*3-0.2*99`\n"),
        "content/a.md:4:",
        "unit 99",
    ),
    (
        "weights-reversed",
        with_model(":::{weights} m/conv2:1 -> m/conv1:3\n:::\n"),
        "content/a.md:4:",
        "earlier layer goes first",
    ),
    (
        "weights-same-layer",
        with_model(":::{weights} m/conv1:3 -> m/conv1:4\n:::\n"),
        "content/a.md:4:",
        "same layer",
    ),
    (
        "circuit-unit-out-of-range",
        with_model(":::{circuit} m/conv2:1\n:units: 1, 99\n:::\n"),
        "content/a.md:5:",
        "no unit 99",
    ),
    (
        "claim-ablates-missing-unit",
        with_model(
            ":::{claim} X\n:ablate: m/conv1:300\n:measure: m/conv2:1\n:expect: decrease\n:::\n"
        ),
        "content/a.md:5:",
        "no unit 300",
    ),
    (
        "claim-unknown-class",
        with_model(
            ":::{claim} X\n:ablate: m/conv1:3\n:measure: accuracy:zebra\n:expect: decrease\n:::\n"
        ),
        "content/a.md:6:",
        "no class 'zebra'",
    ),
    (
        "universality-with-itself",
        with_model(":::{universality} m/conv1 ~ m/conv1\n:::\n"),
        "content/a.md:4:",
        "with itself",
    ),
    (
        "universality-positions-other-grid",
        with_model(":::{universality} m/conv1 ~ n/conv1\n:top: 2\n:pool: positions\n:::\n")
        | {"circuitpress.toml": TWO_MODELS},
        "content/a.md:6:",
        "same grid",
    ),
    (
        "universality-unknown-pool",
        with_model(":::{universality} m/conv1 ~ m/conv2\n:pool: median\n:::\n"),
        "content/a.md:5:",
        "median",
    ),
    (
        "universality-unknown-model",
        with_model(":::{universality} m/conv1 ~ q/conv1\n:::\n"),
        "content/a.md:4:",
        "unknown model 'q'",
    ),
    (
        "factory-raises",
        with_model("{unit}`m/conv1:3`\n")
        | {"tinynet_more_bad_input.py": "def build():\n    raise RuntimeError('boom')\n"},
        "circuitpress.toml:3:",
        "boom",
    ),
    (
        "factory-returns-no-module",
        with_model("{unit}`m/conv1:3`\n")
        | {"tinynet_more_bad_input.py": "def build():\n    return 3\n"},
        "circuitpress.toml:3:",
        "not a torch nn.Module",
    ),
    (
        "weights-not-safetensors",
        with_model("{unit}`m/conv1:3`\n")
        | {
            "circuitpress.toml": MODEL_SITE + 'weights = "w.safetensors"\n',
            "w.safetensors": "junk",
        },
        "circuitpress.toml:3:",
        "not a valid safetensors file",
    ),
]


def write(root: Path, files: dict[str, str | bytes]) -> None:
    base: dict[str, str | bytes] = {"circuitpress.toml": SITE, "content/ok.md": FM + "Fine.\n"}
    for rel, data in {**base, **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8", newline="")


def check(tmp_path: Path, files: dict[str, str | bytes], where: str, fragment: str) -> None:
    write(tmp_path, files)
    result = CliRunner().invoke(cli, ["build", str(tmp_path), "--quiet"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1, result.output
    assert lines[0].startswith(where), lines[0]
    assert fragment.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in result.output and "internal error" not in result.output


@pytest.mark.parametrize(
    "files, where, fragment", [c[1:] for c in PROSE], ids=[c[0] for c in PROSE]
)
def test_prose_mistakes(tmp_path, files, where, fragment):
    check(tmp_path, files, where, fragment)


@pytest.mark.parametrize(
    "files, where, fragment", [c[1:] for c in MODEL], ids=[c[0] for c in MODEL]
)
def test_model_mistakes(tmp_path, files, where, fragment):
    pytest.importorskip("torch")
    check(tmp_path, files, where, fragment)


def test_a_byte_order_mark_and_crlf_lines_still_build(tmp_path):
    # What Windows editors write: the page must build as if it had neither.
    text = (
        "\ufeff---\r\ntitle: Windows\r\n---\r\n\r\n"
        ":::{note}\r\n:name: n1\r\nx\r\n:::\r\n\r\nSee {numref}`the note <n1>`.\r\n"
    )
    write(tmp_path, {"content/a.md": text})
    result = CliRunner().invoke(cli, ["build", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "_site" / "a" / "index.html").read_text(encoding="utf-8")
    assert "<h1>Windows" in html and '<a class="cp-numref" href="#n1">the note</a>' in html
