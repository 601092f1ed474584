"""What the up-to-date check looks at: every file a build may publish, never a folder outside."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from circuitpress.build.stamp import input_stamp


def stamp(root: Path) -> str:
    return input_stamp(root, root / "_site", {}, [])


def test_any_file_beside_a_page_counts_by_content(tmp_path: Path) -> None:
    (tmp_path / "content").mkdir()
    picture = tmp_path / "content" / "pic.webp"
    picture.write_bytes(b"one")
    before = stamp(tmp_path)
    picture.write_bytes(b"two")  # same size, any image type
    assert stamp(tmp_path) != before


def test_a_linked_folder_outside_the_site_is_not_walked(tmp_path: Path) -> None:
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    (site / "data").mkdir(parents=True)
    elsewhere.mkdir()
    for i in range(200):
        (elsewhere / f"{i}.png").write_bytes(b"x" * 10)
    (site / "data" / "big").symlink_to(elsewhere, target_is_directory=True)
    before = stamp(site)
    (elsewhere / "0.png").write_bytes(b"changed")  # never read: not published
    start = time.perf_counter()
    assert stamp(site) == before
    assert time.perf_counter() - start < 1.0
    (site / "data" / "big").unlink()
    (site / "data" / "big").symlink_to(tmp_path, target_is_directory=True)
    assert stamp(site) != before  # where the link points still counts


def test_a_broken_link_does_not_crash_it(tmp_path: Path) -> None:
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "gone.md").symlink_to(tmp_path / "nowhere.md")
    assert stamp(tmp_path)


def test_a_page_named_cname_is_part_of_the_output_check(prose_site) -> None:
    """Only a CNAME *file* is the user's: the folder a page `CNAME.md` builds is the site's, so
    removing its page from the output makes the next build write it again."""
    from click.testing import CliRunner

    from circuitpress.cli import cli

    site = prose_site({"content/CNAME.md": "---\ntitle: C\n---\n\nText.\n"})
    assert CliRunner().invoke(cli, ["build", str(site), "--quiet"]).exit_code == 0
    page = site / "_site" / "CNAME" / "index.html"
    page.unlink()
    result = CliRunner().invoke(cli, ["build", str(site)])
    assert result.exit_code == 0, result.output
    assert "up to date" not in result.output and page.is_file()


def _manifest_by_walk(out: Path) -> dict[str, list[int]]:
    """manifest_of as first written, with os.walk."""
    import os

    from circuitpress.build.ownership import is_users

    files: dict[str, list[int]] = {}
    for dirpath, dirnames, filenames in os.walk(out):
        if Path(dirpath) == out:
            dirnames[:] = [d for d in dirnames if not is_users(out, d)]
            filenames = [f for f in filenames if not is_users(out, f)]
        for name in filenames:
            st = (Path(dirpath) / name).lstat()
            files[(Path(dirpath) / name).relative_to(out).as_posix()] = [st.st_size, st.st_mtime_ns]
    return files


def test_the_output_manifest_is_os_walks(tmp_path: Path) -> None:
    from circuitpress.build.stamp import manifest_of

    out = tmp_path / "_site"
    for rel in ("index.html", "a/index.html", "a/b/c.txt", "CNAME/index.html", "z.css"):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(rel)
    (out / ".git" / "objects").mkdir(parents=True)
    (out / ".git" / "HEAD").write_text("ref")
    (out / ".nojekyll").write_text("")
    (out / "a" / "link.html").symlink_to(out / "index.html")
    (out / "a" / "broken").symlink_to(tmp_path / "nowhere")
    (out / "linked-folder").symlink_to(out / "a", target_is_directory=True)
    got = manifest_of(out)
    assert got == _manifest_by_walk(out)
    assert list(got) == list(_manifest_by_walk(out))  # the same order, too
    assert "CNAME/index.html" in got and ".nojekyll" not in got and ".git/HEAD" not in got
    assert manifest_of(tmp_path / "missing") == {}


def test_circuitpress_code_counts_even_when_a_copy_keeps_size_and_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """code_signature reads file metadata, not bytes: an edit that keeps the size and puts
    the modification time back (as `cp -p` or `rsync -a` would) still changes it."""
    import os
    import types

    from circuitpress.build import stamp as stamp_module

    package, themes = tmp_path / "circuitpress", tmp_path / "themes"
    package.mkdir()
    themes.mkdir()
    code = package / "engine.py"
    code.write_text("X = 1\n")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "engine.pyc").write_bytes(b"compiled")
    stand_in = types.SimpleNamespace(__file__=str(package / "__init__.py"), __version__="0")
    monkeypatch.setattr(stamp_module, "circuitpress", stand_in)
    monkeypatch.setattr(stamp_module, "builtin_themes", lambda: themes)

    def signature() -> str:
        stamp_module.code_signature.cache_clear()
        return stamp_module.code_signature()

    try:
        before = signature()
        assert signature() == before  # nothing changed
        (package / "__pycache__" / "engine.pyc").write_bytes(b"recompiled")
        assert signature() == before  # bytecode is not code
        kept = os.stat(code)
        time.sleep(0.01)
        code.write_text("X = 2\n")  # same size
        os.utime(code, ns=(kept.st_atime_ns, kept.st_mtime_ns))
        assert signature() != before
    finally:
        stamp_module.code_signature.cache_clear()


def test_a_build_reads_each_page_once_and_parses_what_the_stamp_hashed(
    prose_site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The up-to-date check reads every page to hash it; the build parses those bytes, so a
    page is never read twice and the stamp always describes the text that was built."""
    import builtins

    from circuitpress.build.pipeline import build_site

    site = prose_site(
        {f"content/p{i}.md": f"---\ntitle: Page {i}\n---\n\nText {i}.\n" for i in range(3)}
    )
    reads: list[str] = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(file).endswith(".md"):
            reads.append(Path(file).name)
        return real_open(file, *args, **kwargs)

    real_os_open = os.open

    def counting_os_open(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(path).endswith(".md"):
            reads.append(Path(path).name)
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr("io.open", counting_open)
    monkeypatch.setattr(os, "open", counting_os_open)
    build_site(site)
    assert {"p0.md", "p1.md", "p2.md"} <= set(reads)
    assert len(reads) == len(set(reads)), reads
    assert "Text 1." in (site / "_site" / "p1" / "index.html").read_text()


def test_the_manifest_the_writer_notes_is_the_one_a_listing_gives(prose_site) -> None:
    """The stamp keeps the manifest the writer noted while writing, not a listing of the
    output; the next build's up-to-date check lists the output and compares the two, so they
    must agree file for file: pages, copied static files, generated files, with the user's own
    CNAME and .git carried over and left out of both."""
    import json

    from circuitpress.build.pipeline import build_site
    from circuitpress.build.stamp import STAMP_FILE, manifest_of

    site = prose_site({"content/notes/deep.md": "---\ntitle: Deep\n---\n\nText.\n"})
    (site / "static" / "img").mkdir(parents=True)
    (site / "static" / "img" / "a.png").write_bytes(b"\x89PNG not really")
    first = build_site(site)
    assert first.manifest is not None and "static/img/a.png" in first.manifest
    out = site / "_site"
    (out / "CNAME").write_text("example.org\n")
    (out / ".git").mkdir()
    (out / ".git" / "HEAD").write_text("ref: refs/heads/gh-pages\n")
    (site / "content" / "prose.md").write_text(
        (site / "content" / "prose.md").read_text() + "\nMore.\n"
    )
    report = build_site(site)
    recorded = json.loads((site / STAMP_FILE).read_text())["manifest"]
    assert report.manifest == recorded == manifest_of(out)
    assert (out / "CNAME").exists() and "CNAME" not in recorded
    assert build_site(site).up_to_date
