"""Every mistake an author can make: exit 1, one line `file:line: what (hint)`, `_site`
untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from circuitpress.cli import cli

GOOD_FM = "---\ntitle: T\npublished: 2026-01-01\n---\n"


def article(body: str, front: str = GOOD_FM) -> str:
    return front + body


# (name, files to write, expected "file:line", a fragment of the message)
CASES = [
    (
        "config-unknown-key",
        {"circuitpress.toml": '[site]\ntitle = "x"\ncolour = "red"\n'},
        "circuitpress.toml:3",
        "unknown key 'colour'",
    ),
    (
        "config-bad-toml",
        {"circuitpress.toml": '[site]\ntitle = "x\n'},
        "circuitpress.toml:2",
        "invalid TOML",
    ),
    (
        "config-bad-device",
        {"circuitpress.toml": '[site]\ntitle = "x"\n[build]\ndevice = "tpu"\n'},
        "circuitpress.toml:4",
        "unknown device",
    ),
    (
        "config-model-no-source",
        {"circuitpress.toml": '[site]\ntitle = "x"\n[models.m]\nweights = "w.safetensors"\n'},
        "circuitpress.toml:3",
        "exactly one of zoo",
    ),
    (
        "front-matter-yaml",
        {"content/prose.md": "---\ntitle: [unclosed\nauthors: x\n---\nBody\n"},
        "content/prose.md:",
        "front matter",
    ),
    (
        # An unknown key is a warning, an error under --strict
        # (tests/markup/test_front_matter_compat.py); one key written two ways is an error.
        "front-matter-key-twice",
        {"content/prose.md": "---\ntitle: T\nauthor: A\nauthors: [B]\n---\nBody\n"},
        "content/prose.md:4",
        "both 'author' and 'authors'",
    ),
    (
        "front-matter-bad-date",
        {"content/prose.md": "---\ntitle: T\npublished: yesterday\n---\nBody\n"},
        "content/prose.md:3",
        "published",
    ),
    (
        "front-matter-no-title",
        {"content/prose.md": "---\ndescription: D\n---\nBody\n"},
        "content/prose.md:",
        "title",
    ),
    (
        "unknown-directive",
        {"content/prose.md": article("Text\n\n:::{figuer} x.png\n:::\n")},
        "content/prose.md:7",
        "figuer",
    ),
    (
        "unknown-option",
        {"content/prose.md": article("\n:::{note}\n:colour: red\nHi\n:::\n")},
        "content/prose.md:7",
        "colour",
    ),
    (
        "bad-layout-value",
        {"content/prose.md": article("\n:::{note}\n:layout: sideways\nHi\n:::\n")},
        "content/prose.md:7",
        "layout",
    ),
    (
        "unknown-role",
        {"content/prose.md": article("See {uint}`m/conv1:3`.\n")},
        "content/prose.md:5",
        "uint",
    ),
    (
        "unknown-citation",
        {"content/prose.md": article("As shown {cite}`olah2020zom`.\n")},
        "content/prose.md:5",
        "olah2020zom",
    ),
    (
        "unknown-numref",
        {"content/prose.md": article("See {numref}`fig-nope`.\n")},
        "content/prose.md:5",
        "fig-nope",
    ),
    (
        "duplicate-label",
        {
            "content/prose.md": article(
                ":::{note}\n:name: dup\nA\n:::\n\n:::{note}\n:name: dup\nB\n:::\n"
            )
        },
        "content/prose.md:",
        "dup",
    ),
    (
        "bad-math",
        {"content/prose.md": article("Math $\\frac{1}{$ here.\n")},
        "content/prose.md:5",
        "math",
    ),
    (
        "bibtex-syntax",
        {"references.bib": "@article{broken,\n  title = {Unclosed,\n  year = 2020\n"},
        "references.bib:",
        "BibTeX",
    ),
    (
        "missing-figure-image",
        {"content/prose.md": article(":::{figure} images/nope.png\nCaption.\n:::\n")},
        "content/prose.md:5",
        "nope.png",
    ),
    (
        "unknown-model",
        {"content/prose.md": article("The unit {unit}`nomodel/conv1:3` fires.\n")},
        "content/prose.md:5",
        "nomodel",
    ),
    (
        "bad-reference",
        {"content/prose.md": article("The unit {unit}`conv1-3` fires.\n")},
        "content/prose.md:5",
        "conv1-3",
    ),
    (
        "control-character",
        {"content/prose.md": article("Its bias $\x08eta$ is small.\n")},
        "content/prose.md:5",
        "U+0008",
    ),
    (
        "not-utf8",
        {"content/prose.md": b"---\ntitle: T\n---\n\xff\xfe bad bytes\n"},
        "content/prose.md:1",
        "UTF-8",
    ),
]


def digest_tree(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        h.update(path.relative_to(root).as_posix().encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("name, files, where, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input(prose_site, name, files, where, fragment):
    site = prose_site()
    runner = CliRunner()
    ok = runner.invoke(cli, ["build", str(site), "--quiet"])
    assert ok.exit_code == 0, ok.output
    before = digest_tree(site / "_site")
    for rel, text in files.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    result = runner.invoke(cli, ["build", str(site), "--quiet"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1, result.output
    assert lines[0].startswith(where), lines[0]
    assert fragment.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in result.output
    assert digest_tree(site / "_site") == before, (
        "a failed build must leave _site exactly as it was"
    )
    assert not [p for p in site.iterdir() if p.name.startswith("._site")], (
        "no temporary folders left"
    )
