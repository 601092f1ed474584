"""The one rule for what a build may publish: a file that lies inside the site folder once every
symbolic link on its way is followed.

A link is a convenience inside a site (a page that is also a second page, an image that lives in
static/), but one that leaves the site folder would put a file the author never meant to share
(a key, `/etc/passwd`, a private draft) online. Every file whose bytes land in the output goes
through `site_file`: pages, images beside pages, theme overrides, bibliographies. Model weights and
datasets are read by the analysis and never published, so they may live anywhere.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path, PurePosixPath
from typing import Iterator

from circuitpress.errors import UserError

LINK_HINT = "nothing outside the site folder is published: copy the file into the site"


def site_file(root: Path, path: Path, *, shown: str | None = None, used: str | None = None) -> Path:
    """`path` with every symbolic link resolved, when that lies inside the site folder `root`.

    Otherwise a UserError located at `shown` (the site-relative display path; by default the
    path relative to `root`) that says where the link points. `used` ("content/a.md:7") names
    the place that refers to the file, when there is one. A broken link and a link loop are
    errors too: following either would fail later with an OSError, i.e. a traceback.
    """
    # On strings (os.path), not Path objects: a build calls this for every page and image,
    # and Path.resolve() + .exists() + .parents cost ~4x as much for the same system calls.
    real_root = os.path.realpath(root)
    path = path if path.is_absolute() else root / path
    real = os.path.realpath(path)
    if not _inside(real, real_root):
        shown = shown or _display(root, path)
        raise UserError(
            f"links to {real}, outside the site folder",
            file=shown,
            line=1,
            hint=_hint(_culprit(root, Path(real_root), path), used),
        )
    try:
        os.stat(real)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            message, fix = "is a symbolic link that points back to itself", "fix or remove the link"
        elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
            message, fix = f"is a broken link: {real} does not exist", "fix or remove the link"
        else:
            message, fix = f"cannot be read: {exc.strerror or exc}", "check its name and access"
        raise UserError(
            message, file=shown or _display(root, path), line=1, hint=_hint(fix, used, base=None)
        ) from None
    return Path(real)


def walk_files(root: Path, folder: Path, *, skip: tuple[str, ...] = (".",)) -> Iterator[Path]:
    """Every file under `folder`, a folder of the site `root` (sorted, depth first), following
    linked folders as the build publishes what they hold; names starting with one of `skip` are
    left out with all they hold.

    Paths are yielded as reached (`folder/link/x.md`, not the link's target) so that errors and
    URLs use the author's names; check each with `site_file` before reading it. A link back to
    a folder being walked would loop forever: it is not followed again. A linked folder that
    leads out of the site is yielded itself, never walked: `site_file` then names the link once
    (walking `static/lib -> /usr/lib` would read a whole system folder only to refuse it).
    """
    for path, _ in walk_site_files(root, folder, skip=skip):
        yield path


def walk_site_files(
    root: Path, folder: Path, *, skip: tuple[str, ...] = (".",)
) -> Iterator[tuple[Path, bool]]:
    """`walk_files`, each path with whether it is known to lie inside the site: a file that is
    not a link, in a folder whose real path is inside (`site_file` would only confirm it; the
    others still need it)."""
    yield from _walk(root, folder, skip, frozenset(), os.path.realpath(root))


def _walk(
    root: Path, folder: Path, skip: tuple[str, ...], above: frozenset[str], real_root: str
) -> Iterator[tuple[Path, bool]]:
    real = os.path.realpath(folder)
    if real in above:
        return
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        raise UserError(
            f"cannot read the folder: {exc.strerror or exc}", file=_display(root, folder), line=1
        ) from None
    inside = _inside(real, real_root)
    for entry in entries:
        if entry.name.startswith(skip):
            continue
        path = folder / entry.name
        # The type of a plain entry comes with the listing; only links cost a system call.
        if _is_dir(entry):  # follows a link: a linked folder's files are published as its own
            if entry.is_symlink() and not _inside(os.path.realpath(path), real_root):
                yield path, False
                continue
            yield from _walk(root, path, skip, above | {real}, real_root)
        else:  # a file, or a broken link that site_file reports
            yield path, inside and not entry.is_symlink()


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link that loops: not a folder (site_file names it)
        return False


def _inside(real: str | Path, real_root: str | Path) -> bool:
    real, real_root = os.fspath(real), os.fspath(real_root)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def _culprit(root: Path, real_root: Path, path: Path) -> str | None:
    """The first link on the way from `root` to `path` that leads out of the site, as
    'through content/data -> /elsewhere', when it is a folder rather than the file itself."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return None
    step = root
    for part in parts[:-1]:
        step = step / part
        if step.is_symlink() and not _inside(step.resolve(), real_root):
            return f"through the link {_display(root, step)} -> {os.readlink(step)}"
    return None


def _hint(detail: str | None, used: str | None, base: str | None = LINK_HINT) -> str:
    parts = [p for p in (detail, f"named in {used}" if used else None, base) if p]
    return "; ".join(parts)


def _display(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def is_file(path: Path) -> bool:
    """`path.is_file()` for a name an author typed: a name the OS refuses (too long, say) is
    simply not a file here, so the caller's 'not found' error names it instead of a traceback."""
    try:
        return path.is_file()
    except OSError:
        return False


def is_link(path: Path) -> bool:
    try:
        return path.is_symlink()
    except OSError:
        return False


def site_image(root: Path, target: str, page: str, used: str) -> tuple[str, Path]:
    """Where an image a page names lies: ("static", its path in static/), published where the
    build copies static/, or ("file", its path), for a file elsewhere in the site that the
    build writes as a content-addressed asset. `page` is the page's site-relative file.

    `/static/a.png` (root-relative, as MyST writes it) is a path from the site folder, then,
    as before, from static/; `a.png` is a path in static/, then beside the page. Either way the
    file must lie inside the site folder once its links are followed (`site_file`); `..` is
    refused outright. A UserError without a location: the caller knows the line."""
    rooted = target.startswith("/")
    rel = PurePosixPath(target.lstrip("/"))
    if ".." in rel.parts:
        raise UserError(
            f"image path '{target}' leaves the site folder", hint="keep images in static/"
        )
    static = PurePosixPath("static") / rel
    beside = PurePosixPath(page).parent / rel
    # Site-relative candidates in the order they are tried.
    candidates = [rel, static] if rooted else [static, beside]
    for candidate in dict.fromkeys(candidates):
        path = root / candidate
        if not is_file(path):
            continue
        site_file(root, path, used=used)
        if candidate.parts[:1] == ("static",) and len(candidate.parts) > 1:
            # Copied by the build with static/, which skips a link out of the site.
            return "static", Path(candidate.as_posix())
        return "file", path
    looked = " and ".join(c.as_posix() for c in dict.fromkeys(candidates))
    hint = f"looked for {looked}"
    if rooted:
        hint += "; a path starting with '/' is read from the site folder"
    raise UserError(f"image '{target}' not found", hint=hint)
