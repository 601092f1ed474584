"""`{tuning} REF`: a unit's response to swept synthetic stimuli, drawn as an SVG plot.

`:stimulus:` is one of orientation, curvature, frequency, colour, or a pair such as
`orientation x curvature` (a heat map). Stimulus thumbnails run along their own axis: under
a curve's x axis; for a heat map, the first parameter's beside its rows and the second's under
its columns.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from circuitpress.directives.circuitry import unit_link
from circuitpress.directives.figure_parts import caption_with_facts, page_models
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
from circuitpress.render.numbers import fmt, shared
from circuitpress.render.stimulus_plot import AxisStimuli, tuning_heatmap_svg
from circuitpress.requests import TuningRequest, canonical_stimulus

if TYPE_CHECKING:  # NumPy is imported where results are drawn
    import numpy as np

THUMBNAILS = 8
_UNITS = {"orientation": "°", "colour": "°", "curvature": "", "frequency": ""}


def _label(axis: str, value: float) -> str:
    """A stimulus parameter as the reader sees it (the formatter of every number shown)."""
    text = fmt(value, trim=True)
    return f"{text}°" if axis in ("orientation", "colour") else text


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
        call.data["models"] = page_models(ctx, (ref.model,))
        ctx.request(call.data["request"])

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        import numpy as np  # only where results are drawn: prose builds never import it

        ref = call.data["ref"]
        result = ctx.result(call.data["request"])
        axes = result.data["axes"]
        response = np.asarray(result.data["response"], dtype=np.float64)
        peak_at = [int(i) for i in result.data["peak"]]  # the strongest point, on each axis
        first = axes[0]
        label = f"tuning of {ref} to {call.options['stimulus']}"
        stimuli = np.asarray(result.arrays["stimuli"])
        thumbs = ""
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
            thumbs = self._strip(first, stimuli, ctx)
        else:
            second = axes[1]
            rows = AxisStimuli(
                _title(first),
                [_label(first["name"], v) for v in first["values"]],
                self._urls(first, stimuli, ctx),
            )
            along_second = result.arrays.get("stimuli_second")
            columns = AxisStimuli(
                _title(second),
                [_label(second["name"], v) for v in second["values"]],
                self._urls(second, np.asarray(along_second), ctx)
                if along_second is not None
                else [],
            )
            texts = shared(response.ravel().tolist())
            width = response.shape[1]
            plot = tuning_heatmap_svg(
                response.tolist(),
                rows,
                columns,
                label=label,
                value_text=[texts[i * width : (i + 1) * width] for i in range(response.shape[0])],
            )
            i, j = peak_at
            peak = (
                f"peak at {escape(first['name'])} "
                f"{escape(_label(first['name'], first['values'][i]))}, "
                f"{escape(second['name'])} {escape(_label(second['name'], second['values'][j]))}"
            )
        variants = int(result.data.get("variants", 1))
        best_of = (
            f"each point the best response over {variants} variants of the stimulus"
            if variants > 1
            else "one stimulus per point"
        )
        facts = f"{unit_link(ref, ctx)} · {peak} · {best_of}, centred on the unit's receptive field"
        return (
            '<figure class="cp-tuning" '
            f'data-stimulus="{escape(call.options["stimulus"], quote=True)}">'
            f'<div class="cp-tuning-plot">{plot}</div>{thumbs}'
            + caption_with_facts(call, ctx, facts)
            + "</figure>"
        )

    def _urls(self, axis: dict, stimuli: np.ndarray, ctx: RenderContext) -> list[str | None]:
        """A thumbnail URL per value of `axis`, from the stimuli along it."""
        name = axis["name"]
        return [
            ctx.image_url(stimuli[i], name=f"stim-{name}-{i}") if i < len(stimuli) else None
            for i in range(len(axis["values"]))
        ]

    def _strip(self, axis: dict, stimuli: np.ndarray, ctx: RenderContext) -> str:
        """The stimuli of a curve, under its x axis (every k-th, at most THUMBNAILS)."""
        step = max(1, len(stimuli) // THUMBNAILS)
        items = []
        for i in range(0, len(stimuli), step):
            text = f"{axis['name']} {_label(axis['name'], axis['values'][i])}"
            url = ctx.image_url(stimuli[i], name=f"stim-{axis['name']}-{i}")
            items.append(
                f'<li><img src="{escape(url, quote=True)}" width="40" height="40" '
                f'alt="{escape(text, quote=True)}">'
                f"<span>{escape(_label(axis['name'], axis['values'][i]))}</span></li>"
            )
        return (
            '<ol class="cp-tuning-stimuli" '
            f'aria-label="stimuli along {escape(axis["name"], quote=True)}">'
            f"{''.join(items)}</ol>"
        )


DIRECTIVES = [TuningDirective]


def register(registry: Registry) -> None:
    """Entry point `tuning` of the group `circuitpress.directives` (pyproject.toml)."""
    for directive in DIRECTIVES:
        registry.add_directive(directive)
