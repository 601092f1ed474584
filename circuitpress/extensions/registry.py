"""The directive and role registry that every directive, built-in or third-party, plugs into.

A directive is a class with a name, an option spec and two methods:

- `plan(call, ctx)`  — at parse time, before any model runs: validate, parse references with
  `ctx.ref(...)`, and ask for analysis with `ctx.request(...)`. Store what render needs in
  `call.data`.
- `render(call, ctx)` — after the engine ran: return HTML, reading results with `ctx.result(...)`.

A directive that only knows what it needs after a first result (a circuit's nodes) also defines
`follow_up(call, ctx)`, called with results available, which may add requests; the build repeats
until nothing new is asked for.

Third-party packages register through the entry-point group `circuitpress.directives`: each
entry point names a callable `register(registry)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol

from circuitpress.errors import UserError

if TYPE_CHECKING:
    from circuitpress.requests import Request, Result, UnitRef

ENTRY_POINT_GROUP = "circuitpress.directives"


# --- options ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One `:key: value` option. `convert` raises ValueError whose text explains the problem."""

    convert: Callable[[str], Any]
    default: Any = None
    help: str = ""


def flag(value: str) -> bool:
    v = value.strip().lower()
    if v in ("", "true", "yes", "on", "1"):
        return True
    if v in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got '{value}'")


def integer(lo: int, hi: int) -> Callable[[str], int]:
    def convert(value: str) -> int:
        try:
            n = int(value.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got '{value}'") from None
        if not lo <= n <= hi:
            raise ValueError(f"must be from {lo} to {hi}, got {n}")
        return n

    return convert


def number(lo: float, hi: float) -> Callable[[str], float]:
    def convert(value: str) -> float:
        try:
            x = float(value.strip())
        except ValueError:
            raise ValueError(f"expected a number, got '{value}'") from None
        if not lo <= x <= hi:
            raise ValueError(f"must be from {lo} to {hi}, got {x}")
        return x

    return convert


def choice(*values: str) -> Callable[[str], str]:
    def convert(value: str) -> str:
        v = value.strip()
        if v not in values:
            from circuitpress.errors import choices_hint

            raise ValueError(f"unknown value '{v}' ({choices_hint(v, values)})")
        return v

    return convert


def text(value: str) -> str:
    return value.strip()


def label(value: str) -> str:
    v = value.strip()
    if not re.fullmatch(r"[A-Za-z][\w.:-]*", v):
        raise ValueError(f"bad label '{v}' (use letters, digits, '-', '_', starting with a letter)")
    return v


# --- the call and the contexts ----------------------------------------------------------------


@dataclass
class DirectiveCall:
    """One use of a directive in a page."""

    name: str
    argument: str
    options: dict[str, Any]
    body: str  # Markdown: the caption or content
    file: str  # display path of the page, e.g. content/curves.md
    line: int  # 1-based line of the opening fence
    label: str | None = None  # from :name:
    data: dict[str, Any] = field(default_factory=dict)  # plan -> render state

    def error(self, message: str, hint: str | None = None, line: int | None = None) -> UserError:
        return UserError(message, file=self.file, line=line or self.line, hint=hint)

    def option_line(self, key: str) -> int:
        """Line of `:key:` (options follow the fence, one per line)."""
        lines = self.data.get("_option_lines", {})
        return int(lines.get(key, self.line))


class PlanContext(Protocol):
    """What a directive may do at parse time (implemented by the build)."""

    file: str
    default_model: str | None

    def ref(self, text: str, line: int) -> "UnitRef":
        """Parse a feature reference, record it for validation and as a mention of the unit."""

    def layer(self, text: str, line: int) -> tuple[str, str]:
        """Parse `MODEL/LAYER`, record it for validation."""

    def request(self, request: "Request") -> None:
        """Ask the engine for a result."""

    def mention(self, ref: "UnitRef", line: int) -> None:
        """Record a unit for a unit page and backlinks without validating more."""


class RenderContext(Protocol):
    """What a directive may use when rendering (implemented by the build)."""

    file: str

    def result(self, request: "Request") -> "Result":
        """The computed result of a request made at plan time."""

    def image_url(self, array: Any, *, name: str = "fig") -> str:
        """Write an image (float [H,W,3] in 0..1 or uint8) as a PNG asset; return its URL."""

    def asset_url(self, data: bytes, ext: str, *, name: str = "asset") -> str:
        """Write bytes as a content-addressed asset; return its URL (honours base_url)."""

    def url(self, site_path: str) -> str:
        """URL of a site-relative path such as 'units/m/conv1/3/' (honours base_url)."""

    def unit_url(self, ref: "UnitRef") -> str | None:
        """URL of a unit's page, or None for directions."""

    def thumbnail_url(self, ref: "UnitRef") -> str | None:
        """URL of the unit's standard feature-vis thumbnail (requested for every mention)."""

    def markdown(self, source: str, *, inline: bool = False) -> str:
        """Render author Markdown (a caption) with the page's roles and citations."""

    def figure_number(self, label: str | None) -> int | None:
        """The number of a labelled, numbered figure."""

    def caption(self, call: DirectiveCall) -> str:
        """`<figcaption>` with "Figure N:" (when numbered) and the call's body as Markdown;
        empty string when there is neither. Markup wraps every directive's output in
        `<div class="cp-block l-LAYOUT" id="LABEL">`, so directives add no id or layout class."""

    def warn(self, message: str, line: int, hint: str | None = None) -> None:
        """A build warning (an error under --strict)."""


class Directive:
    """Base class of directives. Subclasses set `name`, `options`, `argument`."""

    name: ClassVar[str] = ""
    options: ClassVar[dict[str, Option]] = {}
    argument: ClassVar[str] = "optional"  # "required", "optional" or "none"
    argument_help: ClassVar[str] = ""
    numbered: ClassVar[bool] = True  # a labelled or captioned use gets "Figure N"

    def plan(self, call: DirectiveCall, ctx: PlanContext) -> None:
        """Validate and request analyses. Default: nothing to plan."""

    def follow_up(self, call: DirectiveCall, ctx: Any) -> None:
        """Add requests that depend on results (ctx has both `result` and `request`)."""

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        raise NotImplementedError


class Role:
    """An inline role `{name}`text``. Same two phases as a directive."""

    name: ClassVar[str] = ""

    def plan(self, text: str, file: str, line: int, data: dict[str, Any], ctx: PlanContext) -> None:
        """Validate and request analyses; keep state in `data`."""

    def render(self, text: str, data: dict[str, Any], ctx: RenderContext) -> str:
        raise NotImplementedError


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
        """Let installed packages add directives and roles."""
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            register = ep.load()
            register(self)


def default_registry() -> Registry:
    """The built-in directives and roles plus those of installed plugins."""
    from circuitpress.directives import register_builtins

    registry = Registry()
    register_builtins(registry)
    registry.load_entry_points()
    return registry
