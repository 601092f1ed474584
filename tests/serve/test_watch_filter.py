"""The watcher rebuilds for files the build reads, never for the files editors and tools
write beside them while saving (so the rebuild message never names one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from circuitpress.serve.watch import SiteFilter

TEMPORARY = [
    ".hello.md.swp",  # vim
    "4913",  # vim's write test
    "hello.md~",  # backups
    "hello.md.~1~",
    ".#hello.md",  # emacs lock
    "#hello.md#",  # emacs autosave
    "flycheck_hello.md",  # emacs flycheck
    "hello.md___jb_tmp___",  # JetBrains
    "hello.md.kate-swp",
    ".~lock.hello.md#",  # LibreOffice
    "hello.md.save",  # nano
    ".goutputstream-ABC123",  # gedit
    "sedXy12Zq",  # sed -i
    "hello.md.tmp",
    "hello.md.tmp4711",
    "hello.md.tmp.a1b2",
    "tmpk3j2h1g0",  # Python's tempfile
    "hello.md.orig",
    "hello.md.rej",
    "hello.md.bak",
    ".DS_Store",
]
READ_BY_THE_BUILD = ["hello.md", "template.md", "sediment.md", "notes-on-tmp.md", "saved.md"]


@pytest.mark.parametrize("name", TEMPORARY)
def test_editor_temporary_files_are_ignored(tmp_path: Path, name: str) -> None:
    assert not SiteFilter(tmp_path).accepts(tmp_path / "content" / name)


@pytest.mark.parametrize("name", READ_BY_THE_BUILD)
def test_articles_are_watched(tmp_path: Path, name: str) -> None:
    assert SiteFilter(tmp_path).accepts(tmp_path / "content" / name)
