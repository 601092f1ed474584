"""Built-in directives and roles, one module per concern.

Each module in this package exposes `DIRECTIVES` and/or `ROLES` (lists of classes); they are
registered in module-name order. Directives here may import markup and render helpers, and the
request types, but never torch: results arrive as plain data.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from circuitpress.extensions.registry import Registry


def register_builtins(registry: "Registry") -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for directive in getattr(module, "DIRECTIVES", ()):
            registry.add_directive(directive)
        for role in getattr(module, "ROLES", ()):
            registry.add_role(role)
