"""`{universality} MODEL/LAYER ~ MODEL/LAYER`: analogous features across models.

Units of the two layers are matched one to one by the correlation of their activations on the
same images (the Hungarian algorithm); the figure shows the matched pairs side by side,
strongest first, with the mean matched correlation.
"""

from __future__ import annotations

from html import escape
from typing import Any

from circuitpress.directives._circuitry import channel_ref, result_or_none, thumb, unit_link
from circuitpress.markup.registry import Directive, DirectiveCall, Option, PlanContext, RenderContext, integer
from circuitpress.render import svg
from circuitpress.requests import UniversalityRequest


class UniversalityDirective(Directive):
    name = "universality"
    argument = "required"
    argument_help = "MODEL/LAYER ~ MODEL/LAYER (e.g. shapes-a/conv1 ~ shapes-b/conv1)"
    options = {"top": Option(integer(1, 64), 8, "matched pairs shown, strongest first")}

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
                hint="compare a layer of one model with a layer of another, e.g. shapes-a/conv1 ~ shapes-b/conv1",
            )
        call.data["request"] = UniversalityRequest(model_a, layer_a, model_b, layer_b)
        ctx.request(call.data["request"])

    def _pairs(self, call: DirectiveCall, ctx: Any) -> list[dict[str, Any]] | None:
        result = result_or_none(ctx, call.data["request"])
        if result is None:
            return None
        return list(result.data["pairs"][: call.options["top"]])

    def follow_up(self, call: DirectiveCall, ctx: Any) -> None:
        req: UniversalityRequest = call.data["request"]
        for pair in self._pairs(call, ctx) or []:
            ctx.mention(channel_ref(req.model_a, req.layer_a, pair["a"]), call.line)
            ctx.mention(channel_ref(req.model_b, req.layer_b, pair["b"]), call.line)

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        req: UniversalityRequest = call.data["request"]
        result = ctx.result(req)
        rows = []
        for pair in result.data["pairs"][: call.options["top"]]:
            a = channel_ref(req.model_a, req.layer_a, pair["a"])
            b = channel_ref(req.model_b, req.layer_b, pair["b"])
            r = svg.num(round(pair["r"], 2))
            label_a, label_b = f"{req.layer_a}:{pair['a']}", f"{req.layer_b}:{pair['b']}"
            width = max(0.0, min(100.0, pair["r"] * 100))
            rows.append(
                f'<li class="cp-match" data-correlation="{r}">'
                f'<span class="cp-match-unit">{thumb(a, ctx)}{unit_link(a, ctx, label_a)}</span>'
                f'<span class="cp-match-r"><span class="cp-match-bar" style="width:{width:.0f}%"></span>r = {r}</span>'
                f'<span class="cp-match-unit">{thumb(b, ctx)}{unit_link(b, ctx, label_b)}</span></li>'
            )
        mean = svg.num(round(result.data["mean_matched"], 3))
        name_a = escape(f"{req.model_a}/{req.layer_a}")
        name_b = escape(f"{req.model_b}/{req.layer_b}")
        return (
            f'<figure class="cp-universality" data-mean-correlation="{mean}">'
            f'<p class="cp-universality-head"><span>{name_a}</span><span>correlation</span><span>{name_b}</span></p>'
            f'<ol class="cp-matches">{"".join(rows)}</ol>'
            f'<p class="cp-universality-meta">Mean correlation of all {len(result.data["pairs"])} matched pairs: '
            f"<strong>{mean}</strong> (one-to-one matching of spatially averaged activations on "
            f"{int(result.data['samples'])} images; the {len(rows)} strongest pairs shown).</p>"
            + ctx.caption(call)
            + "</figure>"
        )


DIRECTIVES = [UniversalityDirective]
