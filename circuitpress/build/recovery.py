"""Recovery from killed builds: the trees a build leaves beside its output, and the lock.

A build writes its new tree beside the output as `.NAME.new-PID-XXXXXXXX`; a two-rename swap
parks the replaced tree as `.NAME.old-PID-XXXXXXXX`. A killed build can leave either behind.
Every build first puts a missing output back from its `.NAME.old-*` and removes the stray trees
of dead builds (their PID is not alive), moving back any `.git`/`CNAME`/`.nojekyll` a stray
holds. Only names of exactly this form are taken for strays; an earlier version's
`.NAME.old-PID` and `.NAME.new-XXXXXXXX` only when the tree holds a whole site and nothing else
(a user may name a folder so). Builds that replace outputs in the same folder take turns
through an flock on that folder, so a stray seen while holding it cannot belong to a live build.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from circuitpress.build.ownership import PRESERVED, entries, is_users, written_by_a_build

_TEMP_CHARS = "[a-z0-9_]{8}"  # tempfile.mkdtemp's random part
# The names this version gives its trees beside the output: `.STEM.new-PID-XXXXXXXX`, and the
# replaced tree of a two-rename swap, `.STEM.old-PID-XXXXXXXX`.
_STRAY = re.compile(rf"(?P<kind>new|old)-(?P<pid>[0-9]+)-{_TEMP_CHARS}$")
# The names an earlier version gave them: `.NAME.old-PID` and `.NAME.new-XXXXXXXX`. A user may
# name a folder so too, so such a tree is touched only when it holds a site and nothing else.
_LEGACY = re.compile(rf"(?:(?P<kind>old)-(?P<pid>[0-9]+)|(?P<new>new)-{_TEMP_CHARS})$")
# Trees this process is writing or removing right now: a stray with our own PID that is not in
# here was left by an earlier build of this process (or of a process whose PID we reuse).
ACTIVE: set[Path] = set()


def stem(out: Path) -> str:
    """The output's name in its temporary names: short enough that `.STEM.new-PID-XXXXXXXX`
    stays under the 255 bytes a file name may have, and distinct for distinct long names."""
    name = out.name
    if len(name.encode()) <= 100:
        return name
    return name[:60] + "~" + hashlib.sha256(name.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class _Stray:
    path: Path
    kind: str  # "new": a tree being written (or, after an exchange, the replaced one); "old"
    pid: int | None  # None: an earlier circuitpress that did not put its PID in the name
    legacy: bool = False  # a name an earlier circuitpress gave (or a user's folder named so)


def _strays(out: Path) -> list[_Stray]:
    prefix = f".{stem(out)}."
    try:
        names = [e.name for e in os.scandir(out.parent) if e.name.startswith(prefix)]
    except OSError:
        return []  # no parent folder (yet), or not a folder: nothing can be stray there
    found = []
    for name in sorted(names):
        m = _STRAY.match(name, len(prefix))
        if m is not None:
            found.append(_Stray(out.parent / name, m["kind"], int(m["pid"])))
            continue
        m = _LEGACY.match(name, len(prefix))
        if m is None:
            continue
        if m["kind"]:
            found.append(_Stray(out.parent / name, "old", int(m["pid"]), legacy=True))
        else:
            found.append(_Stray(out.parent / name, "new", None, legacy=True))
    return found


def alive(pid: int) -> bool:
    if pid <= 0 or os.name == "nt":  # os.kill(pid, 0) would terminate it on Windows: keep it
        return pid > 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except (OverflowError, OSError):
        return False
    return True


def _is_stale(stray: _Stray, locked: bool) -> bool:
    if stray.path in ACTIVE:
        return False
    if stray.legacy:
        # An earlier circuitpress took no lock: only its PID, where the name has one, tells
        # whether it is still at work. And the name alone does not make the folder a build.
        if stray.pid is not None and stray.pid != os.getpid() and alive(stray.pid):
            return False
        return _holds_a_site(stray.path)
    if stray.pid is None or stray.pid == os.getpid():
        return stray.pid is not None  # ours but not in use (see ACTIVE)
    # Holding the folder's lock, no live build of this version is between its check and its
    # clean-up here, so even a live PID (reused by an unrelated process) left this one.
    return locked or not alive(stray.pid)


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[bool]:
    """Builds that replace outputs in `folder` take turns: an flock on the folder itself, so
    there is no lock file to leave behind. Yields whether the lock is held (not where the
    platform or file system has no flock)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield False
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = True
        except OSError:
            held = False
        yield held
    finally:
        os.close(fd)  # closing releases the lock


def recover_output(out: Path) -> None:
    """Undo what killed builds left beside `out`: put a missing `out` back from its old tree,
    remove stray trees. Raises OSError when the old tree cannot be put back."""
    with folder_lock(out.parent) as locked:
        recover(out, locked)


def recover(out: Path, locked: bool) -> None:
    stale = [s for s in _strays(out) if _is_stale(s, locked)]
    if not os.path.lexists(out):
        # Killed between the two renames of a swap: the old tree is the last complete site.
        olds = [s for s in stale if s.kind == "old" and _is_tree(s.path)]
        if olds:
            newest = max(olds, key=lambda s: s.path.stat().st_mtime_ns)
            os.rename(newest.path, out)
            stale.remove(newest)
    for stray in stale:
        discard(stray.path, out)


def _is_tree(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _holds_a_site(tree: Path) -> bool:
    """Whether `tree` is a whole build and nothing else: every file at a path a build writes,
    an `index.html` and the theme's assets. (The user's `.git`, `CNAME`, `.nojekyll` may be in
    it: a build moves them into its new tree.)"""
    if not _is_tree(tree):
        return False
    try:
        if not stat.S_ISREG(os.lstat(tree / "index.html").st_mode):
            return False
        if not stat.S_ISDIR(os.lstat(tree / "assets" / "theme").st_mode):
            return False
        for rel in entries(tree):
            if not written_by_a_build(rel):
                return False
    except OSError:
        return False
    return True


def discard(tree: Path, out: Path) -> None:
    """Remove a temporary or replaced tree, after moving the user's entries it holds back into
    `out`. A tree whose entries cannot be moved back (or `out` is missing: recovery first puts
    the old tree back there) is left for the next build to retry."""
    if not os.path.lexists(tree):
        return
    if not _is_tree(tree):
        with contextlib.suppress(OSError):
            tree.unlink()
        return
    for name in PRESERVED:
        if is_users(tree, name) and not os.path.lexists(out / name):
            try:
                os.rename(tree / name, out / name)
            except OSError:
                return  # never delete them: the next build tries again
    shutil.rmtree(tree, onerror=_make_writable_and_retry)
    if tree.exists():
        shutil.rmtree(tree, ignore_errors=True)


def _make_writable_and_retry(func: Callable[..., Any], path: str, _exc: object) -> None:
    # A read-only folder inside the tree (copied from static/) blocks removing its entries.
    with contextlib.suppress(OSError):
        os.chmod(os.path.dirname(path), 0o755)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o755)
        func(path)
