"""Build speed: circuitpress against Sphinx + MyST on the same generated prose, in the same run.

    python bench/build.py [--pages 300 3000] [--repeats 3] [--keep DIR] [--delete-outputs]

Generates N prose pages (front matter, headings, citations, footnotes, a captioned figure, a
margin note, and math that differs on every page and within it: inline and display equations
with fractions, sums, integrals, subscripts, Greek, accents and matrices, built from the page
and equation numbers, so that no cache of converted math can do the work), then, for each
size, times in fresh processes:

- circuitpress cold: `python -m circuitpress build` with no output and no cache;
- circuitpress cold with no kept templates: the same, with the built-in theme's compiled
  templates (kept per user like .pyc, render/jinja.py) deleted first, as on the first build
  after an install;
- Sphinx cold: `python -m sphinx -b html -q` with myst-parser (dollarmath, colon_fence;
  footnotes are built into MyST) on the same pages, with no output and no doctrees;
- circuitpress no-op rebuild: `python -m circuitpress build` again with nothing changed (a new
  process, as a user or CI runs it); Sphinx's incremental no-op rebuild beside it;
- in this process, a build then a no-op rebuild with the build memo (what `circuitpress serve`
  does after each save).

The cold builds repeat `--repeats` times, circuitpress and Sphinx interleaved (which one goes
first alternates), each from scratch, after one untimed warm-up build of each (both then run
from compiled bytecode, as after an install, even where PYTHONDONTWRITEBYTECODE is set, and
circuitpress from the theme's compiled templates, both kept in the run's own folder).
Before each cold build the previous output is moved aside, not deleted (see Trash: deleting
it just before made the build pay for the deletion on this VM's file system); --delete-outputs
deletes it instead. Every child's CPU seconds (user + system, from getrusage(RUSAGE_CHILDREN)
deltas) and wall seconds are recorded; best and median are printed.
Both tools build in one process, so CPU seconds are the headline: on a machine whose cores are
shared with other jobs they measure the work, where wall time also measures the neighbours.

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
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# The working tree's circuitpress, for this process and the builds it starts.
REPO = Path(__file__).resolve().parent.parent

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

GREEK = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau "
    "phi chi psi omega"
).split()
LATIN = "abcdfghkmnpqrstuvwxyz"
ACCENTS = ("hat", "tilde", "bar", "vec", "dot")
FUNCTIONS = ("\\sin", "\\cos", "\\tanh", "\\log", "\\exp")
MATRICES = ("pmatrix", "bmatrix", "vmatrix")


def inline_math(i: int, k: int) -> str:
    """Inline LaTeX that no other (page, equation) pair of the benchmark produces."""
    g, h = GREEK[(i + k) % len(GREEK)], GREEK[(3 * i + 7 * k + 1) % len(GREEK)]
    v = LATIN[(i * 7 + k) % len(LATIN)]
    acc = ACCENTS[(i + 2 * k) % len(ACCENTS)]
    fn = FUNCTIONS[(i + k) % len(FUNCTIONS)]
    n, m = i + 2, k + 1
    forms = (
        f"\\{g}_{{{n},{m}}} = \\frac{{{v}_{{{m}}}}}{{\\sum_{{j=1}}^{{{n}}} e^{{\\{h}_j}}}}",
        f"\\{acc}{{{v}}}_{{{n}}}^{{({m})}} \\approx {fn}(\\{g} x_{{{m}}}) + {n}.{m}",
        f"\\lVert \\mathbf{{W}}^{{({m})}}_{{{n}}} \\rVert_2 \\leq \\sqrt{{\\{g}^{{{m}}} + \\{h}}}",
        f"p_{{\\{g}}}({v}_{{{n}}} \\mid {v}_{{<{m}}}) \\propto \\exp(-\\{h}_{{{m}}} / {n})",
        f"\\langle u_{{{n}}}, \\{acc}{{v}}_{{{m}}} \\rangle = \\sum_{{c={m}}}^{{{n + m}}} "
        f"\\{g}_c {v}_c",
    )
    return forms[(i + k) % len(forms)]


def display_math(i: int, k: int) -> str:
    """Display LaTeX (some of it matrices) unique to page `i`, equation `k`."""
    g, h = GREEK[(2 * i + k) % len(GREEK)], GREEK[(i + 5 * k + 3) % len(GREEK)]
    v = LATIN[(i + 3 * k) % len(LATIN)]
    env = MATRICES[(i + k) % len(MATRICES)]
    n, m = i + 1, k + 2
    forms = (
        f"a^{{({m})}}_{{{n}}} = \\frac{{1}}{{1 + e^{{-\\{g} z_{{{n}}}}}}} "
        f"\\int_0^{{{m}}} {v}^{{{n % 9 + 2}}} \\, \\mathrm{{d}}{v}",
        f"\\mathbf{{{v.upper()}}}_{{{n}}} = \\begin{{{env}}} \\{g}_{{{n}}} & {m} \\\\ "
        f"-\\{h}_{{{m}}} & \\frac{{{n}}}{{{m}}} \\end{{{env}}} "
        f"\\begin{{{env}}} x_{{{m}}} \\\\ y_{{{n}}} \\end{{{env}}}",
        f"\\frac{{\\partial \\mathcal{{L}}_{{{n}}}}}{{\\partial w_{{{m}}}}} = "
        f"\\sum_{{t=1}}^{{{n + m}}} \\left( \\hat{{y}}_t - y_t \\right) "
        f"\\{g}^{{t-{m}}} x_{{t,{m}}}",
        f"\\mathbb{{E}}_{{x \\sim \\mathcal{{D}}_{{{n}}}}} \\left[ \\max_{{c \\leq {m}}} "
        f"\\operatorname{{ReLU}}(\\{h}_c \\cdot x) \\right] \\geq {n}.{m}",
    )
    return forms[(i + k) % len(forms)]


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


def page(i: int, rng: random.Random, refs: int, sphinx: bool, latex: list[str]) -> str:
    """One article as Markdown; `sphinx` swaps the circuitpress-only syntax (cite role, front
    matter, aside). Every LaTeX string written is appended to `latex`."""

    def cite() -> str:
        key = rng.randrange(refs)
        if sphinx:
            return f"[{AUTHORS[key % len(AUTHORS)]} et al., {2015 + key % 10}]"
        return f"{{cite}}`ref{key}`"

    def inline() -> str:
        tex = inline_math(i, len(latex))
        latex.append(tex)
        return f"${tex}$"

    def display() -> list[str]:
        tex = display_math(i, len(latex))
        latex.append(tex)
        return ["$$", tex, "$$", ""]

    lines: list[str] = []
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
    footnotes: list[str] = []
    for section in range(3):
        lines += [f"## Section {section + 1} of article {i}", ""]
        for _ in range(2):
            n = len(footnotes) + 1
            footnotes.append(f"[^f{n}]: {sentence(rng, 12)} See also {inline()}.")
            lines += [
                f"{sentence(rng, 18)} {sentence(rng, 14)} {cite()} The response {inline()} "
                f"grows with {cite()}.[^f{n}] {sentence(rng, 10)} Hence {inline()}. "
                f"{sentence(rng, 10)}",
                "",
            ]
        lines += display()
    lines += display()
    lines += [
        f":::{{figure}} fig{i % 4}.png",
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


def make_sources(root: Path, pages: int, refs: int = 40) -> tuple[Path, Path, list[str]]:
    """A circuitpress site and a Sphinx project with the same pages and images; the LaTeX
    strings of the circuitpress pages."""
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
    latex: list[str] = []
    for i in range(pages):
        page_latex: list[str] = []
        (cp / "content" / f"article-{i:04d}.md").write_text(
            page(i, random.Random(i), refs, sphinx=False, latex=page_latex)
        )
        (sx / f"article-{i:04d}.md").write_text(
            page(i, random.Random(i), refs, sphinx=True, latex=[])
        )
        latex += page_latex
    (sx / "conf.py").write_text(
        'project = "Benchmark"\nextensions = ["myst_parser"]\n'
        'myst_enable_extensions = ["dollarmath", "colon_fence"]\n'
        'exclude_patterns = ["_build"]\nhtml_theme = "alabaster"\n'
        # No sidebar: alabaster's global navigation renders all N pages on every page (O(N^2));
        # circuitpress pages link no site-wide navigation, so Sphinx is spared that work too.
        'html_sidebars = {"**": []}\n'
    )
    (sx / "index.md").write_text("# Benchmark\n\n```{toctree}\n:glob:\n\narticle-*\n```\n")
    return cp, sx, latex


@dataclass
class Times:
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)

    def best(self, clock: str) -> float:
        return min(getattr(self, clock))

    def median(self, clock: str) -> float:
        return statistics.median(getattr(self, clock))


def timed(cmd: list[str], env: dict[str, str], times: Times, cwd: Path) -> None:
    """Run `cmd` in a new process; add its CPU seconds (user + system) and wall seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # Run in the benchmark's own folder: `python -m` puts the working folder first on sys.path,
    # so from another checkout it would pick that circuitpress over REPO's (PYTHONPATH).
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    times.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    times.wall.append(wall)


