"""Writing the site: into a temporary folder that replaces the output only when all succeeded.

The new tree is written beside the output and exchanged with it in one
`renameat2(RENAME_EXCHANGE)` on Linux, so the output path holds a complete site at every
instant; elsewhere two renames (`NAME` -> `.NAME.old-PID-XXXXXXXX`, new -> `NAME`) leave it
absent for a moment. The replaced tree is removed afterwards. Whether a folder may be replaced
is build/ownership.py's rule, checked before the build and again, under the lock, right before
the swap; what killed builds leave behind is build/recovery.py's.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from circuitpress.build.ownership import (
    MANIFESTS,
    PRESERVED,
    PROTECTED,
    display,
    is_site_output,
    is_users,
    manifest_key,
    manifest_path,
    os_error,
    probe,
    read_manifest,
    replaceable,
)
from circuitpress.build.recovery import (
    ACTIVE,
    alive,
    discard,
    folder_lock,
    recover,
    recover_output,
    stem,
)
from circuitpress.errors import UserError

__all__ = [
    "PRESERVED",
    "SiteWriter",
    "check_output_folder",
    "read_manifest",
    "recover_output",
    "swap_in",
]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}
_CREATE = (
    os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)


def _record_manifest(root: Path, out: Path, files: set[str]) -> None:
    path = manifest_path(root, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"generator": "circuitpress", "out": manifest_key(root, out), "files": sorted(files)}
    for stray in path.parent.glob(f".{path.stem}.*-*"):  # left by a killed build
        pid = stray.name[len(path.stem) + 2 :].split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
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
    probe(out, shown)
    if out.parent.is_dir():
        try:
            with folder_lock(out.parent) as locked:
                recover(out, locked)
                replaceable(root, out, shown)
        except OSError as exc:
            raise os_error(exc, shown, "read this folder") from None


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
        # After commit(): each file written, with [size, mtime_ns] (see _write_tree).
        self.manifest: dict[str, list[int]] | None = None
        if root is None and is_site_output(out):
            root = out.parent
        self.root = root
        self.shown = shown or display(root, out)

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
            raise os_error(exc, shown, "create the folder") from None
        new = set(self.paths())
        with folder_lock(out.parent) as locked:
            try:
                recover(out, locked)
                old = replaceable(self.root, out, shown)
            except OSError as exc:
                raise os_error(exc, shown, "read this folder") from None
            self._kept(new)
            try:
                tmp = Path(
                    tempfile.mkdtemp(prefix=f".{stem(out)}.new-{os.getpid()}-", dir=out.parent)
                )
            except OSError as exc:
                raise os_error(exc, shown, "write beside the folder") from None
            ACTIVE.add(tmp)
            replaced: Path | None = tmp
            try:
                manifest = self._write_tree(tmp)
                # Again, now that the tree is written: files may have been added meanwhile.
                try:
                    old = replaceable(self.root, out, shown)
                except OSError as exc:
                    raise os_error(exc, shown, "read this folder") from None
                keep = self._kept(new)
                self._record(old | new)
                for name in keep:
                    os.rename(out / name, tmp / name)
                replaced = swap_in(tmp, out)
                self.manifest = manifest
                self._record(new)
            except OSError as exc:
                raise os_error(exc, shown, "write the site") from None
            finally:
                if replaced is not None:
                    ACTIVE.add(replaced)
                    try:
                        discard(replaced, out)
                    finally:
                        ACTIVE.discard(replaced)
                ACTIVE.discard(tmp)

    def _kept(self, new: set[str]) -> list[str]:
        """The user's entries at the top of the output, to carry into the new tree; UserError
        when the site writes a page or file under one of their names."""
        keep = [name for name in PRESERVED if is_users(self.out, name)]
        clash = sorted({rel.split("/", 1)[0] for rel in new} & set(keep))
        if clash:
            raise UserError(
                f"the site has a page or file {clash[0]} where the folder keeps your own",
                file=self.shown,
                hint=f"rename the page or move {clash[0]} out of the folder",
            )
        return keep

    def _write_tree(self, tmp: Path) -> dict[str, list[int]]:
        """Write every file into the fresh folder `tmp`, noting each one's size and
        modification time as the stamp's manifest records them (stamp.manifest_of), so that
        the build need not list the tree it has just written.

        With os.open/os.write rather than file objects: a page is then three system calls,
        not the seven of a buffered file (its fstat, isatty and lseek are of no use here)."""
        top = str(tmp)
        made = {top}
        manifest: dict[str, list[int]] = {}

        def create(rel: str) -> int:
            path = f"{top}/{rel}"
            folder = path.rpartition("/")[0]
            if folder not in made:
                if folder.rpartition("/")[0] in made:
                    os.mkdir(folder)  # (makedirs would first stat the parent, known to exist)
                    made.add(folder)
                else:
                    os.makedirs(folder, exist_ok=True)
                    while folder not in made:  # and every folder above it
                        made.add(folder)
                        folder = folder.rpartition("/")[0]
            return os.open(path, _CREATE, 0o666)

        for rel in sorted(self.files):
            fd = create(rel)
            try:
                view = memoryview(self.files[rel])
                while view:
                    view = view[os.write(fd, view) :]
                st = os.fstat(fd)
            finally:
                os.close(fd)
            manifest[rel] = [st.st_size, st.st_mtime_ns]
        for rel in sorted(self.copies):
            source = self.copies[rel]
            try:
                src = open(source, "rb")
            except OSError as exc:
                where = display(self.root, source)
                raise UserError(
                    f"cannot read {where}: {exc.strerror or exc}",
                    file=where,
                    hint="was it moved or deleted during the build? build again",
                ) from None
            with src, open(create(rel), "wb", closefd=True) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
                dst.flush()
                st = os.fstat(dst.fileno())
            manifest[rel] = [st.st_size, st.st_mtime_ns]
        os.chmod(tmp, 0o755)
        return manifest

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


def swap_in(new: Path, out: Path) -> Path | None:
    """Put the tree `new` at `out`; return where the replaced tree is now (for the caller to
    remove), None when there was none."""
    if not os.path.lexists(out):
        os.rename(new, out)
        return None
    if _exchange(new, out):
        return new  # `new` now names the replaced tree
    prefix = f".{stem(out)}.new-"
    suffix = new.name[len(prefix) :] if new.name.startswith(prefix) else f"{os.getpid()}-swapping"
    old = out.with_name(f".{stem(out)}.old-{suffix}")
    ACTIVE.add(old)
    try:
        os.rename(out, old)
        try:
            os.rename(new, out)
        except OSError:
            os.rename(old, out)
            raise
    finally:
        ACTIVE.discard(old)
    return old


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
