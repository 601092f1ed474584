"""An output folder is circuitpress's only if circuitpress wrote it (`build --out`, `publish
--target`, the default `_site`); every OS error on it is one line; killed builds are undone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from circuitpress.cli import cli


def run(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, [*args, "--quiet"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output and "internal error" not in result.output, lines
    return result.exit_code, lines


def build(site: Path, *args: str) -> None:
    code, lines = run("build", str(site), *args)
    assert code == 0, lines


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def strays(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(("._site.", ".homepage.")))


def dead_pid() -> int:
    code = "import os; print(os.getpid())"
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(done.stdout)


def homepage(tmp_path: Path) -> Path:
    """A folder of the user's own files that happens to have an index.html."""
    home = tmp_path / "homepage"
    (home / "photos").mkdir(parents=True)
    (home / "index.html").write_text("<h1>My homepage</h1>")
    (home / "cv.pdf").write_bytes(b"%PDF-1.7 my cv")
    (home / "photos" / "a.jpg").write_bytes(b"\xff\xd8 a photo")
    return home


@pytest.mark.parametrize("command", ["build", "publish"])
def test_a_folder_of_the_users_files_is_refused_and_kept(prose_site, tmp_path, command):
    site = prose_site()
    home = homepage(tmp_path)
    before = tree(home)
    option = "--out" if command == "build" else "--target"
    code, lines = run(command, str(site), option, str(home))
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"{option} {home}:1: is a folder with other files in it"), lines
    assert "cv.pdf" in lines[0]
    assert tree(home) == before
    assert strays(tmp_path) == []


@pytest.mark.parametrize("option", ["--out", "--target"])
def test_an_own_output_folder_is_replaced_until_the_user_adds_a_file(prose_site, tmp_path, option):
    site = prose_site()
    out = tmp_path / "public"
    command = "build" if option == "--out" else "publish"
    for _ in range(2):  # a folder circuitpress wrote may be replaced
        code, lines = run(command, str(site), option, str(out))
        assert code == 0, lines
    assert (out / "prose" / "index.html").is_file()
    (out / "notes.txt").write_text("mine")
    (site / "content" / "prose.md").write_text("---\ntitle: Changed\n---\nNew text.\n")
    code, lines = run(command, str(site), option, str(out))
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"{option} {out}:1: "), lines
    assert "notes.txt" in lines[0]
    assert (out / "notes.txt").read_text() == "mine"


def test_a_user_file_in_the_site_folder_output_is_refused(prose_site):
    site = prose_site()
    build(site)
    (site / "_site" / "cv.pdf").write_bytes(b"mine")
    (site / "content" / "prose.md").write_text("---\ntitle: Changed\n---\nNew text.\n")
    code, lines = run("build", str(site))
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith("_site:1: is a folder with other files in it: cv.pdf"), lines
    assert (site / "_site" / "cv.pdf").read_bytes() == b"mine"


def test_git_cname_and_nojekyll_survive_a_rebuild(prose_site):
    site = prose_site()
    build(site)
    out = site / "_site"
    subprocess.run(["git", "init", "--quiet", str(out)], check=True)
    (out / "CNAME").write_text("circuits.example.org\n")
    (out / ".nojekyll").write_text("")
    kept = {rel: data for rel, data in tree(out).items() if rel.startswith(".git/")}
    assert kept
    build(site)  # nothing changed: a no-op build must not see them as a change either
    (site / "content" / "prose.md").write_text("---\ntitle: Changed\n---\nNew text.\n")
    build(site)
    after = tree(out)
    assert "New text." in after["prose/index.html"].decode()
    assert after["CNAME"] == b"circuits.example.org\n" and after[".nojekyll"] == b""
    assert {rel: data for rel, data in after.items() if rel.startswith(".git/")} == kept
    assert strays(site) == []


def test_an_older_circuitpress_site_folder_output_is_accepted(prose_site):
    site = prose_site()
    build(site)
    shutil.rmtree(site / ".circuitpress")  # no manifest: as an older circuitpress left it
    (site / "_site" / "gone" / "index.html").parent.mkdir()
    (site / "_site" / "gone" / "index.html").write_text("an article since deleted")
    build(site)
    assert not (site / "_site" / "gone").exists()
    assert (site / "_site" / "prose" / "index.html").is_file()


@pytest.mark.parametrize("option", ["--out", "--target"])
def test_os_errors_on_the_output_path_are_one_line(prose_site, tmp_path, option):
    site = prose_site()
    (tmp_path / "afile.txt").write_text("a file")
    command = "build" if option == "--out" else "publish"
    targets = [str(tmp_path / "afile.txt" / "sub"), str(tmp_path / ("a" * 300)), "afile.txt/sub"]
    if Path("/proc/self").is_dir():
        targets.append("/proc/x/y")
    for target in targets:
        cwd = os.getcwd()
        os.chdir(tmp_path)  # the relative target names the same file
        try:
            code, lines = run(command, str(site), option, target)
        finally:
            os.chdir(cwd)
        assert code == 1, (target, lines)
        assert len(lines) == 1 and lines[0].startswith(f"{option} {target}:1: "), lines
    assert (tmp_path / "afile.txt").read_text() == "a file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile.txt", "site"]


