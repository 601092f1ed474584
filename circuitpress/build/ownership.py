"""Whose an output folder is: circuitpress replaces a folder only if it wrote every file in it.

Each build records the files it wrote in a manifest, `SITE/.circuitpress/outputs/<hash of the
folder>.json`, and a later build replaces a folder only when every file in it is listed there.
The manifest lives in the site's state folder, not in the output, so nothing has to be left out
of a publish, an upload of `_site` by another tool or the link checker, and a folder moved or
copied by hand is not mistaken for a build. Three entries a user keeps at the top of an output
folder are no part of the site and are carried over into each new tree: a folder `.git` (a
checkout of the published branch) and the files `CNAME` and `.nojekyll` (GitHub Pages
settings); the junk files an OS drops anywhere (`.DS_Store`, `._*`, `Thumbs.db`,
`desktop.ini`) are no one's. When the folder is another site's `_site`, that site's manifest
counts too. A folder with no manifest is the author's, except the `_site` of a site folder
(circuitpress before manifests, or a deleted `.circuitpress/`, left one without) and a folder
inside the site folder (`docs/` of a fresh clone) whose `index.html` names circuitpress as its
generator: these are accepted when every file in them is at a path a build writes (see
`written_by_a_build`), refused otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Callable, Iterator

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


def os_error(exc: OSError, shown: str, doing: str) -> UserError:
    """An OS error on the output path as one line located at the option (`--out x`, `_site`)."""
    reason = exc.strerror or str(exc)
    return UserError(
        f"cannot {doing}: {reason}",
        file=shown,
        hint=_HINTS.get(exc.errno or 0, "choose another folder"),
    )


def display(root: Path | None, path: Path) -> str:
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return str(path)


def manifest_key(root: Path, out: Path) -> str:
    # Site-relative for the site's own _site, so a moved or renamed site folder keeps it.
    return display(root, out)


def manifest_path(root: Path, out: Path) -> Path:
    """Where the list of files the last build wrote into `out` is kept."""
    digest = hashlib.sha256(manifest_key(root, out).encode()).hexdigest()[:20]
    return root / MANIFESTS / f"{digest}.json"


def read_manifest(root: Path, out: Path) -> set[str] | None:
    """The files the last build of `root` wrote into `out`, or None when none is recorded (a
    manifest that cannot be read counts as none: the folder is then treated as the user's)."""
    try:
        data = json.loads(manifest_path(root, out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("out") != manifest_key(root, out):
        return None
    files = data.get("files")
    if not isinstance(files, list):
        return None
    return {f for f in files if isinstance(f, str)}


def is_site_output(out: Path) -> bool:
    """Whether `out` is the `_site` of a site folder (it has a circuitpress.toml beside it)."""
    return out.name == "_site" and (out.parent / CONFIG_NAME).is_file()


def written_by_a_build(rel: str) -> bool:
    top = rel.split("/", 1)[0]
    return rel in _BUILD_FILES or rel.endswith("/index.html") or top in _BUILD_FOLDERS


def is_users(folder: Path, name: str) -> bool:
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


def entries(out: Path) -> Iterator[str]:
    """Every entry of `out` that is not a folder (links included, never followed), relative,
    leaving out the user's entries at the top (see `is_users`) and the OS's junk files. An
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
            users = {name for name in PRESERVED if is_users(out, name)}
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


def replaceable(root: Path | None, out: Path, shown: str) -> set[str]:
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
        owned = written_by_a_build
    else:
        owned = lambda rel: False  # noqa: E731 - a folder elsewhere is the user's
    present: set[str] = set()
    foreign: list[str] = []
    for rel in entries(out):
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
        older = recorded is None and all(written_by_a_build(rel) for rel in listed)
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


def probe(out: Path, shown: str) -> None:
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
            raise os_error(exc, shown, "use this folder") from None
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
            raise os_error(PermissionError(errno.EACCES, "Permission denied"), shown, "write here")
        return
    created: list[Path] = []
    try:
        for path in reversed(missing):
            os.mkdir(path)
            created.append(path)
    except OSError as exc:
        raise os_error(exc, shown, "create the folder") from None
    finally:
        for path in reversed(created):
            with contextlib.suppress(OSError):
                os.rmdir(path)