class Trash:
    """Where the previous build's output goes before a cold build: renamed into one folder of
    the run, deleted when the run ends (or at once with --delete-outputs, as before 2026-12-01
    18:00).

    Deleting ~600 files right before a build made that build pay for the deletion: an ext4
    without a journal (this VM's root file system) does not reuse an inode for 60 s after its
    file is deleted (ialloc.c, recently_deleted), and each new file or folder then searches
    past every recently freed one in its block group. A cold build of 300 pages spent 0.15-0.45
    s of system time in that search (0.02-0.04 s without it: 300 folders and 318 files written
    into a folder with nothing deleted nearby), and Sphinx's build after deleting its output
    likewise. Both tools get the same treatment."""

    def __init__(self, folder: Path, delete: bool):
        self.folder, self.delete, self.count = folder, delete, 0

    def discard(self, path: Path) -> None:
        if not os.path.lexists(path):
            return
        if self.delete:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count += 1
        os.rename(path, self.folder / f"{self.count:05d}-{path.name}")

    def empty(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def clean_circuitpress(site: Path, trash: Trash) -> None:
    """No output, no stamp, no cache: a cold build."""
    for path in [site / "_site", site / ".circuitpress", *site.glob("._site*")]:
        trash.discard(path)


def in_process_rebuild(site: Path, trash: Trash) -> tuple[float, float, int]:
    """A build then a no-op rebuild in one process with the build memo (the preview server's
    path); CPU seconds of this process for each."""
    from circuitpress.build.memo import BuildMemo
    from circuitpress.build.options import BuildOptions
    from circuitpress.build.pipeline import SiteBuild

    memo = BuildMemo()
    out = site / "_site_memo"
    start = time.process_time()
    SiteBuild(site, BuildOptions(out=out), memo=memo).run()
    first = time.process_time() - start
    renders = memo.renders
    start = time.process_time()
    SiteBuild(site, BuildOptions(out=out), memo=memo).run()
    second = time.process_time() - start
    trash.discard(out)
    return first, second, memo.renders - renders


def warm_up(root: Path, env: dict[str, str]) -> None:
    """One untimed build of 10 pages with each tool: bytecode compiled, files cached."""
    cp, sx, _ = make_sources(root / "warm-up", 10)
    py = sys.executable
    timed([py, "-m", "circuitpress", "build", str(cp), "--quiet"], env, Times(), root)
    sx_cmd = [py, "-m", "sphinx", "-b", "html", "-q", str(sx), str(root / "warm-up" / "out")]
    timed(sx_cmd, env, Times(), root)


def bench_size(
    root: Path, pages: int, repeats: int, env: dict[str, str], trash: Trash
) -> dict[str, float]:
    cp, sx, latex = make_sources(root / f"p{pages}", pages)
    py = sys.executable
    cp_cmd = [py, "-m", "circuitpress", "build", str(cp), "--quiet"]
    sx_out = root / f"p{pages}" / "sphinx-out"
    sx_cmd = [py, "-m", "sphinx", "-b", "html", "-q", str(sx), str(sx_out)]
    cp_cold, sx_cold, cp_noop, sx_noop = Times(), Times(), Times(), Times()
    cp_first = Times()
    for r in range(repeats):
        order = ("cp", "first", "sx") if r % 2 == 0 else ("sx", "first", "cp")
        for tool in order:
            if tool == "cp":
                clean_circuitpress(cp, trash)
                timed(cp_cmd, env, cp_cold, root)
                timed(cp_cmd, env, cp_noop, root)  # nothing changed: the up-to-date check
            elif tool == "first":
                # The first build after an install: the theme's compiled templates are not
                # kept yet (render/jinja.py CompiledTemplates), as .pyc files would not be.
                clean_circuitpress(cp, trash)
                trash.discard(Path(env["XDG_CACHE_HOME"]))
                timed(cp_cmd, env, cp_first, root)
            else:
                trash.discard(sx_out)
                timed(sx_cmd, env, sx_cold, root)
                timed(sx_cmd, env, sx_noop, root)  # Sphinx's incremental build, nothing changed
        print(
            f"  [{pages} pages, repeat {r + 1}/{repeats}] circuitpress {cp_cold.cpu[-1]:.2f} CPU s"
            f" / {cp_cold.wall[-1]:.2f} s (no kept templates {cp_first.cpu[-1]:.2f} CPU s),"
            f" Sphinx {sx_cold.cpu[-1]:.2f} CPU s / {sx_cold.wall[-1]:.2f} s",
            flush=True,
        )
    mem_first, mem_noop, rerendered = in_process_rebuild(cp, trash)
    print(f"\npages: {pages}, {len(latex)} LaTeX strings, {len(set(latex))} distinct")
    print(f"cold build, {repeats} repeats each   best CPU s   median CPU s   best wall s   pages/s")
    for name, t in (
        ("circuitpress", cp_cold),
        ("circuitpress, no kept templates", cp_first),
        ("Sphinx + MyST", sx_cold),
    ):
        print(
            f"  {name:<30} {t.best('cpu'):9.2f}   {t.median('cpu'):11.2f}   "
            f"{t.best('wall'):10.2f}   {pages / t.best('cpu'):7.1f} (CPU)"
        )
    ratios = {clock: sx_cold.best(clock) / cp_cold.best(clock) for clock in ("cpu", "wall")}
    med = {clock: sx_cold.median(clock) / cp_cold.median(clock) for clock in ("cpu", "wall")}
    print(
        f"  ratio Sphinx / circuitpress:   best CPU {ratios['cpu']:.2f}x, median CPU "
        f"{med['cpu']:.2f}x, best wall {ratios['wall']:.2f}x, median wall {med['wall']:.2f}x"
    )
    first = sx_cold.best("cpu") / cp_first.best("cpu")
    first_med = sx_cold.median("cpu") / cp_first.median("cpu")
    print(
        f"  the same with no kept templates (first build after an install): best CPU "
        f"{first:.2f}x, median CPU {first_med:.2f}x"
    )
    # Each repeat's builds ran back to back, under about the same load.
    paired = [sx / cp for sx, cp in zip(sx_cold.cpu, cp_cold.cpu, strict=True)]
    print(
        "  ratio of each repeat (CPU):    "
        + ", ".join(f"{r:.2f}x" for r in paired)
        + f"; median {statistics.median(paired):.2f}x"
    )
    print(
        f"no-op rebuild, new process:  circuitpress best {cp_noop.best('wall'):.3f} s wall "
        f"({cp_noop.best('cpu'):.3f} CPU s), median {cp_noop.median('wall'):.3f} s wall; "
        f"Sphinx (incremental) best {sx_noop.best('wall'):.2f} s wall"
    )
    print(
        f"no-op rebuild, same process with the memo: {mem_noop:.3f} CPU s "
        f"(first in-process build {mem_first:.2f} CPU s; pages re-rendered: {rerendered})"
    )
    return {
        "cp_cpu": cp_cold.best("cpu"),
        "sx_cpu": sx_cold.best("cpu"),
        "ratio_cpu": ratios["cpu"],
        "ratio_first": first,
        "ratio_wall": ratios["wall"],
        "noop_wall": cp_noop.best("wall"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--pages", type=int, nargs="+", default=[300, 3000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    parser.add_argument(
        "--delete-outputs",
        action="store_true",
        help="delete each previous output right before the next cold build (the old way; "
        "see Trash) instead of moving it aside until the run ends",
    )
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="cp-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {
        **os.environ,
        "SOURCE_DATE_EPOCH": "1700000000",
        "PYTHONHASHSEED": "0",
        "PYTHONPATH": pythonpath,
        # Both tools run from compiled bytecode, as after any install: kept in one folder of
        # the run (not the working tree), written by the warm-up builds below.
        "PYTHONPYCACHEPREFIX": str(root / "pycache"),
        # and circuitpress's compiled templates likewise, in the run's own folder
        "XDG_CACHE_HOME": str(root / "user-cache"),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["XDG_CACHE_HOME"] = env["XDG_CACHE_HOME"]  # in_process_rebuild's too
    from importlib.metadata import version

    import sphinx

    import circuitpress

    libraries = ", ".join(
        f"{name} {version(name)}"
        for name in ("myst-parser", "docutils", "markdown-it-py", "latex2mathml", "jinja2")
    )
    print(
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}; machine: {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; Python "
        f"{platform.python_version()}, circuitpress {circuitpress.__version__}, "
        f"Sphinx {sphinx.__version__}, {libraries}"
    )
    print(
        "previous outputs: "
        + ("deleted right before each cold build" if args.delete_outputs else "moved aside")
    )
    probe = subprocess.run(
        [sys.executable, "-c", "import circuitpress; print(circuitpress.__file__)"],
        capture_output=True, text=True, env=env, cwd=root, check=True,
    )  # fmt: skip
    if not Path(probe.stdout.strip()).is_relative_to(REPO):
        sys.exit(f"the builds would run {probe.stdout.strip()}, not {REPO}'s circuitpress")
    summary = {}
    trash = Trash(root / "trash", delete=args.delete_outputs)
    try:
        warm_up(root, env)
        for n in args.pages:
            summary[n] = bench_size(root, n, args.repeats, env, trash)
            print()
    finally:
        trash.empty()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print("summary (best of each, CPU seconds the headline):")
    for n, s in summary.items():
        print(
            f"  {n:5d} pages: circuitpress {n / s['cp_cpu']:7.1f} pages/s, Sphinx + MyST "
            f"{n / s['sx_cpu']:6.1f} pages/s: {s['ratio_cpu']:.2f}x (wall {s['ratio_wall']:.2f}x)"
            f"; with no kept templates {s['ratio_first']:.2f}x; no-op rebuild"
            f" {s['noop_wall']:.3f} s"
        )
    print("goals: cold build of 300 pages >= 8x Sphinx + MyST; no-op rebuild <= 0.3 s")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