def test_an_output_that_is_a_file_is_refused(prose_site, tmp_path):
    site = prose_site()  # (click already refuses an existing file as --out: a usage error)
    (tmp_path / "out.html").write_text("mine")
    code, lines = run("publish", str(site), "--target", str(tmp_path / "out.html"))
    assert code == 1, lines
    assert lines == [
        f"--target {tmp_path / 'out.html'}:1: is a file, not a folder (give a folder for the site)"
    ]
    assert (tmp_path / "out.html").read_text() == "mine"


def test_strays_of_a_killed_build_are_removed_and_a_missing_site_restored(prose_site):
    site = prose_site()
    build(site)
    reference = tree(site / "_site")
    pid = dead_pid()
    # Killed while writing: a full temporary copy beside _site.
    (site / f"._site.new-{pid}-xxxxxxxx" / "prose").mkdir(parents=True)
    (site / f"._site.new-{pid}-xxxxxxxx" / "prose" / "index.html").write_text("half")
    # Killed between the two renames of an earlier swap: _site absent, the old site beside it.
    os.rename(site / "_site", site / f"._site.old-{pid}")
    build(site)
    assert tree(site / "_site") == reference
    assert strays(site) == []
    # The same with a change to build: the restored site is then replaced as usual.
    (site / f"._site.new-{pid}-yyyyyyyy").mkdir()
    os.rename(site / "_site", site / f"._site.old-{pid}-zzzzzzzz")
    (site / "content" / "prose.md").write_text("---\ntitle: Changed\n---\nNew text.\n")
    build(site)
    assert "New text." in (site / "_site" / "prose" / "index.html").read_text()
    assert strays(site) == []


def test_strays_beside_an_out_folder_are_removed_before_the_build(prose_site, tmp_path):
    site = prose_site()
    out = tmp_path / "homepage"
    build(site, "--out", str(out))
    pid = dead_pid()
    (tmp_path / f".homepage.new-{pid}-qqqqqqqq").mkdir()
    os.rename(out, tmp_path / f".homepage.old-{pid}-qqqqqqqq")
    # A broken page stops the build, but only after the output folder was put right.
    (site / "content" / "prose.md").write_text("---\ntitle: [broken\n---\n")
    code, lines = run("build", str(site), "--out", str(out))
    assert code == 1 and lines[0].startswith("content/prose.md:"), lines
    assert (out / "prose" / "index.html").is_file()
    assert strays(tmp_path) == []


@pytest.mark.parametrize("option", ["--out", "--target"])
def test_another_sites_output_is_judged_by_that_sites_manifest(prose_site, tmp_path, option):
    site_b = prose_site()
    site_a = tmp_path / "a"
    shutil.copytree(site_b, site_a)
    build(site_b)
    (site_b / "_site" / "static").mkdir(exist_ok=True)
    (site_b / "_site" / "static" / "notes.txt").write_text("notes")
    command = "build" if option == "--out" else "publish"
    code, lines = run(command, str(site_a), option, str(site_b / "_site"))
    assert code == 1 and len(lines) == 1, lines
    assert "static/notes.txt" in lines[0], lines
    assert (site_b / "_site" / "static" / "notes.txt").read_text() == "notes"


def test_folders_named_like_strays_beside_the_output_are_the_users(prose_site, tmp_path):
    site = prose_site()
    rv = tmp_path / "rv"
    rv.mkdir()
    out = rv / "www"
    build(site, "--out", str(out))
    os.rename(out, rv / ".www.old-2024-jan")  # the user keeps last year's site
    (rv / ".www.new-homepage").mkdir()
    (rv / ".www.new-homepage" / "index.html").write_text("my next homepage")
    before = {p.name: tree(p) for p in rv.iterdir()}
    build(site, "--out", str(out))
    assert (out / "prose" / "index.html").is_file()
    assert {p.name: tree(p) for p in rv.iterdir() if p.name != "www"} == before


def test_a_fresh_clone_publishing_docs_is_built_into_its_docs_folder(prose_site):
    site = prose_site()
    code, lines = run("build", str(site), "--out", str(site / "docs"))
    assert code == 0, lines
    shutil.rmtree(site / ".circuitpress")  # a fresh clone: the state folder is not committed
    (site / "content" / "prose.md").write_text("---\ntitle: Changed\n---\nNew text.\n")
    code, lines = run("build", str(site), "--out", str(site / "docs"))
    assert code == 0, lines
    assert "New text." in (site / "docs" / "prose" / "index.html").read_text()
    (site / "docs" / "notes.txt").write_text("mine")
    shutil.rmtree(site / ".circuitpress")
    code, lines = run("build", str(site), "--out", str(site / "docs"))
    assert code == 1 and "notes.txt" in lines[0], lines
    assert (site / "docs" / "notes.txt").read_text() == "mine"
