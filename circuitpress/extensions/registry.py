"""The registry every directive and role plugs into, built-in or third-party.

Built-in directives register exactly like a plugin's: each is an entry point of the group
`circuitpress.directives` (see pyproject.toml) naming a callable `register(registry)`.
"""

from __future__ import annotations

from importlib import metadata

from circuitpress.errors import UserError
from circuitpress.extensions.api import Directive, Role

ENTRY_POINT_GROUP = "circuitpress.directives"


class Registry:
    """Directives and roles by name."""

    def __init__(self) -> None:
        self.directives: dict[str, Directive] = {}
        self.roles: dict[str, Role] = {}

    def add_directive(self, directive: Directive | type[Directive]) -> None:
        instance = directive() if isinstance(directive, type) else directive
        if not instance.name:
            raise ValueError(f"directive {instance!r} has no name")
        self.directives[instance.name] = instance

    def add_role(self, role: Role | type[Role]) -> None:
        instance = role() if isinstance(role, type) else role
        if not instance.name:
            raise ValueError(f"role {instance!r} has no name")
        self.roles[instance.name] = instance

    def load_entry_points(self) -> None:
        """Let installed packages, circuitpress itself first, add directives and roles."""
        points = metadata.entry_points(group=ENTRY_POINT_GROUP)
        # circuitpress's own first, then each plugin in name order: a plugin may replace a
        # built-in directive by registering the same name, and the order never depends on
        # the order in which packages were installed.
        ordered = sorted(points, key=lambda ep: (ep.value.split(".")[0] != "circuitpress", ep.name))
        for ep in ordered:
            register = ep.load()
            register(self)


def default_registry() -> Registry:
    """The built-in directives and roles plus those of installed plugins."""
    registry = Registry()
    registry.load_entry_points()
    if "figure" not in registry.directives:
        # The built-ins are entry points of the installed package's metadata: an install made
        # before they were (or none at all) lacks them, and every directive would be unknown.
        raise UserError(
            "circuitpress's built-in directives are not registered",
            hint="its installed metadata is out of date: run `pip install -e .` in its checkout",
        )
    return registry
