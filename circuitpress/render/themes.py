"""Where the built-in themes are (no Jinja2 here: the up-to-date check hashes them too)."""

from __future__ import annotations

from pathlib import Path


def builtin_themes() -> Path:
    """The folder of the built-in themes. A wheel carries the repository's top-level themes/
    as circuitpress/themes/ (pyproject.toml maps it); a source checkout installed editable
    reads the repository's themes/ itself."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "themes"
    return packaged if packaged.is_dir() else package.parent / "themes"
