"""Build speed: circuitpress against Sphinx + MyST on the same generated prose, in the same run.

    python bench/build.py [--pages 300] [--keep DIR]

Generates N prose pages (headings, citations, inline and display math, footnotes, a figure with
a caption, a margin note), then times:

- circuitpress cold: `python -m circuitpress build` in a fresh process, no output, no cache;
- Sphinx cold: `sphinx-build -b html -q` with myst-parser (dollarmath, colon_fence; footnotes are
  built into MyST), on the same pages in a fresh process;
- circuitpress no-op rebuild: a second `circuitpress build` with nothing changed (a fresh
  process, as a user or CI runs it), and a rebuild in the same process with the build memo
  (what `circuitpress serve` does after each save).

Sphinx gets the lighter job, so the ratio is conservative: it leaves math to MathJax in the
browser (circuitpress converts it to MathML at build time), and citations are plain text for it
(no sphinxcontrib-bibtex), where circuitpress resolves them against a .bib file; and Sphinx's
sidebar is off (alabaster's global table of contents makes a 300-page build ~5x slower).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = (
    "feature circuit neuron curve detector weight layer activation channel model universality "
    "edge texture orientation response input output unit visualization dataset example claim "
    "gradient kernel spatial early late family boundary frequency colour contrast shape the of "
    "and a to in is that we this with as are by on for which these from be can its their"
).split()

AUTHORS = [
    "Olah",
    "Cammarata",
    "Schubert",
    "Goh",
    "Petrov",
    "Carter",
    "Voss",
    "Egan",
    "Mordvintsev",
]


def bibliography(n: int) -> str:
    entries = []
    for i in range(n):
        a, b = AUTHORS[i % len(AUTHORS)], AUTHORS[(i + 3) % len(AUTHORS)]
        entries.append(
            f'@article{{ref{i},\n  author = {{{a}, Chris and {b}, Nick and G{{\\"o}}del, Kurt}},\n'
            f"  title = {{{{Circuits}} study number {i}}},\n  journal = {{Distill}},\n"
            f"  year = {{{2015 + i % 10}}},\n  doi = {{10.23915/distill.{i:05d}}}\n}}\n"
        )
    return "\n".join(entries)


def sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def page(i: int, rng: random.Random, refs: int, sphinx: bool) -> str:
    """One article as Markdown; `sphinx` swaps the circuitpress-only syntax (cite role, front
    matter)."""

    def cite() -> str:
        key = rng.randrange(refs)
        if sphinx:
            return f"[{AUTHORS[key % len(AUTHORS)]} et al., {2015 + key % 10}]"
        return f"{{cite}}`ref{key}`"

    lines = []
    if sphinx:
        lines += [f"# Article {i}: circuits and features", ""]
    else:
        lines += [
            "---",
            f'title: "Article {i}: circuits and features"',
            f"description: Generated page {i} for the build benchmark.",
            "authors:",
            "  - name: Ada Lovelace",
            "    affiliation: Analytical Engines",
            f"published: 2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "---",
            "",
        ]
    footnotes = []
    for section in range(3):
        lines += [f"## Section {section + 1} of article {i}", ""]
        for _ in range(2):
            n = len(footnotes) + 1
            footnotes.append(f"[^f{n}]: {sentence(rng, 12)} See also $x_{{{n}}}^2$.")
            lines += [
                f"{sentence(rng, 18)} {sentence(rng, 14)} {cite()} "
                "The response $f(x) = \\sum_i w_i x_i + b$ "
                f"grows with {cite()}.[^f{n}] {sentence(rng, 20)}",
                "",
            ]
        lines += [
            "$$",
            f"a_{{{section}}} = \\frac{{1}}{{1 + e^{{-z}}}} \\int_0^1 x^{section + 2} \\, dx",
            "$$",
            "",
        ]
    fig = f"fig{i % 4}.png"
    lines += [
        f":::{{figure}} {fig}" if not sphinx else f":::{{figure}} {fig}",
        ":name: fig-main" if not sphinx else f":name: fig-main-{i}",
        f"{sentence(rng, 12)}",
        ":::",
        "",
    ]
    if not sphinx:
        lines += [":::{aside}", sentence(rng, 16), ":::", ""]
    else:
        lines += [":::{note}", sentence(rng, 16), ":::", ""]
    lines += footnotes
    return "\n".join(lines) + "\n"


def make_sources(root: Path, pages: int, refs: int = 40) -> tuple[Path, Path]:
    """A circuitpress site and a Sphinx project with the same pages and images."""
    from PIL import Image

    cp, sx = root / "circuitpress-site", root / "sphinx-src"
    (cp / "content").mkdir(parents=True)
    (cp / "static").mkdir()
    sx.mkdir()
    (cp / "circuitpress.toml").write_text(
        '[site]\ntitle = "Benchmark"\nbase_url = "/"\ndescription = "Generated pages."\n'
    )
    (cp / "references.bib").write_text(bibliography(refs))
    for k in range(4):
        img = Image.new("RGB", (160, 90), (40 * k, 120, 200 - 40 * k))
        img.save(cp / "static" / f"fig{k}.png")
        img.save(sx / f"fig{k}.png")
    for i in range(pages):
        (cp / "content" / f"article-{i:03d}.md").write_text(
            page(i, random.Random(i), refs, sphinx=False)
        )
        (sx / f"article-{i:03d}.md").write_text(page(i, random.Random(i), refs, sphinx=True))
    (sx / "conf.py").write_text(
        'project = "Benchmark"\nextensions = ["myst_parser"]\n'
        'myst_enable_extensions = ["dollarmath", "colon_fence"]\n'
        'exclude_patterns = ["_build"]\nhtml_theme = "alabaster"\n'
        # No sidebar: alabaster's global navigation renders all N pages on every page (O(N^2));
        # circuitpress pages link no site-wide navigation, so Sphinx is spared that work too.
        'html_sidebars = {"**": []}\n'
    )
    (sx / "index.md").write_text("# Benchmark\n\n```{toctree}\n:glob:\n\narticle-*\n```\n")
    return cp, sx


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return elapsed


def in_process_rebuild(site: Path) -> tuple[float, float, int]:
    """A build then a no-op rebuild in one process with the build memo (the preview server's
    path)."""
    from circuitpress.build.memo import BuildMemo
    from circuitpress.build.options import BuildOptions
    from circuitpress.build.pipeline import SiteBuild

    memo = BuildMemo()
    out = site / "_site_memo"
    start = time.perf_counter()
    SiteBuild(site, BuildOptions(out=out), memo=memo).run()
    first = time.perf_counter() - start
    renders = memo.renders
    start = time.perf_counter()
    SiteBuild(site, BuildOptions(out=out), memo=memo).run()
    second = time.perf_counter() - start
    return first, second, memo.renders - renders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="cp-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000", "PYTHONHASHSEED": "0"}
    try:
        cp, sx = make_sources(root, args.pages)
        py = sys.executable
        cp_cold = timed([py, "-m", "circuitpress", "build", str(cp), "--quiet"], env)
        sx_cold = timed(
            [py, "-m", "sphinx", "-b", "html", "-q", str(sx), str(root / "sphinx-out")], env
        )
        cp_noop = timed([py, "-m", "circuitpress", "build", str(cp), "--quiet"], env)
        sx_noop = timed(
            [py, "-m", "sphinx", "-b", "html", "-q", str(sx), str(root / "sphinx-out")], env
        )
        mem_first, mem_noop, rerendered = in_process_rebuild(cp)
        n = args.pages
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}"
        )
        print(f"pages: {n}")
        print(f"circuitpress cold build:  {cp_cold:6.2f} s  {n / cp_cold:7.1f} pages/s")
        print(f"Sphinx + MyST cold build: {sx_cold:6.2f} s  {n / sx_cold:7.1f} pages/s")
        print(f"ratio (circuitpress / Sphinx, cold): {sx_cold / cp_cold:.2f}x  (goal >= 3x)")
        print(f"circuitpress no-op rebuild, new process:  {cp_noop:6.2f} s  (goal < 1.5 s)")
        print(
            f"circuitpress no-op rebuild, same process: {mem_noop:6.2f} s  "
            f"(first in-process build {mem_first:.2f} s; pages re-rendered: {rerendered})"
        )
        print(f"Sphinx no-op rebuild (incremental):       {sx_noop:6.2f} s")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
