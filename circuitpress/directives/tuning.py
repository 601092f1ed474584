"""`{tuning} REF`: a unit's response to swept synthetic stimuli, drawn as an SVG plot.

`:stimulus:` is one of orientation, curvature, frequency, colour, or a pair such as
`orientation x curvature` (a heat map). Stimulus thumbnails run along the first axis.
"""

from __future__ import annotations

from html import escape

import numpy as np

from circuitpress.directives.circuitry import unit_link
from circuitpress.extensions import (
    Directive,
    DirectiveCall,
    Option,
    PlanContext,
    Registry,
    RenderContext,
    integer,
)
from circuitpress.render import svg
from circuitpress.requests import TuningRequest, canonical_stimulus

THUMBNAILS = 8
_UNITS = {"orientation": "°", "colour": "°", "curvature": "", "frequency": ""}


def _label(axis: str, value: float) -> str:
    if axis in ("orientation", "colour"):
        return f"{value:.0f}°"
    if axis == "curvature":
        return f"{value:.2f}"
    return f"{value:.1f}"


def _title(axis: dict) -> str:
    return f"{axis['name']} ({axis['unit']})"


class TuningDirective(Directive):
    name = "tuning"
    argument = "required"
    argument_help = (
        "REF (e.g. shapes-a/conv2:7) with :stimulus: orientation|curvature|frequency|colour"
    )
    options = {
        "stimulus": Option(
            canonical_stimulus, "orientation", "the swept parameter, or two joined by ' x '"
        ),
        "steps": Option(integer(6, 72), 24, "points along each axis (2-D sweeps use at most 16)"),
    }

    def plan(self, call: DirectiveCall, ctx: PlanContext) -> None:
        ref = ctx.ref(call.argument, call.line)
        call.data["ref"] = ref
        call.data["request"] = TuningRequest(ref, call.options["stimulus"], call.options["steps"])
        ctx.request(call.data["request"])

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        ref = call.data["ref"]
        result = ctx.result(call.data["request"])
        axes = result.data["axes"]
        response = np.asarray(result.data["response"], dtype=np.float64)
        peak_at = [int(i) for i in result.data["peak"]]  # the strongest point, on each axis
        first = axes[0]
        label = f"tuning of {ref} to {call.options['stimulus']}"
        if len(axes) == 1:
            values = first["values"]
            every = max(1, len(values) // 6)
            ticks = [(v, _label(first["name"], v)) for v in values[::every]]
            plot = svg.line_plot_svg(
                values,
                [svg.Series(str(ref), response.tolist())],
                x_label=_title(first),
                y_label="response",
                x_ticks=ticks,
                label=label,
            )
            peak = f"peak at {escape(_label(first['name'], values[peak_at[0]]))}"
        else:
            second = axes[1]
            plot = svg.heatmap_svg(
                response.tolist(),
                x_labels=[_label(second["name"], v) for v in second["values"]],
                y_labels=[_label(first["name"], v) for v in first["values"]],
                x_title=_title(second),
                y_title=_title(first),
                label=label,
            )
            i, j = peak_at
            peak = (
                f"peak at {escape(first['name'])} "
                f"{escape(_label(first['name'], first['values'][i]))}, "
                f"{escape(second['name'])} {escape(_label(second['name'], second['values'][j]))}"
            )
        stimuli = np.asarray(result.arrays["stimuli"])
        step = max(1, len(stimuli) // THUMBNAILS)
        thumbs = []
        for i in range(0, len(stimuli), step):
            text = f"{first['name']} {_label(first['name'], first['values'][i])}"
            url = ctx.image_url(stimuli[i], name=f"stim-{first['name']}-{i}")
            thumbs.append(
                f'<li><img src="{escape(url, quote=True)}" width="40" height="40" '
                f'alt="{escape(text, quote=True)}">'
                f"<span>{escape(_label(first['name'], first['values'][i]))}</span></li>"
            )
        return (
            '<figure class="cp-tuning" '
            f'data-stimulus="{escape(call.options["stimulus"], quote=True)}">'
            f'<div class="cp-tuning-plot">{plot}</div>'
            '<ol class="cp-tuning-stimuli" '
            f'aria-label="stimuli along {escape(first["name"], quote=True)}">'
            f"{''.join(thumbs)}</ol>"
            f'<p class="cp-tuning-meta">{unit_link(ref, ctx)}: {peak}; '
            "each point is the best response over "
            f"{int(result.data.get('variants', 1))} variant(s), "
            "stimuli centred on the unit's receptive field.</p>" + ctx.caption(call) + "</figure>"
        )


DIRECTIVES = [TuningDirective]


def register(registry: Registry) -> None:
    """Entry point `tuning` of the group `circuitpress.directives` (pyproject.toml)."""
    for directive in DIRECTIVES:
        registry.add_directive(directive)
