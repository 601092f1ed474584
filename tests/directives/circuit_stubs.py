"""Stand-in plan, follow-up and render contexts for the circuits directives."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

from circuitpress.extensions import Directive, DirectiveCall
from circuitpress.markup.refs import parse_layer_ref, parse_ref
from circuitpress.requests import ModelInfoRequest, Request, Result, UnitRef, unit_page_path

FILE = "content/test.md"


def model_info(*layers: tuple[str, str, int], classes: tuple[str, ...] = ("blue", "red")) -> Result:
    return Result(
        data={
            "layers": [
                {
                    "name": n,
                    "type": t,
                    "units": u,
                    "shape": [u, 8, 8],
                    "kernel_layer": t in ("Conv2d", "Linear"),
                }
                for n, t, u in layers
            ],
            "classes": list(classes),
        }
    )


TOY_INFO = model_info(
    ("conv1", "Conv2d", 4),
    ("relu1", "ReLU", 4),
    ("pool1", "MaxPool2d", 4),
    ("conv2", "Conv2d", 5),
    ("relu2", "ReLU", 5),
    ("conv3", "Conv2d", 6),
    ("head", "Linear", 2),
)


@dataclass
class Ctx:
    """Plan, follow-up and render context in one (each phase uses its part)."""

    results: dict[Request, Result] = field(default_factory=dict)
    default_model: str | None = "toy"
    file: str = FILE
    requests: list[Request] = field(default_factory=list)
    mentions: list[UnitRef] = field(default_factory=list)
    layers: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, int]] = field(default_factory=list)
    images: int = 0

    def __post_init__(self) -> None:
        self.results.setdefault(ModelInfoRequest("toy"), TOY_INFO)

    # plan / follow-up
    def ref(self, text: str, line: int) -> UnitRef:
        ref = parse_ref(text, self.default_model)
        self.mentions.append(ref)
        return ref

    def layer(self, text: str, line: int) -> tuple[str, str]:
        pair = parse_layer_ref(text, self.default_model)
        self.layers.append(pair)
        return pair

    def request(self, request: Request) -> None:
        self.requests.append(request)

    def mention(self, ref: UnitRef, line: int) -> None:
        self.mentions.append(ref)

    def has_result(self, request: Request) -> bool:
        return request in self.results

    def result(self, request: Request) -> Result:
        if request not in self.results:
            raise RuntimeError(f"no result for {request.key()}")
        return self.results[request]

    # render
    def image_url(self, array: Any, *, name: str = "fig") -> str:
        self.images += 1
        return f"/assets/{name}.png"

    def asset_url(self, data: bytes, ext: str, *, name: str = "asset") -> str:
        return f"/assets/{name}.{ext}"

    def url(self, site_path: str) -> str:
        return "/" + site_path

    def unit_url(self, ref: UnitRef) -> str | None:
        path = unit_page_path(ref)
        return "/" + path if path else None

    def thumbnail_url(self, ref: UnitRef) -> str | None:
        return f"/assets/thumb-{ref.layer}-{ref.unit_text}.png"

    def caption(self, call: DirectiveCall) -> str:
        return f"<figcaption>{escape(call.body)}</figcaption>" if call.body else ""

    def markdown(self, source: str, *, inline: bool = False) -> str:
        return escape(source)

    def warn(self, message: str, line: int, hint: str | None = None) -> None:
        self.warnings.append((message, line))


def make_call(
    directive: Directive,
    argument: str,
    options: dict[str, str] | None = None,
    body: str = "",
    line: int = 10,
) -> DirectiveCall:
    """A call as markup makes it: options converted, defaults filled, option lines recorded."""
    options = options or {}
    call = DirectiveCall(
        name=directive.name, argument=argument, options={}, body=body, file=FILE, line=line
    )
    call.data["_option_lines"] = {k: line + 1 + i for i, k in enumerate(options)}
    for key, value in options.items():
        call.options[key] = directive.options[key].convert(value)
    for key, option in directive.options.items():
        call.options.setdefault(key, option.default)
    return call
