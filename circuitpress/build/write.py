"""Writing the site: into a temporary folder that replaces the output only when all succeeded.

A failed build (a user error half-way) leaves the previous `_site` exactly as it was; a killed
build leaves at most a stray temporary folder beside it, never a half-written site.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

# Folders of a site that a build or publish must never replace.
PROTECTED = ("content", "static", "themes", ".circuitpress", ".git")


def check_output_folder(root: Path, out: Path, shown: str) -> None:
    """Refuse an output folder whose replacement would delete the author's files.

    `shown` names the option in the message, e.g. "--out ../x"."""
    from circuitpress.errors import UserError

    if out == root or out in root.parents:
        raise UserError(
            f"{shown} would replace the site folder itself",
            hint="write the site to a folder of its own",
        )
    for name in PROTECTED:
        protected = root / name
        if out == protected or protected in out.parents:
            raise UserError(
                f"{shown} is inside the site's {name}/ folder",
                hint="write the site to a folder of its own",
            )
    if out.exists() and not out.is_dir():
        raise UserError(f"{shown} is a file, not a folder")
    # Replacing a folder deletes what was in it: only an empty one or an earlier build.
    if out.is_dir() and any(out.iterdir()) and not (out / "index.html").is_file():
        raise UserError(
            f"{shown} is a folder with other files in it",
            hint="use an empty folder or one that holds an earlier build (it has an index.html)",
        )


class SiteWriter:
    """Collects output files in memory-light fashion (written at once to a temp folder)."""

    def __init__(self, out: Path):
        self.out = out
        self.files: dict[str, bytes] = {}
        self.copies: dict[str, Path] = {}

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
        """Write everything to a temporary sibling of `out`, then swap it in."""
        parent = self.out.parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.new-", dir=parent))
        try:
            for rel in sorted(self.files):
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.files[rel])
            for rel in sorted(self.copies):
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.copies[rel], target)
            os.chmod(tmp, 0o755)
            swap_in(tmp, self.out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def swap_in(new: Path, out: Path) -> None:
    """Replace `out` with `new` with two renames; the old tree is removed afterwards."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.rename(out, old)
    os.rename(new, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
