"""The contexts directives see during a build: a page's render services (results, assets,
URLs, warnings) and the follow-up context (results so far, requests for the next round)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from circuitpress.build.plan import PagePlanner
from circuitpress.errors import BuildWarning
from circuitpress.extensions import PendingResult
from circuitpress.requests import Request, Result, UnitRef, unit_page_path

if TYPE_CHECKING:
    from circuitpress.build.pipeline import SiteBuild
    from circuitpress.markup import ParsedPage


@dataclass
class PageState:
    page: "ParsedPage"
    planner: PagePlanner

    @property
    def slug(self) -> str:
        return self.page.slug

    @property
    def url_path(self) -> str:
        return f"{self.page.slug}/" if self.page.slug else ""


class Services:
    """RenderServices for one page: results, assets, URLs, warnings."""

    def __init__(self, build: "SiteBuild", file: str):
        self.build = build
        self.file = file
        self.assets: dict[str, bytes] = {}  # what this page wrote, replayed on a memo hit
        self.pending = False  # whether a figure of the page is a placeholder (never memoised)

    def result(self, request: Request) -> Result:
        planner = self.build.planner
        if request in planner.results:
            return planner.results[request]
        if planner.known(request) or not self.build.options.compute:
            self.pending = True
            raise PendingResult(request)
        return planner.result(request)  # never planned: an internal error

    def has_result(self, request: Request) -> bool:
        return request in self.build.planner.results

    def image_url(self, array: Any, *, name: str = "fig") -> str:
        from circuitpress.render.images import to_png

        return self.asset_url(to_png(array), "png", name=name)

    def asset_url(self, data: bytes, ext: str, *, name: str = "asset") -> str:
        rel = self.build.writer.asset(data, ext, name)
        self.assets[rel] = data
        return self.build.theme.url(rel)

    def url(self, site_path: str) -> str:
        return self.build.theme.url(site_path)

    def unit_url(self, ref: UnitRef) -> str | None:
        path = unit_page_path(ref)
        return self.build.theme.url(path) if path else None

    def thumbnail_url(self, ref: UnitRef) -> str | None:
        from circuitpress.structure.units import neighbour_thumbnail_request, thumbnail_request

        # Neurons share their channel's thumbnail; a direction has one only if a page asked.
        # A unit with only a neighbour page has the quicker thumbnail of those pages.
        unit = ref.channel_ref() or ref
        request = thumbnail_request(unit)
        if request not in self.build.planner.results:
            request = neighbour_thumbnail_request(unit)
        if request not in self.build.planner.results:
            return None
        images = self.result(request).arrays["images"]
        return self.image_url(images[0], name=f"{ref.layer}-{ref.unit_text}")

    def warn(self, message: str, line: int, hint: str | None = None) -> None:
        self.build.warnings.append(BuildWarning(message, file=self.file, line=line, hint=hint))


class FollowUp:
    """The context of `Directive.follow_up`: results of this round, requests for the next."""

    def __init__(self, build: "SiteBuild", state: PageState, recorder: PagePlanner):
        self.build, self.state = build, state
        self.file = state.planner.file
        self.default_model = state.planner.default_model
        self.recorder = recorder  # this build's follow-up refs and mentions of the page
        self.new: list[Request] = []
        # Results a follow-up looked for and did not find: it needs them to go on (a circuit's
        # next layer, a comparison's matched units), so the build computes them this round;
        # everything else waits until no round asks for more.
        self.needed: list[Request] = []

    def result(self, request: Request) -> Result:
        return self.build.planner.result(request)

    def has_result(self, request: Request) -> bool:
        if request in self.build.planner.results:
            return True
        self.needed.append(request)
        return False

    def request(self, request: Request) -> None:
        if not self.build.planner.known(request):
            self.new.append(request)
        self.recorder.request(request)

    def mention(self, ref: UnitRef, line: int) -> None:
        self.recorder.mention(ref, line)

    def ref(self, text: str, line: int) -> UnitRef:
        return self.recorder.ref(text, line)

    def layer(self, text: str, line: int) -> tuple[str, str]:
        return self.recorder.layer(text, line)
