"""The writer: the whole site swapped in at once, what killed builds left put right."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from circuitpress.build import recovery, write
from circuitpress.build.write import SiteWriter, read_manifest, swap_in
from circuitpress.errors import UserError


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def site_folder(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "circuitpress.toml").write_text('[site]\ntitle = "T"\n')
    return root


def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    code = "import os; print(os.getpid())"
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(done.stdout)


@pytest.fixture(params=["exchange", "two renames"])
def swap_kind(request, monkeypatch):
    """Run a test with the atomic exchange and with the fallback other platforms use."""
    if request.param == "two renames":
        monkeypatch.setattr(write, "_exchange", lambda a, b: False)
    return request.param


def test_commit_swaps_in_whole_site(tmp_path, swap_kind):
    root = site_folder(tmp_path)
    out = root / "_site"
    w = SiteWriter(out)
    w.write("index.html", "<p>first</p>")
    w.write("old/index.html", "gone soon")
    w.commit()
    assert read_manifest(root, out) == {"index.html", "old/index.html"}
    w = SiteWriter(out)
    w.write("index.html", "<p>new</p>")
    rel = w.asset(b"\x89PNG...", "png", name="conv1 3")
    assert rel.startswith("assets/figures/conv1-3-") and rel.endswith(".png")
    w.commit()
    assert tree(out) == {"index.html": b"<p>new</p>", rel: b"\x89PNG..."}
    assert read_manifest(root, out) == {"index.html", rel}
    assert sorted(p.name for p in root.iterdir()) == [".circuitpress", "_site", "circuitpress.toml"]


def test_failed_commit_leaves_previous_site(tmp_path, swap_kind):
    root = site_folder(tmp_path)
    out = root / "_site"
    first = SiteWriter(out)
    first.write("index.html", "previous")
    first.commit()
    w = SiteWriter(out)
    w.write("index.html", "next")
    w.copy("static/missing.png", root / "static" / "missing.png")
    with pytest.raises(UserError, match="cannot read static/missing.png") as err:
        w.commit()
    assert err.value.file == "static/missing.png"
    assert tree(out) == {"index.html": b"previous"}
    assert read_manifest(root, out) == {"index.html"}
    assert not [p for p in root.iterdir() if p.name.startswith("._site")]


def test_users_entries_are_carried_over(tmp_path, swap_kind):
    root = site_folder(tmp_path)
    out = root / "_site"
    w = SiteWriter(out)
    w.write("index.html", "one")
    w.commit()
    (out / ".git" / "refs").mkdir(parents=True)
    (out / ".git" / "HEAD").write_text("ref: refs/heads/gh-pages\n")
    (out / "CNAME").write_text("circuits.example.org\n")
    (out / ".nojekyll").write_text("")
    w = SiteWriter(out)
    w.write("index.html", "two")
    w.commit()
    assert tree(out) == {
        ".git/HEAD": b"ref: refs/heads/gh-pages\n",
        ".nojekyll": b"",
        "CNAME": b"circuits.example.org\n",
        "index.html": b"two",
    }
    assert read_manifest(root, out) == {"index.html"}, "the user's entries are not the build's"


def test_a_folder_without_a_manifest_is_the_users(tmp_path):
    root = site_folder(tmp_path)
    out = tmp_path / "homepage"
    (out / "photos").mkdir(parents=True)
    (out / "index.html").write_text("my homepage")
    (out / "photos" / "a.jpg").write_bytes(b"jpg")
    w = SiteWriter(out, root=root, shown="--out homepage")
    w.write("index.html", "site")
    with pytest.raises(UserError) as err:
        w.commit()
    assert err.value.format().startswith("--out homepage:1: is a folder with other files in it")
    assert tree(out) == {"index.html": b"my homepage", "photos/a.jpg": b"jpg"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["homepage", "site"]


def test_an_older_builds_site_folder_is_accepted_only_when_it_holds_build_files(tmp_path):
    root = site_folder(tmp_path)
    out = root / "_site"  # built by a circuitpress that kept no manifest
    for rel in ("index.html", "a/index.html", "404.html", "feed.xml", "assets/theme/x.css"):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("old build")
    (out / "notes.txt").write_text("mine")
    w = SiteWriter(out)
    w.write("index.html", "new")
    with pytest.raises(UserError, match="other files in it: notes.txt") as err:
        w.commit()
    assert err.value.file == "_site"
    (out / "notes.txt").unlink()
    w.commit()
    assert tree(out) == {"index.html": b"new"}


def test_stray_trees_of_dead_builds_are_removed(tmp_path):
    root = site_folder(tmp_path)
    out = root / "_site"
    w = SiteWriter(out)
    w.write("index.html", "one")
    w.commit()
    pid = dead_pid()
    stray = root / f"._site.new-{pid}-xxxxxxxx"
    (stray / "a").mkdir(parents=True)
    (stray / "a" / "index.html").write_text("half written")
    legacy = root / "._site.new-k2j9_x0q"  # an earlier circuitpress's name (no PID)
    (legacy / "assets" / "theme").mkdir(parents=True)  # a whole site: index.html and theme
    (legacy / "index.html").write_text("old")
    (legacy / "assets" / "theme" / "a.css").write_text("css")
    live = root / f"._site.new-{os.getppid()}-yyyyyyyy"  # a live process's: in use, left alone
    live.mkdir()
    write.recover_output(out)
    names = sorted(p.name for p in root.iterdir() if p.name.startswith("._site"))
    # Holding the folder's lock, no live build can be writing there: even the live PID goes.
    assert names == []
    live.mkdir()
    with recovery.folder_lock(root):  # another build holds the lock: only PIDs decide
        recovery.recover(out, locked=False)
    assert [p.name for p in root.iterdir() if p.name.startswith("._site")] == [live.name]
    assert tree(out) == {"index.html": b"one"}


def test_a_missing_output_is_restored_from_its_old_tree(tmp_path):
    root = site_folder(tmp_path)
    out = root / "_site"
    w = SiteWriter(out)
    w.write("index.html", "one")
    w.commit()
    pid = dead_pid()
    # Killed between the two renames: the old site beside, the new one not yet in place.
    os.rename(out, root / f"._site.old-{pid}-abcabcab")
    (root / f"._site.new-{pid}-abcabcab").mkdir()
    (root / f"._site.new-{pid}-abcabcab" / "index.html").write_text("two")
    (root / f"._site.new-{pid}-abcabcab" / "CNAME").write_text("example.org")  # carried already
    write.recover_output(out)
    assert tree(out) == {"index.html": b"one", "CNAME": b"example.org"}
    assert not [p for p in root.iterdir() if p.name.startswith("._site")]


def test_swap_in_exchanges_atomically_where_it_can(tmp_path):
    old, new = tmp_path / "out", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "a").write_text("old")
    (new / "a").write_text("new")
    replaced = swap_in(new, old)
    assert (old / "a").read_text() == "new"
    assert replaced is not None and (replaced / "a").read_text() == "old"
    if write._renameat2() is not None and sys.platform.startswith("linux"):
        assert replaced == new, "Linux swaps the names in one renameat2(RENAME_EXCHANGE)"


def test_long_names_keep_their_temporary_names_short(tmp_path):
    root = site_folder(tmp_path)
    out = tmp_path / ("x" * 250)
    w = SiteWriter(out, root=root, shown="--out long")
    w.write("index.html", "ok")
    w.commit()
    w.commit()
    assert tree(out) == {"index.html": b"ok"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "x" * 250]


def test_a_stray_holding_the_users_entries_gives_them_back(tmp_path):
    root = site_folder(tmp_path)
    out = root / "_site"
    w = SiteWriter(out)
    w.write("index.html", "one")
    w.commit()
    # Killed after moving .git into the new tree, before the exchange.
    stray = root / f"._site.new-{dead_pid()}-abcabcab"
    (stray / ".git").mkdir(parents=True)
    (stray / ".git" / "HEAD").write_text("ref")
    (stray / "index.html").write_text("two")
    w.commit()
    assert tree(out) == {".git/HEAD": b"ref", "index.html": b"one"}
    assert not [p for p in root.iterdir() if p.name.startswith("._site")]


def test_the_folder_is_checked_again_at_the_swap(tmp_path):
    root = site_folder(tmp_path)
    out = tmp_path / "public"
    write.check_output_folder(root, out, "--out public")
    w = SiteWriter(out, root=root, shown="--out public")
    w.write("index.html", "one")
    w.commit()
    write.check_output_folder(root, out, "--out public")  # now circuitpress's own
    w = SiteWriter(out, root=root, shown="--out public")
    w.write("index.html", "two")
    (out / "late.txt").write_text("written during the build")
    with pytest.raises(UserError, match="other files in it: late.txt") as err:
        w.commit()
    assert err.value.file == "--out public"
    assert tree(out) == {"index.html": b"one", "late.txt": b"written during the build"}


def test_a_page_where_the_folder_keeps_the_users_cname_is_refused(tmp_path):
    root = site_folder(tmp_path)
    out = root / "_site"
    w = SiteWriter(out)
    w.write("index.html", "one")
    w.commit()
    (out / "CNAME").write_text("example.org")
    w = SiteWriter(out)
    w.write("CNAME/index.html", "a page named CNAME")
    with pytest.raises(UserError, match="CNAME"):
        w.commit()
    assert tree(out) == {"CNAME": b"example.org", "index.html": b"one"}


def built_tree(path: Path, *extra: str) -> None:
    """What a build writes (index.html, the theme's assets), and `extra` files."""
    for rel in ("index.html", "a/index.html", "assets/theme/site.css", *extra):
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(f"{rel} of a build")


def test_folders_of_the_user_named_like_strays_are_left_alone(tmp_path):
    parent = tmp_path / "rv"
    parent.mkdir()
    out = parent / "www"
    pid = dead_pid()
    users = {
        ".www.old-2024-jan": "notes.txt",  # no mkdtemp suffix: never this version's name
        ".www.new-homepage": "cv.pdf",  # an earlier version's name, but not a site
        f".www.old-{pid}": "photo.jpg",  # ditto
        f".www.new-{pid}-abc": "draft.md",  # a suffix mkdtemp does not make
    }
    for name, rel in users.items():
        built_tree(parent / name, rel)
    theirs = {name: tree(parent / name) for name in users}
    write.recover_output(out)  # www missing: nothing here may be taken for its old tree
    assert not os.path.lexists(out)
    assert {name: tree(parent / name) for name in users} == theirs
    root = site_folder(tmp_path)
    w = SiteWriter(out, root=root, shown="--out www")
    w.write("index.html", "site")
    w.commit()
    w.commit()
    assert {name: tree(parent / name) for name in users} == theirs
    assert sorted(p.name for p in parent.iterdir()) == sorted([*users, "www"])


def test_an_earlier_versions_old_tree_is_restored_only_when_it_is_a_site(tmp_path):
    root = site_folder(tmp_path)
    out = root / "_site"
    pid = dead_pid()
    built_tree(root / f"._site.old-{pid}", "sitemap.xml", "static/x.png")
    write.recover_output(out)
    assert tree(out)["index.html"] == b"index.html of a build"
    assert not [p for p in root.iterdir() if p.name.startswith("._site")]
    shutil.rmtree(out)
    (root / f"._site.old-{pid}" / "assets" / "theme").mkdir(parents=True)
    (root / f"._site.old-{pid}" / "index.html").write_text("no theme's files: not a site")
    shutil.rmtree(root / f"._site.old-{pid}" / "assets" / "theme")
    write.recover_output(out)
    assert not os.path.lexists(out)
    assert tree(root / f"._site.old-{pid}") == {"index.html": b"no theme's files: not a site"}


def test_files_added_while_the_tree_is_written_are_kept(tmp_path, monkeypatch):
    root = site_folder(tmp_path)
    out = root / "_site"
    w = SiteWriter(out)
    w.write("index.html", "one")
    w.commit()
    write_tree = SiteWriter._write_tree

    def slow_write(self: SiteWriter, tmp: Path) -> None:
        write_tree(self, tmp)
        (out / "late.txt").write_text("written during the build")

    monkeypatch.setattr(SiteWriter, "_write_tree", slow_write)
    w = SiteWriter(out)
    w.write("index.html", "two")
    with pytest.raises(UserError, match="other files in it: late.txt"):
        w.commit()
    assert tree(out) == {"index.html": b"one", "late.txt": b"written during the build"}
    assert read_manifest(root, out) == {"index.html"}
    assert not [p for p in root.iterdir() if p.name.startswith("._site")]


def test_os_junk_files_do_not_make_a_folder_the_users(tmp_path):
    root = site_folder(tmp_path)
    out = root / "_site"
    w = SiteWriter(out)
    w.write("index.html", "one")
    w.write("a/index.html", "a")
    w.commit()
    for rel in (".DS_Store", "a/._index.html", "a/Thumbs.db", "desktop.ini"):
        (out / rel).write_bytes(b"junk")
    w.write("index.html", "two")
    w.commit()
    assert tree(out) == {"index.html": b"two", "a/index.html": b"a"}


def test_a_page_named_cname_is_the_builds(tmp_path):
    root = site_folder(tmp_path)
    out = root / "_site"
    for text in ("one", "two"):
        w = SiteWriter(out)
        w.write("index.html", text)
        w.write("CNAME/index.html", "a page named CNAME")
        w.commit()
    assert tree(out) == {"index.html": b"two", "CNAME/index.html": b"a page named CNAME"}
    assert read_manifest(root, out) == {"index.html", "CNAME/index.html"}
    (out / ".git").write_text("gitdir: elsewhere")  # a file named .git: not the user's folder
    w = SiteWriter(out)
    w.write("index.html", "three")
    with pytest.raises(UserError, match=r"other files in it: \.git"):
        w.commit()


def test_a_huge_folder_is_refused_without_walking_it_all(tmp_path, monkeypatch):
    root = site_folder(tmp_path)
    home = tmp_path / "home"
    for i in range(50):
        (home / f"d{i:02}").mkdir(parents=True)
        (home / f"d{i:02}" / "f.txt").write_text("mine")
    seen: list[str] = []
    walk = os.walk

    def counting_walk(*args, **kwargs):
        for entry in walk(*args, **kwargs):
            seen.append(entry[0])
            yield entry

    monkeypatch.setattr(write.os, "walk", counting_walk)
    with pytest.raises(UserError, match="d00/f.txt, d01/f.txt, d02/f.txt and more"):
        write.check_output_folder(root, home, "--out home")
    assert len(seen) < 10


def test_a_manifest_less_folder_inside_the_site_folder_is_accepted_if_circuitpress_built_it(
    tmp_path,
):
    root = site_folder(tmp_path)
    docs = root / "docs"  # a fresh clone of a repository that publishes docs/
    built_tree(docs, "404.html")
    (docs / "index.html").write_text('<head><meta name="generator" content="circuitpress">')
    write.check_output_folder(root, docs, "--out docs")
    (docs / "index.html").write_text("<head><title>my own docs</title>")
    with pytest.raises(UserError, match="no record of building") as err:
        write.check_output_folder(root, docs, "--out docs")
    assert err.value.format().startswith("--out docs:1: ")
    (docs / "index.html").write_text('<meta name="generator" content="circuitpress">')
    (docs / "guide.txt").write_text("mine")
    with pytest.raises(UserError, match="other files in it: guide.txt"):
        write.check_output_folder(root, docs, "--out docs")
    outside = tmp_path / "docs"
    shutil.copytree(docs, outside)
    (outside / "guide.txt").unlink()
    with pytest.raises(UserError, match="other files in it"):  # outside the site: refused
        write.check_output_folder(root, outside, "--out ../docs")


def test_files_deep_in_new_folders_and_beside_them_are_all_written(tmp_path: Path) -> None:
    """A file two folders down comes first (sorted), then one in the folder between: the
    writer must know that folder exists already."""
    root = site_folder(tmp_path)
    writer = SiteWriter(root / "_site")
    files = {"a/b/c.html": b"c", "a/x.html": b"x", "a/b/d/e.html": b"e", "z.html": b"z"}
    for rel, data in files.items():
        writer.write(rel, data)
    writer.commit()
    assert tree(root / "_site") == files
    assert writer.manifest is not None and sorted(writer.manifest) == sorted(files)
