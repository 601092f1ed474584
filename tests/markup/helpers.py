"""A tiny fake build for markup tests: a PlanContext that records, RenderServices that fake URLs,
and a test directive/role that show exactly what markup handed them."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from circuitpress.config import SiteConfig
from circuitpress.directives import figure
from circuitpress.extensions import (
    Directive,
    DirectiveCall,
    Option,
    Registry,
    Role,
    choice,
    integer,
)
from circuitpress.markup import Markup, ParsedPage, RenderedPage

FIXTURES = Path(__file__).parent / "fixtures"


class Probe(Directive):
    """Renders its argument, converted options and caption, so fixtures show what it got."""

    name = "probe"
    argument = "required"
    argument_help = "THING"
    options = {
        "count": Option(integer(1, 10), default=3),
        "mode": Option(choice("fast", "slow"), default="fast"),
    }

    def plan(self, call: DirectiveCall, ctx: Any) -> None:
        ctx.request(("probe", call.argument, call.options["count"]))
        call.data["planned"] = True

    def render(self, call: DirectiveCall, ctx: Any) -> str:
        opts = ", ".join(f"{k}={call.options[k]}" for k in sorted(call.options))
        number = ctx.figure_number(call.label) if call.label else None
        return (
            f'<figure class="probe" data-arg="{html.escape(call.argument)}"'
            f' data-options="{html.escape(opts)}"'
            f' data-number="{number}" data-planned="{call.data.get("planned")}">'
            f"{ctx.caption(call)}</figure>"
        )


class Chip(Role):
    """A registry role (like {unit}): plan records the line, render shows it."""

    name = "chip"

    def plan(self, text: str, file: str, line: int, data: dict[str, Any], ctx: Any) -> None:
        data["line"] = line
        ctx.mention(text, line)

    def render(self, text: str, data: dict[str, Any], ctx: Any) -> str:
        return f'<span class="chip" data-line="{data["line"]}">{html.escape(text)}</span>'


class FakePlan:
    def __init__(self, file: str, default_model: str | None = None):
        self.file, self.default_model = file, default_model
        self.requests: list[Any] = []
        self.mentions: list[tuple[Any, int]] = []

    def ref(self, text: str, line: int) -> Any:
        return text

    def layer(self, text: str, line: int) -> tuple[str, str]:
        model, _, layer = text.partition("/")
        return model, layer

    def request(self, request: Any) -> None:
        self.requests.append(request)

    def mention(self, ref: Any, line: int) -> None:
        self.mentions.append((ref, line))


class FakeServices:
    def __init__(self, file: str):
        self.file = file
        self.assets: list[tuple[str, int]] = []
        self.warnings: list[tuple[str, int]] = []

    def result(self, request: Any) -> Any:
        raise KeyError(request)

    def image_url(self, array: Any, *, name: str = "fig") -> str:
        return f"/assets/{name}.png"

    def asset_url(self, data: bytes, ext: str, *, name: str = "asset") -> str:
        self.assets.append((name, len(data)))
        return f"/assets/{name}-{len(data)}.{ext}"

    def url(self, site_path: str) -> str:
        return "/base/" + site_path

    def unit_url(self, ref: Any) -> str | None:
        return None

    def thumbnail_url(self, ref: Any) -> str | None:
        return None

    def warn(self, message: str, line: int, hint: str | None = None) -> None:
        self.warnings.append((message, line))


def registry() -> Registry:
    reg = Registry()
    for d in figure.DIRECTIVES:
        reg.add_directive(d)
    reg.add_directive(Probe)
    reg.add_role(Chip)
    return reg


def markup(root: Path = FIXTURES, base_url: str = "https://example.org/notes/") -> Markup:
    from circuitpress.config import SiteSettings

    config = SiteConfig(
        root=root.resolve(),
        path=root.resolve() / "circuitpress.toml",
        site=SiteSettings(title="Fixture site", base_url=base_url),
    )
    return Markup(config, registry())


def parse(
    source: str, file: str = "content/page.md", m: Markup | None = None
) -> tuple[ParsedPage, FakePlan]:
    plans: list[FakePlan] = []

    def plan(meta: Any) -> FakePlan:
        plans.append(FakePlan(file, meta.model))
        return plans[-1]

    page = (m or markup()).parse(file, source, plan)
    return page, plans[0]


def build(source: str, file: str = "content/page.md", m: Markup | None = None) -> RenderedPage:
    m = m or markup()
    page, _ = parse(source, file, m)
    return m.render(page, FakeServices(file))
