"""`{universality} MODEL/LAYER ~ MODEL/LAYER`: analogous features across models.

Units of the two layers are matched one to one by the correlation of their activations on the
same images (the Hungarian algorithm); the figure shows the matched pairs side by side,
strongest first, with the mean matched correlation. `:pool:` says what a unit's response to an
image is: its maximum over positions (default), its mean, or every position as a sample.
"""

from __future__ import annotations

from html import escape
from typing import Any

from circuitpress.directives.circuitry import (
    channel_ref,
    layer_info,
    result_or_none,
    thumb,
    unit_link,
)
from circuitpress.directives.figure_parts import caption_with_facts, page_models
from circuitpress.extensions import (
    Directive,
    DirectiveCall,
    FollowUpContext,
    Option,
    PlanContext,
    Registry,
    RenderContext,
    choice,
    integer,
)
from circuitpress.render import svg
from circuitpress.render.numbers import fmt, shared
from circuitpress.requests import POOLS, UniversalityRequest

_POOL_WORDS = {
    "max": "each unit's strongest activation per image",
    "mean": "spatially averaged activations",
    "positions": "activations at every position",
}


def _grid_text(grid: tuple[int, ...]) -> str:
    return "x".join(map(str, grid)) or "no grid"


class UniversalityDirective(Directive):
    name = "universality"
    argument = "required"
    argument_help = "MODEL/LAYER ~ MODEL/LAYER (e.g. shapes-a/conv1 ~ shapes-b/conv1)"
    options = {
        "top": Option(integer(1, 64), 8, "matched pairs shown, strongest first"),
        "pool": Option(
            choice(*POOLS),
            "max",
            "a unit's response to an image: its max or mean over positions, "
            "or every position as a sample",
        ),
    }

    def plan(self, call: DirectiveCall, ctx: PlanContext) -> None:
        parts = call.argument.split("~")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise call.error(
                f"{{universality}} needs two layers joined by '~', got '{call.argument}'",
                hint="write MODEL/LAYER ~ MODEL/LAYER, e.g. shapes-a/conv1 ~ shapes-b/conv1",
            )
        model_a, layer_a = ctx.layer(parts[0], call.line)
        model_b, layer_b = ctx.layer(parts[1], call.line)
        if (model_a, layer_a) == (model_b, layer_b):
            # Every unit would match itself with r = 1: a figure that shows nothing.
            raise call.error(
                f"{{universality}} compares {model_a}/{layer_a} with itself",
                hint="compare a layer of one model with a layer of another, "
                "e.g. shapes-a/conv1 ~ shapes-b/conv1",
            )
        call.data["request"] = UniversalityRequest(
            model_a, layer_a, model_b, layer_b, call.options["pool"]
        )
        call.data["models"] = page_models(ctx, (model_a, model_b))
        ctx.request(call.data["request"])

    def _pairs(self, call: DirectiveCall, ctx: Any) -> list[dict[str, Any]] | None:
        result = result_or_none(ctx, call.data["request"])
        if result is None:
            return None
        return list(result.data["pairs"][: call.options["top"]])

    def follow_up(self, call: DirectiveCall, ctx: FollowUpContext) -> None:
        req: UniversalityRequest = call.data["request"]
        if req.pool == "positions":
            self._check_grids(call, ctx, req)
        for pair in self._pairs(call, ctx) or []:
            ctx.mention(channel_ref(req.model_a, req.layer_a, pair["a"]), call.line)
            ctx.mention(channel_ref(req.model_b, req.layer_b, pair["b"]), call.line)

    def _check_grids(self, call: DirectiveCall, ctx: Any, req: UniversalityRequest) -> None:
        """Position by position needs the same grid in both layers: say so before computing."""
        info_a, info_b = layer_info(ctx, req.model_a), layer_info(ctx, req.model_b)
        if (
            info_a is None
            or info_b is None
            or req.layer_a not in info_a
            or req.layer_b not in info_b
        ):
            return
        grid_a, grid_b = (
            tuple(info_a[req.layer_a]["shape"][1:]),
            tuple(info_b[req.layer_b]["shape"][1:]),
        )
        if grid_a != grid_b:
            raise call.error(
                "':pool: positions' needs layers with the same grid: "
                f"{req.model_a}/{req.layer_a} is "
                f"{_grid_text(grid_a)}, {req.model_b}/{req.layer_b} is {_grid_text(grid_b)}",
                hint="use ':pool: max' or ':pool: mean'",
                line=call.option_line("pool"),
            )

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        req: UniversalityRequest = call.data["request"]
        result = ctx.result(req)
        rows = []
        shown_pairs = result.data["pairs"][: call.options["top"]]
        texts = shared([float(p["r"]) for p in shown_pairs])  # one column: same decimals
        for pair, text in zip(shown_pairs, texts, strict=True):
            a = channel_ref(req.model_a, req.layer_a, pair["a"])
            b = channel_ref(req.model_b, req.layer_b, pair["b"])
            r = svg.num(round(pair["r"], 2))  # machine-readable, for scripts and tests
            label_a, label_b = f"{req.layer_a}:{pair['a']}", f"{req.layer_b}:{pair['b']}"
            width = max(0.0, min(100.0, pair["r"] * 100))
            rows.append(
                f'<li class="cp-match" data-correlation="{r}">'
                f'<span class="cp-match-unit">{thumb(a, ctx)}{unit_link(a, ctx, label_a)}</span>'
                '<span class="cp-match-r">'
                f'<span class="cp-match-bar" style="width:{width:.0f}%"></span>'
                f"r\u202f=\u202f{escape(text)}</span>"
                f'<span class="cp-match-unit">{thumb(b, ctx)}{unit_link(b, ctx, label_b)}'
                "</span></li>"
            )
        mean_value = float(result.data["mean_matched"])
        mean = svg.num(round(mean_value, 3))
        name_a = escape(f"{req.model_a}/{req.layer_a}")
        name_b = escape(f"{req.model_b}/{req.layer_b}")
        images = int(result.data.get("images", result.data["samples"]))
        facts = (
            f"Mean correlation of all {len(result.data['pairs'])} matched pairs: "
            f"<strong>{escape(fmt(mean_value))}</strong> · one-to-one matching of "
            f"{_POOL_WORDS[req.pool]} on {images} images · the {len(rows)} strongest pairs shown"
        )
        return (
            f'<figure class="cp-universality" data-mean-correlation="{mean}">'
            f'<p class="cp-universality-head"><span>{name_a}</span><span>correlation</span>'
            f"<span>{name_b}</span></p>"
            f'<ol class="cp-matches">{"".join(rows)}</ol>'
            + caption_with_facts(call, ctx, facts)
            + "</figure>"
        )


DIRECTIVES = [UniversalityDirective]


def register(registry: Registry) -> None:
    """Entry point `universality` of the group `circuitpress.directives` (pyproject.toml)."""
    for directive in DIRECTIVES:
        registry.add_directive(directive)
