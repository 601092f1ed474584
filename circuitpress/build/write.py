"""Writing the site: into a temporary folder that replaces the output only when all succeeded.

Three rules keep the author's files and the published site safe.

Ownership. An output folder is circuitpress's only if circuitpress wrote it. Each build records
the files it wrote in a manifest, `SITE/.circuitpress/outputs/<hash of the folder>.json`, and a
later build replaces a folder only when every file in it is listed there. The manifest lives in
the site's state folder, not in the output, so nothing has to be left out of a publish, an
upload of `_site` by another tool or the link checker, and a folder moved or copied by hand is
not mistaken for a build. Three entries a user keeps at the top of an output folder are no
part of the site and are carried over into each new tree: a folder `.git` (a checkout of the
published branch) and the files `CNAME` and `.nojekyll` (GitHub Pages settings); the junk files
an OS drops anywhere (`.DS_Store`, `._*`, `Thumbs.db`, `desktop.ini`) are no one's. When the
folder is another site's `_site`, that site's manifest counts too. A folder with no manifest is
the author's, except the `_site` of a site folder (circuitpress before manifests, or a deleted
`.circuitpress/`, left one without) and a folder inside the site folder (`docs/` of a fresh
clone) whose `index.html` names circuitpress as its generator: these are accepted when every
file in them is at a path a build writes (see `_written_by_a_build`), refused otherwise. The
check runs before the build and again, under the lock, right before the swap.

The swap. The new tree is written beside the output as `.NAME.new-PID-XXXXXXXX` and exchanged
with the output in one `renameat2(RENAME_EXCHANGE)` on Linux, so the output path holds a
complete site at every instant; elsewhere two renames (`NAME` -> `.NAME.old-PID-XXXXXXXX`, new
-> `NAME`) leave it absent for a moment. The replaced tree is removed afterwards.

Recovery. A killed build can leave either temporary name behind. Every build first puts a
missing output back from its `.NAME.old-*` and removes the stray trees of dead builds (their
PID is not alive), moving back any `.git`/`CNAME`/`.nojekyll` a stray holds. Only names of
exactly this form are taken for strays; an earlier version's `.NAME.old-PID` and
`.NAME.new-XXXXXXXX` only when the tree holds a whole site and nothing else (a user may name
a folder so). Builds that replace
outputs in the same folder take turns through an flock on that folder, so a stray seen while
holding it cannot belong to a live build.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

from circuitpress.config import CONFIG_NAME
from circuitpress.errors import UserError

# Folders of a site that a build or publish must never replace.
PROTECTED = ("content", "static", "themes", ".circuitpress", ".git")
# Entries at the top of an output folder that belong to the user and survive every rebuild.
PRESERVED = (".git", "CNAME", ".nojekyll")
MANIFESTS = Path(".circuitpress") / "outputs"

# Where a build without a manifest could have written: the pages (`index.html` at any depth),
# the site-wide files, the theme's and figures' assets, the copy of static/ and the unit pages.
_BUILD_FILES = frozenset({"index.html", "404.html", "sitemap.xml", "feed.xml"})
_BUILD_FOLDERS = frozenset({"assets", "static", "units"})

_TEMP_CHARS = "[a-z0-9_]{8}"  # tempfile.mkdtemp's random part
# The names this version gives its trees beside the output: `.STEM.new-PID-XXXXXXXX`, and the
# replaced tree of a two-rename swap, `.STEM.old-PID-XXXXXXXX`.
_STRAY = re.compile(rf"(?P<kind>new|old)-(?P<pid>[0-9]+)-{_TEMP_CHARS}$")
# The names an earlier version gave them: `.NAME.old-PID` and `.NAME.new-XXXXXXXX`. A user may
# name a folder so too, so such a tree is touched only when it holds a site and nothing else.
_LEGACY = re.compile(rf"(?:(?P<kind>old)-(?P<pid>[0-9]+)|(?P<new>new)-{_TEMP_CHARS})$")
# Files the OS or a file browser drops into any folder: no one's work, replaced with the rest.
_JUNK = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
# How many of the files that make a folder the user's are collected (and some named) before the
# folder is refused: a home folder given as --out is not walked to its end.
_REPORTED = 5
# What the theme writes into every page's head; a manifest-less output folder inside the site
# folder is taken for a build only when its index.html says so.
_GENERATOR_TAG = b'<meta name="generator" content="circuitpress'
_HINTS = {
    errno.ENAMETOOLONG: "a name in the path is longer than the file system allows",
    errno.EACCES: "you may not write there; choose another folder",
    errno.EPERM: "you may not write there; choose another folder",
    errno.EROFS: "the file system is read-only; choose another folder",
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a part of the path is a file, not a folder",
    errno.ELOOP: "the path has a loop of symbolic links",
    errno.EBUSY: "it is in use or a mount point; write the site to a folder inside it",
    errno.EXDEV: "it is a mount point; write the site to a folder inside it",
}

# Trees this process is writing or removing right now: a stray with our own PID that is not in
# here was left by an earlier build of this process (or of a process whose PID we reuse).
_ACTIVE: set[Path] = set()


# -- errors -----------------------------------------------------------------------------------


def _os_error(exc: OSError, shown: str, doing: str) -> UserError:
    """An OS error on the output path as one line located at the option (`--out x`, `_site`)."""
    reason = exc.strerror or str(exc)
    return UserError(
        f"cannot {doing}: {reason}",
        file=shown,
        hint=_HINTS.get(exc.errno or 0, "choose another folder"),
    )


def _display(root: Path | None, path: Path) -> str:
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return str(path)


# -- names beside the output folder -----------------------------------------------------------


def _stem(out: Path) -> str:
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
    prefix = f".{_stem(out)}."
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


def _alive(pid: int) -> bool:
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
    if stray.path in _ACTIVE:
        return False
    if stray.legacy:
        # An earlier circuitpress took no lock: only its PID, where the name has one, tells
        # whether it is still at work. And the name alone does not make the folder a build.
        if stray.pid is not None and stray.pid != os.getpid() and _alive(stray.pid):
            return False
        return _holds_a_site(stray.path)
    if stray.pid is None or stray.pid == os.getpid():
        return stray.pid is not None  # ours but not in use (see _ACTIVE)
    # Holding the folder's lock, no live build of this version is between its check and its
    # clean-up here, so even a live PID (reused by an unrelated process) left this one.
    return locked or not _alive(stray.pid)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[bool]:
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


# -- recovery ---------------------------------------------------------------------------------


def recover_output(out: Path) -> None:
    """Undo what killed builds left beside `out`: put a missing `out` back from its old tree,
    remove stray trees. Raises OSError when the old tree cannot be put back."""
    with _locked(out.parent) as locked:
        _recover(out, locked)


def _recover(out: Path, locked: bool) -> None:
    stale = [s for s in _strays(out) if _is_stale(s, locked)]
    if not os.path.lexists(out):
        # Killed between the two renames of a swap: the old tree is the last complete site.
        olds = [s for s in stale if s.kind == "old" and _is_tree(s.path)]
        if olds:
            newest = max(olds, key=lambda s: s.path.stat().st_mtime_ns)
            os.rename(newest.path, out)
            stale.remove(newest)
    for stray in stale:
        _discard(stray.path, out)


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
        for rel in _entries(tree):
            if not _written_by_a_build(rel):
                return False
    except OSError:
        return False
    return True


def _discard(tree: Path, out: Path) -> None:
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
        if _is_users(tree, name) and not os.path.lexists(out / name):
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


# -- ownership --------------------------------------------------------------------------------


def _manifest_key(root: Path, out: Path) -> str:
    # Site-relative for the site's own _site, so a moved or renamed site folder keeps it.
    return _display(root, out)


def manifest_path(root: Path, out: Path) -> Path:
    """Where the list of files the last build wrote into `out` is kept."""
    digest = hashlib.sha256(_manifest_key(root, out).encode()).hexdigest()[:20]
    return root / MANIFESTS / f"{digest}.json"


def read_manifest(root: Path, out: Path) -> set[str] | None:
    """The files the last build of `root` wrote into `out`, or None when none is recorded (a
    manifest that cannot be read counts as none: the folder is then treated as the user's)."""
    try:
        data = json.loads(manifest_path(root, out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("out") != _manifest_key(root, out):
        return None
    files = data.get("files")
    if not isinstance(files, list):
        return None
    return {f for f in files if isinstance(f, str)}


def _record_manifest(root: Path, out: Path, files: set[str]) -> None:
    path = manifest_path(root, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"generator": "circuitpress", "out": _manifest_key(root, out), "files": sorted(files)}
    for stray in path.parent.glob(f".{path.stem}.*-*"):  # left by a killed build
        pid = stray.name[len(path.stem) + 2 :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                stray.unlink()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.{os.getpid()}-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=0)
        os.replace(tmp, path)  # atomic: a killed build leaves the previous manifest whole
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def is_site_output(out: Path) -> bool:
    """Whether `out` is the `_site` of a site folder (it has a circuitpress.toml beside it)."""
    return out.name == "_site" and (out.parent / CONFIG_NAME).is_file()


def _written_by_a_build(rel: str) -> bool:
    top = rel.split("/", 1)[0]
    return rel in _BUILD_FILES or rel.endswith("/index.html") or top in _BUILD_FOLDERS


def _is_users(folder: Path, name: str) -> bool:
    """Whether the entry `name` at the top of an output folder is one the user keeps there: a
    folder `.git`, a file `CNAME` or `.nojekyll` (a page named CNAME builds a folder CNAME/:
    that one is the build's)."""
    try:
        mode = os.lstat(folder / name).st_mode
    except OSError:
        return False
    if name == ".git":
        return stat.S_ISDIR(mode)
    return name in PRESERVED and stat.S_ISREG(mode)


def _is_junk(name: str) -> bool:
    return name.lower() in _JUNK or name.startswith("._")  # ._*: macOS's AppleDouble files


def _entries(out: Path) -> Iterator[str]:
    """Every entry of `out` that is not a folder (links included, never followed), relative,
    leaving out the user's entries at the top (see `_is_users`) and the OS's junk files. An
    unreadable folder raises."""

    def fail(exc: OSError) -> None:
        raise exc

    for dirpath, dirnames, filenames in os.walk(out, onerror=fail):
        here = Path(dirpath)
        rel_dir = here.relative_to(out)
        dirnames.sort()
        names = sorted(filenames)
        for name in list(dirnames):
            if (here / name).is_symlink():  # a link to a folder is an entry, never entered
                dirnames.remove(name)
                names.append(name)
        if here == out:
            users = {name for name in PRESERVED if _is_users(out, name)}
            dirnames[:] = [d for d in dirnames if d not in users]
            names = [n for n in names if n not in users]
        for name in names:
            if not _is_junk(name):
                yield (rel_dir / name).as_posix()


def _recorded(root: Path | None, out: Path) -> set[str] | None:
    """The files builds recorded writing into `out`: by `root`, and by the site whose `_site`
    it is (another site's `_site` given as --out); None when neither recorded any."""
    found = []
    if root is not None:
        found.append(read_manifest(root, out))
    if is_site_output(out) and out.parent != root:
        found.append(read_manifest(out.parent, out))
    lists = [files for files in found if files is not None]
    if not lists:
        return None
    return set().union(*lists)


def _says_circuitpress(page: Path) -> bool:
    try:
        if not stat.S_ISREG(os.lstat(page).st_mode):
            return False
        with open(page, "rb") as fh:
            return _GENERATOR_TAG in fh.read(1 << 16)
    except OSError:
        return False


def _replaceable(root: Path | None, out: Path, shown: str) -> set[str]:
    """The files of `out` a build may replace (all of them); UserError when it holds others."""
    try:
        st = os.stat(out)
    except FileNotFoundError:
        return set()
    if not stat.S_ISDIR(st.st_mode):
        raise UserError("is a file, not a folder", file=shown, hint="give a folder for the site")
    recorded = _recorded(root, out)
    inside = root is not None and root in out.parents and not is_site_output(out)
    owned: Callable[[str], bool]
    if recorded is not None:  # a manifest is the only rule
        owned = recorded.__contains__
    elif root is None or is_site_output(out) or inside:
        # No manifest: an older circuitpress's _site (or docs/ of a fresh clone), or a writer
        # that was not told its site. Only paths a build writes.
        owned = _written_by_a_build
    else:
        owned = lambda rel: False  # noqa: E731 - a folder elsewhere is the user's
    present: set[str] = set()
    foreign: list[str] = []
    for rel in _entries(out):
        present.add(rel)
        if not owned(rel):
            foreign.append(rel)
            if len(foreign) >= _REPORTED:
                break
    older_hint = "if an older circuitpress built it, delete it once by hand; else use a new folder"
    if foreign:
        listed = sorted(foreign)
        more = " and more" if len(listed) > 3 else ""
        # An --out folder of a circuitpress that kept no manifest holds only what builds write.
        older = recorded is None and all(_written_by_a_build(rel) for rel in listed)
        raise UserError(
            f"is a folder with other files in it: {', '.join(listed[:3])}{more}",
            file=shown,
            hint=older_hint
            if older
            else "circuitpress replaces only what it wrote: move them out, or use a new folder",
        )
    if present and recorded is None and inside and not _says_circuitpress(out / "index.html"):
        raise UserError(
            "is a folder circuitpress has no record of building: its index.html is not a "
            "circuitpress page",
            file=shown,
            hint=older_hint,
        )
    return present


def _probe(out: Path, shown: str) -> None:
    """Find out now, before a long build, whether the OS will let `out` be created: create
    what is missing of its path and remove it again."""
    missing: list[Path] = []
    folder = out
    while True:
        try:
            st = os.stat(folder)
            break
        except FileNotFoundError:
            missing.append(folder)
            folder = folder.parent
        except OSError as exc:
            raise _os_error(exc, shown, "use this folder") from None
    if not stat.S_ISDIR(st.st_mode):
        if folder == out:
            raise UserError(
                "is a file, not a folder", file=shown, hint="give a folder for the site"
            )
        raise UserError(
            f"cannot create the folder: {folder} is a file",
            file=shown,
            hint="a part of the path is a file, not a folder",
        )
    if not missing:
        # The temporary tree and the swap write beside the output folder.
        if not os.access(out.parent, os.W_OK | os.X_OK):
            raise _os_error(PermissionError(errno.EACCES, "Permission denied"), shown, "write here")
        return
    created: list[Path] = []
    try:
        for path in reversed(missing):
            os.mkdir(path)
            created.append(path)
    except OSError as exc:
        raise _os_error(exc, shown, "create the folder") from None
    finally:
        for path in reversed(created):
            with contextlib.suppress(OSError):
                os.rmdir(path)


def check_output_folder(root: Path, out: Path, shown: str) -> None:
    """Refuse an output folder whose replacement would delete the author's files, or that the
    OS will not let us write, before the build starts; recover what killed builds left.

    `shown` names the option in the message, e.g. "--out ../x"."""
    if out == root or out in root.parents:
        raise UserError(
            "would replace the site folder itself",
            file=shown,
            hint="write the site to a folder of its own",
        )
    for name in PROTECTED:
        protected = root / name
        if out == protected or protected in out.parents:
            raise UserError(
                f"is inside the site's {name}/ folder",
                file=shown,
                hint="write the site to a folder of its own",
            )
    _probe(out, shown)
    if out.parent.is_dir():
        try:
            with _locked(out.parent) as locked:
                _recover(out, locked)
                _replaceable(root, out, shown)
        except OSError as exc:
            raise _os_error(exc, shown, "read this folder") from None


# -- the writer -------------------------------------------------------------------------------


class SiteWriter:
    """Collects the output files (bytes, or files to copy) and writes them all at once.

    `root` (the site folder) says where the manifest is kept, `shown` how error messages name
    the folder (`_site`, `--out x`). Without them the writer takes the site folder beside a
    `_site`; a writer
    that knows no site keeps no manifest and accepts only what a build writes (a fresh
    temporary folder, e.g. publish's)."""

    def __init__(self, out: Path, *, root: Path | None = None, shown: str | None = None):
        self.out = out
        self.files: dict[str, bytes] = {}
        self.copies: dict[str, Path] = {}
        if root is None and is_site_output(out):
            root = out.parent
        self.root = root
        self.shown = shown or _display(root, out)

    def bind(self, root: Path, shown: str) -> None:
        """Name the site that owns this output and how messages show the folder."""
        self.root, self.shown = root, shown

    def write(self, rel: str, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.files[rel.lstrip("/")] = data

    def copy(self, rel: str, source: Path) -> None:
        self.copies[rel.lstrip("/")] = source

    def asset(self, data: bytes, ext: str, name: str = "fig") -> str:
        """Store bytes under a content-addressed name; return the site-relative path."""
        digest = hashlib.sha256(data).hexdigest()[:16]
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)[:40] or "asset"
        rel = f"assets/figures/{safe}-{digest}.{ext.lstrip('.')}"
        self.files[rel] = data
        return rel

    def paths(self) -> list[str]:
        return sorted(set(self.files) | set(self.copies))

    def commit(self) -> None:
        """Write everything to a temporary sibling of `out`, then swap it in.

        Every step leaves something the next build can finish: from before the swap until
        after it the manifest lists the old and the new files, and the user's entries are in
        the output or in the one temporary tree that recovery moves them back from."""
        out, shown = self.out, self.shown
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _os_error(exc, shown, "create the folder") from None
        new = set(self.paths())
        with _locked(out.parent) as locked:
            try:
                _recover(out, locked)
                old = _replaceable(self.root, out, shown)
            except OSError as exc:
                raise _os_error(exc, shown, "read this folder") from None
            self._kept(new)
            try:
                tmp = Path(
                    tempfile.mkdtemp(prefix=f".{_stem(out)}.new-{os.getpid()}-", dir=out.parent)
                )
            except OSError as exc:
                raise _os_error(exc, shown, "write beside the folder") from None
            _ACTIVE.add(tmp)
            replaced: Path | None = tmp
            try:
                self._write_tree(tmp)
                # Again, now that the tree is written: files may have been added meanwhile.
                try:
                    old = _replaceable(self.root, out, shown)
                except OSError as exc:
                    raise _os_error(exc, shown, "read this folder") from None
                keep = self._kept(new)
                self._record(old | new)
                for name in keep:
                    os.rename(out / name, tmp / name)
                replaced = swap_in(tmp, out)
                self._record(new)
            except OSError as exc:
                raise _os_error(exc, shown, "write the site") from None
            finally:
                if replaced is not None:
                    _ACTIVE.add(replaced)
                    try:
                        _discard(replaced, out)
                    finally:
                        _ACTIVE.discard(replaced)
                _ACTIVE.discard(tmp)

    def _kept(self, new: set[str]) -> list[str]:
        """The user's entries at the top of the output, to carry into the new tree; UserError
        when the site writes a page or file under one of their names."""
        keep = [name for name in PRESERVED if _is_users(self.out, name)]
        clash = sorted({rel.split("/", 1)[0] for rel in new} & set(keep))
        if clash:
            raise UserError(
                f"the site has a page or file {clash[0]} where the folder keeps your own",
                file=self.shown,
                hint=f"rename the page or move {clash[0]} out of the folder",
            )
        return keep

    def _write_tree(self, tmp: Path) -> None:
        for rel in sorted(self.files):
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.files[rel])
        for rel in sorted(self.copies):
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            source = self.copies[rel]
            try:
                src = open(source, "rb")
            except OSError as exc:
                where = _display(self.root, source)
                raise UserError(
                    f"cannot read {where}: {exc.strerror or exc}",
                    file=where,
                    hint="was it moved or deleted during the build? build again",
                ) from None
            with src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        os.chmod(tmp, 0o755)

    def _record(self, files: set[str]) -> None:
        if self.root is None:
            return
        try:
            _record_manifest(self.root, self.out, files)
        except OSError as exc:
            raise UserError(
                f"cannot record what the build wrote: {exc.strerror or exc}",
                file=MANIFESTS.as_posix(),
                hint=f"circuitpress keeps there the list of files it wrote into {self.shown}",
            ) from None


# -- the swap ---------------------------------------------------------------------------------


def swap_in(new: Path, out: Path) -> Path | None:
    """Put the tree `new` at `out`; return where the replaced tree is now (for the caller to
    remove), None when there was none."""
    if not os.path.lexists(out):
        os.rename(new, out)
        return None
    if _exchange(new, out):
        return new  # `new` now names the replaced tree
    prefix = f".{_stem(out)}.new-"
    suffix = new.name[len(prefix) :] if new.name.startswith(prefix) else f"{os.getpid()}-swapping"
    old = out.with_name(f".{_stem(out)}.old-{suffix}")
    _ACTIVE.add(old)
    try:
        os.rename(out, old)
        try:
            os.rename(new, out)
        except OSError:
            os.rename(old, out)
            raise
    finally:
        _ACTIVE.discard(old)
    return old


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}


@lru_cache(maxsize=1)
def _renameat2() -> Any:
    """libc's renameat2, where there is one (Linux with glibc 2.28 or later)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names `a` and `b` atomically; False where the OS or file system cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(b))
