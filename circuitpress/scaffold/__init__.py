"""`circuitpress new DIR`: copy the starter site shipped in this package."""

from __future__ import annotations

import shutil
from pathlib import Path

from circuitpress.errors import UserError

STARTER = Path(__file__).parent / "site"


def create_site(directory: str | Path) -> Path:
    """Copy the starter site into `directory` (which must be missing or empty)."""
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(
            f"'{target}' already exists and is not empty",
            file=str(target),
            line=1,
            hint="choose a new folder name",
        )
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(STARTER.rglob("*")):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(STARTER)
        if path.is_dir():
            (target / rel).mkdir(parents=True, exist_ok=True)
        else:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / rel)
    return target
