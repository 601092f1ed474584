"""The up-to-date check of a build, like make's: when nothing that the output depends on has
changed and the output folder is still what the last build wrote, a build does nothing.

The stamp hashes every input of the build (config, pages, bibliographies, theme overrides,
static files, the circuitpress code and theme, the models' fingerprints, the options and
SOURCE_DATE_EPOCH). The manifest lists each output file with its size and modification time,
so an output folder touched by hand is rebuilt; the user's own `.git`, `CNAME` and `.nojekyll`
in it (ownership.is_users) are no part of the build and are not listed. Both live in
`.circuitpress/`, never in the site.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import circuitpress
from circuitpress.build.ownership import PRESERVED, is_users
from circuitpress.build.recovery import recover_output
from circuitpress.render.themes import builtin_themes

STAMP_FILE = Path(".circuitpress") / "build-stamp.json"
_SKIP_DIRS = {"_site", ".circuitpress", ".git", "__pycache__", "node_modules"}


@lru_cache(maxsize=1)
def code_signature() -> str:
    """Hash of the installed circuitpress package and its built-in themes: code, templates,
    assets and scaffold (the zoo's weights are fingerprinted per model instead), by where they
    are and each file's name, size, modification and change times and inode, not its bytes
    (reading and hashing all 1.1 MB took 12 ms of every build, no-op builds included). Editing
    or installing a file changes its change time even where a copy keeps the modification time
    (`cp -p`, `rsync -a`) or a store fixes it (Nix sets every mtime to 1)."""
    digest = hashlib.sha256(f"{circuitpress.__version__}\0".encode())
    for root in (Path(circuitpress.__file__).parent, builtin_themes()):
        top = str(root)
        digest.update(f"{os.path.realpath(top)}\0".encode())
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            rel = os.path.relpath(dirpath, top).replace(os.sep, "/")
            for name in sorted(filenames):
                if name.endswith(".safetensors"):
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, name))
                except OSError:
                    continue  # a broken link is no file (as Path.is_file() said before)
                times = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"
                digest.update(f"{root.name}/{rel}/{name}\0{times}\0".encode())
    return digest.hexdigest()


def input_stamp(
    root: Path,
    out: Path,
    options: dict[str, Any],
    fingerprints: Iterable[str],
    pages: dict[str, bytes] | None = None,
) -> str:
    """Everything a build's output depends on, as one hash. The bytes of each page read
    (`content/**.md`) are kept in `pages` by path, where given: the build then parses exactly
    what the stamp hashed, and reads no page twice."""
    digest = hashlib.sha256()

    def add(*parts: str | bytes) -> None:
        for part in parts:
            digest.update(part.encode() if isinstance(part, str) else part)
            digest.update(b"\0")

    add(
        code_signature(),
        json.dumps(options, sort_keys=True, default=str),
        os.environ.get("SOURCE_DATE_EPOCH", ""),
    )
    add(str(out))
    for fp in fingerprints:
        add(fp)
    # Linked folders inside the site are followed (the build publishes what they hold), each
    # real folder once so a link back up cannot loop; one that leads out of the site is never
    # walked (a dataset linked from elsewhere may be huge, and the build refuses to publish it).
    seen: set[str] = set()
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen or not (real == real_root or real.startswith(real_root + os.sep)):
            dirnames[:] = []
            if real not in seen:
                add((Path(dirpath).relative_to(root)).as_posix(), "-> " + real)
            continue
        seen.add(real)
        dirnames[:] = sorted(
            d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("._site")
        )
        rel_dir = Path(dirpath).relative_to(root)
        if Path(dirpath) == out or out in Path(dirpath).parents:
            dirnames[:] = []
            continue
        # Per folder, as strings: a Path per file cost more than reading the file.
        prefix = f"{rel_dir.as_posix()}/" if rel_dir.parts else ""
        top = rel_dir.parts[0] if rel_dir.parts else ""
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            add(prefix + name)  # every name: a new file of any kind can change the output
            try:
                if top == "static":
                    st = os.stat(path)  # copied as is: size and mtime say enough
                    add(f"{st.st_size}:{st.st_mtime_ns}")
                elif top in ("themes", "content") or _suffix(name) in _READ:
                    data = _read(path)
                    add(data)
                    if pages is not None and top == "content" and name.endswith(".md"):
                        pages[path] = data
            except OSError:
                add("unreadable")  # a broken link: the build reports it where it is used
    return digest.hexdigest()


def _read(path: str) -> bytes:
    """A file's bytes in three system calls: a file object adds an fstat, an isatty and an
    lseek to each of the hundreds of files a build hashes."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _suffix(name: str) -> str:
    """PurePath(name).suffix."""
    i = name.rfind(".")
    return name[i:] if 0 < i < len(name) - 1 else ""


# Files whose bytes are hashed, besides everything under content/ (figures beside pages may be
# any image type) and themes/ (all of it is published).
_READ = {
    ".md",
    ".bib",
    ".toml",
    ".html",
    ".css",
    ".js",
    ".png",
    ".jpg",
    ".svg",
    ".py",
}


def manifest_of(out: Path) -> dict[str, list[int]]:
    """Each file under `out` (links not followed) with its [size, mtime_ns], in os.walk's order
    (a folder's files, then its folders); the user's own entries at the top are left out."""
    files: dict[str, list[int]] = {}

    def scan(folder: str, prefix: str, top: bool) -> None:
        folders = []
        try:
            listing = os.scandir(folder)
        except OSError:
            return  # as os.walk does: a folder that cannot be listed adds nothing
        with listing as entries:
            for entry in entries:
                name = entry.name
                # A commit in the user's .git is no change of the site (and .git can be large).
                if top and name in PRESERVED and is_users(out, name):
                    continue
                if entry.is_dir():  # a link to a folder counts as a folder, never walked
                    if not entry.is_symlink():
                        folders.append(entry)
                    continue
                st = entry.stat(follow_symlinks=False)  # a link left in the output: itself
                files[prefix + name] = [st.st_size, st.st_mtime_ns]
        for entry in folders:
            scan(entry.path, f"{prefix}{entry.name}/", False)

    scan(str(out), "", True)
    return files


def load(root: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((root / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def up_to_date(root: Path, out: Path, stamp: str) -> dict[str, Any] | None:
    """The recorded report of the last build when `out` is current for `stamp`, else None."""
    # A build killed half-way through its swap may have left `out` missing with the last
    # complete site beside it, or stray trees: put that right first, even for a no-op build.
    with contextlib.suppress(OSError):
        recover_output(out)
    data = load(root)
    if not data or data.get("stamp") != stamp or data.get("out") != str(out) or not out.is_dir():
        return None
    if manifest_of(out) != data.get("manifest"):
        return None
    report = data.get("report")
    return report if isinstance(report, dict) else None


def record(
    root: Path,
    out: Path,
    stamp: str,
    report: dict[str, Any],
    manifest: dict[str, list[int]] | None = None,
) -> None:
    """Keep the stamp of the build that wrote `out`, with the manifest of what it wrote:
    `manifest` where the writer noted it as it wrote (listing the 300 folders of a site only
    to learn what was just written cost ~1,200 system calls), else listed now."""
    path = root / STAMP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if manifest is None:
        manifest = manifest_of(out)
    payload = {"stamp": stamp, "out": str(out), "manifest": manifest, "report": report}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".stamp-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(payload, fh)
    os.replace(tmp, path)
