"""The directive and role API: what a directive is, and the contexts the build hands it.

A directive is a class with a name, an option spec and up to three methods:

- `plan(call, ctx)`      at parse time, before any model runs: validate, parse references with
                         `ctx.ref(...)`, and ask for analysis with `ctx.request(...)`; store what
                         render needs in `call.data`.
- `follow_up(call, ctx)` optional, for a directive that only knows what it needs after a first
                         result (a circuit's nodes): called with the results so far, it may ask
                         for more; the build repeats until nothing new is asked for.
- `render(call, ctx)`    after the engine ran: return HTML, reading results with `ctx.result(...)`.

The contexts are Protocols: the build implements them (circuitpress.build.contexts), tests may
implement them with stand-ins, and a directive depends on nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from circuitpress.errors import UserError
from circuitpress.extensions.options import Option

if TYPE_CHECKING:
    from circuitpress.requests import Request, Result, UnitRef


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


class PlanRecorder(Protocol):
    """What the build records for one page at parse time (references, layers, requests)."""

    file: str
    default_model: str | None

    def ref(self, text: str, line: int) -> UnitRef:
        """Parse a feature reference, record it for validation and as a mention of the unit."""
        ...

    def layer(self, text: str, line: int) -> tuple[str, str]:
        """Parse `MODEL/LAYER`, record it for validation."""
        ...

    def request(self, request: Request) -> None:
        """Ask the engine for a result."""
        ...

    def mention(self, ref: UnitRef, line: int) -> None:
        """Record a unit for a unit page and backlinks without validating more."""
        ...


class PlanContext(PlanRecorder, Protocol):
    """What a directive may do at parse time: the build's planner, plus the site folder for
    directives that check the author's files."""

    site_root: Path

    def ref(self, text: str, line: int) -> UnitRef:
        """Parse a feature reference, record it for validation and as a mention of the unit."""
        ...

    def layer(self, text: str, line: int) -> tuple[str, str]:
        """Parse `MODEL/LAYER`, record it for validation."""
        ...

    def request(self, request: Request) -> None:
        """Ask the engine for a result."""
        ...

    def mention(self, ref: UnitRef, line: int) -> None:
        """Record a unit for a unit page and backlinks without validating more."""
        ...


class PendingResult(LookupError):
    """Raised by `RenderServices.result` for a result the build has not computed yet: a
    preview that shows pages before their figures, or `circuitpress check`, which computes
    nothing. The build renders the directive (or role) as a placeholder; a directive need not
    catch it."""

    def __init__(self, request: Request):
        super().__init__(f"not computed yet: {request.key()}")
        self.request = request


class ResultSource(Protocol):
    """Results of the requests made so far (both follow-up and render contexts are one)."""

    def result(self, request: Request) -> Result:
        """The computed result of a request; RuntimeError when it was never requested,
        PendingResult while it is planned but not computed (see PendingResult)."""
        ...

    def has_result(self, request: Request) -> bool:
        """Whether the result is available now (follow-ups see a build's earlier rounds)."""
        ...


class FollowUpContext(PlanRecorder, ResultSource, Protocol):
    """What `Directive.follow_up` sees: the results so far, and a PlanContext for the next round."""


class RenderServices(ResultSource, Protocol):
    """What the build provides for rendering one page: results, assets, URLs, warnings."""

    file: str

    def image_url(self, array: Any, *, name: str = "fig") -> str:
        """Write an image (float [H,W,3] in 0..1 or uint8) as a PNG asset; return its URL."""
        ...

    def asset_url(self, data: bytes, ext: str, *, name: str = "asset") -> str:
        """Write bytes as a content-addressed asset; return its URL (honours base_url)."""
        ...

    def url(self, site_path: str) -> str:
        """URL of a site-relative path such as 'units/m/conv1/3/' (honours base_url)."""
        ...

    def unit_url(self, ref: UnitRef) -> str | None:
        """URL of a unit's page, or None for directions."""
        ...

    def thumbnail_url(self, ref: UnitRef) -> str | None:
        """URL of the unit's standard feature-vis thumbnail (requested for every mention)."""
        ...

    def warn(self, message: str, line: int, hint: str | None = None) -> None:
        """A build warning (an error under --strict)."""
        ...


class RenderContext(RenderServices, Protocol):
    """What a directive may use when rendering: the build's services plus what only markup
    knows (the page's figure numbers, citations, and how to render a caption's Markdown)."""

    def markdown(self, source: str, *, inline: bool = False) -> str:
        """Render author Markdown (a caption) with the page's roles and citations."""
        ...

    def figure_number(self, label: str | None) -> int | None:
        """The number of a labelled, numbered figure."""
        ...

    def caption(self, call: DirectiveCall) -> str:
        """`<figcaption>` with "Figure N:" (when numbered) and the call's body as Markdown;
        empty string when there is neither. Markup wraps every directive's output in
        `<div class="cp-block l-LAYOUT" id="LABEL">`, so directives add no id or layout class."""
        ...


class Directive:
    """Base class of directives. Subclasses set `name`, `options`, `argument`."""

    name: ClassVar[str] = ""
    options: ClassVar[dict[str, Option]] = {}
    argument: ClassVar[str] = "optional"  # "required", "optional" or "none"
    argument_help: ClassVar[str] = ""
    numbered: ClassVar[bool] = True  # a labelled or captioned use gets "Figure N"

    def plan(self, call: DirectiveCall, ctx: PlanContext) -> None:
        """Validate and request analyses. Default: nothing to plan."""

    def follow_up(self, call: DirectiveCall, ctx: FollowUpContext) -> None:
        """Add requests that depend on results. Default: nothing to add."""

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        raise NotImplementedError


class Role:
    """An inline role `{name}`text``. Same two phases as a directive."""

    name: ClassVar[str] = ""

    def plan(self, text: str, file: str, line: int, data: dict[str, Any], ctx: PlanContext) -> None:
        """Validate and request analyses; keep state in `data`."""

    def render(self, text: str, data: dict[str, Any], ctx: RenderContext) -> str:
        raise NotImplementedError
