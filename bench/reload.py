"""Preview latency: from saving a prose edit to the reloaded page in a real browser.

    python bench/reload.py [--articles 20] [--edits 10] [--keep DIR]

Generates a prose site of N articles (sections, citations, inline and display math, footnotes,
a margin note), runs `circuitpress serve` on it in its own process, opens one article in Debian's
Chromium (Playwright) and, for each edit, writes a new sentence into that article's Markdown and
measures until the reloaded page shows it. The moment "shows it" is taken inside the page (the
first animation frame after DOMContentLoaded whose text contains the sentence, clocked with
performance.timeOrigin + now(), the same wall clock Python reads), so the benchmark's own polling
adds nothing to the number.

Also timed, in this process, with the build API the server uses:
- cold build: a fresh SiteBuild (no memo) of the whole site, in memory (the baseline);
- no-op rebuild: the same build again with the memo the server keeps, nothing changed;
- prose-edit rebuild: one article changed, with the memo.
Prints medians, p90, and the ratios against the cold build.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WORDS = (
    "feature circuit neuron curve detector weight layer activation channel model universality "
    "edge texture orientation response input output unit visualization dataset example claim "
    "gradient kernel spatial early late family boundary frequency colour contrast shape the of "
    "and a to in is that we this with as are by on for which these from be can its their"
).split()

# Runs in every page load: records when the page first paints, and what it says.
RECORDER = """
document.addEventListener("DOMContentLoaded", () => requestAnimationFrame(() => {
  const loads = JSON.parse(sessionStorage.getItem("cp-loads") || "[]");
  loads.push({t: performance.timeOrigin + performance.now(), text: document.body.innerText});
  sessionStorage.setItem("cp-loads", JSON.stringify(loads.slice(-3)));
}));
"""


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def article(i: int, extra: str = "") -> str:
    rng = random.Random(i)
    lines = [
        "---",
        f'title: "Article {i}: curve detectors"',
        "authors: [Ada Lovelace]",
        f"published: 2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "---",
        "",
    ]
    if extra:
        lines += [extra, ""]
    notes = []
    for section in range(4):
        lines += [f"## Section {section + 1}", ""]
        for _ in range(3):
            n = len(notes) + 1
            notes.append(f"[^n{n}]: {sentence(rng, 12)}")
            lines += [
                f"{sentence(rng, 20)} {{cite}}`ref{rng.randrange(10)}` "
                f"with $f(x) = w_{n} x$.[^n{n}] "
                f"{sentence(rng, 16)}",
                "",
            ]
        lines += ["$$", f"a_{section} = \\frac{{1}}{{1 + e^{{-z}}}}", "$$", ""]
    lines += [":::{aside}", sentence(rng, 14), ":::", ""] + notes
    return "\n".join(lines) + "\n"


def make_site(root: Path, articles: int) -> Path:
    (root / "content").mkdir(parents=True)
    (root / "static").mkdir()
    (root / "circuitpress.toml").write_text('[site]\ntitle = "Reload benchmark"\nbase_url = "/"\n')
    (root / "references.bib").write_text(
        "\n".join(
            f"@article{{ref{k},\n  author = {{Olah, Chris}},\n  title = {{Study {k}}},\n"
            "  journal = {Distill},\n  year = {2020}\n}"
            for k in range(10)
        )
    )
    for i in range(articles):
        (root / "content" / f"article-{i:02d}.md").write_text(article(i))
    return root


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def time_builds(site: Path, repeats: int) -> dict[str, list[float]]:
    from circuitpress.build.memo import BuildMemo
    from circuitpress.build.options import BuildOptions
    from circuitpress.build.pipeline import SiteBuild

    def once(memo: object | None) -> float:
        start = time.perf_counter()
        options = BuildOptions(drafts=True, write=False)
        (
            SiteBuild(site, options, memo=memo) if memo is not None else SiteBuild(site, options)
        ).run()  # type: ignore[arg-type]
        return time.perf_counter() - start

    cold = [once(None) for _ in range(3)]
    memo = BuildMemo()
    once(memo)
    noop = [once(memo) for _ in range(repeats)]
    edit = []
    target = site / "content" / "article-05.md"
    for k in range(repeats):
        target.write_text(article(5, f"Build-only edit number {k}."))
        edit.append(once(memo))
    target.write_text(article(5))
    return {"cold": cold, "noop": noop, "edit": edit}


def start_server(site: Path) -> tuple[subprocess.Popen[str], str, list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "circuitpress", "serve", str(site), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    lines: list[str] = []
    url = None
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        match = re.search(r"Serving (http://\S+)", line)
        if match:
            url = match.group(1)
            break
    if url is None:
        proc.kill()
        raise SystemExit("the server did not start:\n" + "".join(lines))
    # Keep reading its output (rebuild times) in the background.
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()  # type: ignore[arg-type]
    return proc, url, lines


def measure_reload(site: Path, url: str, edits: int) -> list[float]:
    from playwright.sync_api import Error, sync_playwright

    target = site / "content" / "article-07.md"
    latencies = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.add_init_script(RECORDER)
        page.goto(url + "article-07/")
        page.wait_for_function("document.body.innerText.includes('Article 7')")
        time.sleep(0.5)  # the event stream is connected
        for k in range(edits + 1):  # the first edit warms up the server's memo; not counted
            token = f"Freshly edited sentence {k} {random.randrange(10**9)}."
            start = time.time() * 1000
            target.write_text(article(7, token))
            shown = None
            deadline = time.monotonic() + 15
            while shown is None and time.monotonic() < deadline:
                try:
                    loads = json.loads(page.evaluate("sessionStorage.getItem('cp-loads') || '[]'"))
                except Error:
                    loads = []  # the page is navigating
                shown = next((load["t"] for load in loads if token in load["text"]), None)
                time.sleep(0.01)
            if shown is None:
                raise SystemExit(f"edit {k} never showed up in the page")
            if k:
                latencies.append(shown - start)
            time.sleep(0.3)  # let the page settle between edits
        browser.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=20)
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument(
        "--keep", type=Path, default=None, help="Generate the site here and keep it."
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cp-reload-bench-"))
    site = make_site((args.keep or work) / "site", args.articles)
    try:
        builds = time_builds(site, repeats=args.edits)
        proc, url, lines = start_server(site)
        try:
            latencies = measure_reload(site, url, args.edits)
        finally:
            proc.terminate()
            proc.wait(10)
        server_ms = [
            float(m.group(1))
            for line in lines
            if (m := re.search(r"rebuilt after \S+ in (\d+) ms", line))
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cold = statistics.median(builds["cold"]) * 1000
    noop = statistics.median(builds["noop"]) * 1000
    edit = statistics.median(builds["edit"]) * 1000
    print(
        f"machine: {cpu_name()} · {os.cpu_count()} CPUs · {platform.system()} · "
        f"Python {platform.python_version()}"
    )
    print(f"site: {args.articles} prose articles; {args.edits} edits of one article")
    print(f"cold in-memory build:        median {cold:7.1f} ms   (baseline)")
    print(
        f"no-op rebuild (memo):        median {noop:7.1f} ms   "
        f"p90 {pct(builds['noop'], 0.9) * 1000:6.1f} ms   {cold / noop:5.1f}x faster than cold"
    )
    print(
        f"prose-edit rebuild (memo):   median {edit:7.1f} ms   "
        f"p90 {pct(builds['edit'], 0.9) * 1000:6.1f} ms   {cold / edit:5.1f}x faster than cold"
    )
    if server_ms:
        print(
            f"server rebuild after a save: median {statistics.median(server_ms):7.1f} ms   "
            "(from its log: the build alone)"
        )
    print(
        f"save -> reloaded page shown: median {statistics.median(latencies):7.1f} ms   "
        f"p90 {pct(latencies, 0.9):6.1f} ms   "
        f"max {max(latencies):6.1f} ms   "
        f"(goal <= 300 ms: {'met' if pct(latencies, 0.9) <= 300 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
