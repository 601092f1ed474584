"""`{claim} TITLE`: a falsifiable prediction about a circuit, checked at every build.

    :::{claim} Curve detectors are built from early curve detectors
    :ablate: shapes-a/conv2:3,7
    :measure: shapes-a/conv3:5
    :expect: decrease >= 50%
    :::

The build measures before and after the edit; the figure states the prediction, both numbers
and whether it held (`data-claim="held"` or `"failed"`). A failed claim is a build warning
(an error under --strict). Units, classes and layer order are checked against the cached model
facts in `follow_up`, so a mistake names the option's line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Any

from circuitpress.directives import lm
from circuitpress.directives.circuitry import (
    check_same_model,
    check_units,
    is_kernel_layer,
    layer_info,
    result_or_none,
    split_pair,
    unit_link,
)
from circuitpress.errors import choices_hint
from circuitpress.extensions import (
    Directive,
    DirectiveCall,
    FollowUpContext,
    Option,
    PlanContext,
    Registry,
    RenderContext,
    choice,
    text,
)
from circuitpress.render import svg
from circuitpress.render.numbers import percent, shared
from circuitpress.requests import ClaimRequest, ModelInfoRequest, UnitRef, canonical_stimulus

_EXPECT = re.compile(
    r"^(?P<dir>decrease|increase)(?:\s*(?:>=|≥|by at least)\s*(?P<pct>\d+(?:\.\d+)?)\s*%)?$"
    r"|^unchanged(?:\s*within\s*(?P<tol>\d+(?:\.\d+)?)\s*%)?$"
)
DEFAULT_TOLERANCE = 5.0


@dataclass(frozen=True)
class Expectation:
    """`decrease`/`increase` by at least `percent`, or `unchanged` within `percent`."""

    direction: str  # decrease | increase | unchanged
    percent: float

    def holds(self, before: float, after: float, change: float) -> bool:
        pct = change * 100.0
        if self.direction == "decrease":
            return after < before and -pct >= self.percent
        if self.direction == "increase":
            return after > before and pct >= self.percent
        return abs(pct) <= self.percent

    def describe(self) -> str:
        if self.direction == "unchanged":
            return f"stays within {percent(self.percent, trim=True)}"
        amount = f" by at least {percent(self.percent, trim=True)}" if self.percent else ""
        return f"{self.direction}s{amount}"


def expectation(value: str) -> Expectation:
    v = " ".join(value.strip().lower().split())
    m = _EXPECT.match(v)
    if not m:
        raise ValueError(
            f"unknown expectation '{value.strip()}' (write decrease, increase or unchanged, "
            "optionally 'decrease >= 50%' or 'unchanged within 5%')"
        )
    if m.group("dir"):
        return Expectation(m.group("dir"), float(m.group("pct") or 0.0))
    return Expectation("unchanged", float(m.group("tol") or DEFAULT_TOLERANCE))


def _ablated_units(call: DirectiveCall, ctx: PlanContext) -> list[tuple[UnitRef, int]]:
    """`:ablate: m/conv1:0,3,5; m/conv2:4` -> one reference per layer, with the option's line."""
    value = call.options.get("ablate")
    if not value:
        return []
    line = call.option_line("ablate")
    units = []
    for part in [p.strip() for p in value.split(";") if p.strip()]:
        layer_text, sep, channels = part.rpartition(":")
        items = [c.strip() for c in channels.split(",")]
        if not sep or not items or not all(c.isdigit() for c in items):
            raise call.error(
                f"option ':ablate:' of {{claim}}: bad units '{part}'",
                hint="write MODEL/LAYER:UNITS with units separated by commas, "
                "e.g. shapes-a/conv1:0,3,5",
                line=line,
            )
        model, layer = ctx.layer(layer_text, line)
        chs = list(dict.fromkeys(int(c) for c in items))
        units.append((UnitRef(model, layer, tuple((c, 1.0) for c in chs)), line))
    return units


class ClaimDirective(Directive):
    name = "claim"
    argument = "required"
    argument_help = "TITLE (the prediction, in words)"
    options = {
        "ablate": Option(
            text, None, "units to zero: MODEL/LAYER:0,3,5 (several layers: separate with ';')"
        ),
        "ablate-weights": Option(text, None, "a direct connection to zero: A -> B"),
        "measure": Option(text, None, "a unit, or accuracy / accuracy:CLASS"),
        "stimulus": Option(
            canonical_stimulus, None, "measure a unit on swept stimuli instead of the dataset"
        ),
        "expect": Option(
            expectation, None, "decrease, increase or unchanged, e.g. 'decrease >= 50%'"
        ),
        "compare": Option(text, None, "a language model whose unablated measure is 'before'"),
        "ablation": Option(choice("zero", "mean"), "zero", "a language model's ablation"),
    }

    def plan(self, call: DirectiveCall, ctx: PlanContext) -> None:
        for key in ("measure", "expect"):
            if not call.options.get(key):
                raise call.error(
                    f"{{claim}} needs the option ':{key}:'", hint=self.options[key].help
                )
        if lm.is_lm_claim(call.options):  # heads, loss, head scores: directives/lm.py
            lm.plan_claim(call, ctx)
            return
        ablate = _ablated_units(call, ctx)
        pairs: list[tuple[UnitRef, UnitRef]] = []
        if call.options.get("ablate-weights"):
            line = call.option_line("ablate-weights")
            left, right = split_pair(
                call.options["ablate-weights"], call, line, "option ':ablate-weights:'"
            )
            src, dst = ctx.ref(left, line), ctx.ref(right, line)
            check_same_model(src, dst, call, line, "option ':ablate-weights:'")
            if src.is_direction or dst.is_direction:
                raise call.error(
                    "option ':ablate-weights:' needs two channels, not directions", line=line
                )
            pairs.append((src.channel_ref() or src, dst.channel_ref() or dst))
        if not ablate and not pairs:
            raise call.error(
                "{claim} needs an edit",
                hint="add ':ablate: MODEL/LAYER:UNITS' or ':ablate-weights: A -> B'",
            )
        measure_line = call.option_line("measure")
        measure_text = call.options["measure"]
        measure_ref: UnitRef | None = None
        if measure_text == "accuracy" or measure_text.startswith("accuracy:"):
            if call.options.get("stimulus"):
                raise call.error(
                    "':stimulus:' needs a unit to measure, not accuracy",
                    line=call.option_line("stimulus"),
                )
        else:
            measure_ref = ctx.ref(measure_text, measure_line)
        models = (
            {r.model for r, _ in ablate}
            | {s.model for s, _ in pairs}
            | ({measure_ref.model} if measure_ref else set())
        )
        if len(models) > 1:
            raise call.error(
                f"{{claim}} edits and measures different models ({', '.join(sorted(models))})",
                hint="an edit of one model can only change that model's responses",
                line=measure_line,
            )
        model = models.pop()
        call.data.update(
            model=model,
            ablate=ablate,
            pairs=pairs,
            measure_ref=measure_ref,
            measure=str(measure_ref) if measure_ref else measure_text,
        )
        ctx.request(ModelInfoRequest(model))

    def follow_up(self, call: DirectiveCall, ctx: FollowUpContext) -> None:
        if call.data.get("lm"):
            ctx.request(call.data["request"])
            return
        info = result_or_none(ctx, ModelInfoRequest(call.data["model"]))
        layers = layer_info(ctx, call.data["model"])
        if info is None or layers is None:
            return
        self._validate(call, layers, list(info.data.get("classes", [])))
        call.data["request"] = self._request(call)
        ctx.request(call.data["request"])

    def _validate(
        self, call: DirectiveCall, layers: dict[str, dict[str, Any]], classes: list[str]
    ) -> None:
        for ref, line in call.data["ablate"]:
            check_units(
                call,
                ref.channels,
                layers,
                ref.model,
                ref.layer,
                line=line,
                what="option ':ablate:' of {claim}",
            )
        names = list(layers)
        for src, dst in call.data["pairs"]:
            line = call.option_line("ablate-weights")
            i, j = names.index(src.layer), names.index(dst.layer)
            if i >= j:
                raise call.error(
                    f"option ':ablate-weights:' of {{claim}}: layer '{src.layer}' "
                    f"comes after '{dst.layer}'",
                    hint=f"the earlier layer goes first: {dst} -> {src}",
                    line=line,
                )
            between = [n for n in names[i + 1 : j] if is_kernel_layer(layers[n])]
            if between or not is_kernel_layer(layers[dst.layer]):
                raise call.error(
                    "option ':ablate-weights:' of {claim}: no single kernel connects "
                    f"'{src.layer}' to '{dst.layer}'",
                    hint="ablate weights into a conv or linear layer from the layer just before it"
                    + (f" ({between[-1]} -> {dst.layer})" if between else ""),
                    line=line,
                )
        measure = call.data["measure"]
        if measure.startswith("accuracy:"):
            name = measure.split(":", 1)[1].strip()
            if name not in classes and not (name.isdigit() and int(name) < len(classes)):
                raise call.error(
                    f"option ':measure:' of {{claim}}: the model has no class '{name}'",
                    hint=choices_hint(name, classes),
                    line=call.option_line("measure"),
                )

    def _request(self, call: DirectiveCall) -> ClaimRequest:
        # The unit as markup parsed it (analysis never parses references), else the accuracy.
        ref: UnitRef | None = call.data["measure_ref"]
        return ClaimRequest(
            model=call.data["model"],
            measure=ref if ref is not None else call.data["measure"],
            ablate=tuple(ref for ref, _ in call.data["ablate"]),
            ablate_weights=tuple(call.data["pairs"]),
            stimulus=call.options.get("stimulus"),
        )

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        if call.data.get("lm"):
            return lm.render_claim(call, ctx, call.options["expect"])
        result = ctx.result(call.data.get("request") or self._request(call))
        expect: Expectation = call.options["expect"]
        before, after, change = (float(result.data[k]) for k in ("before", "after", "change"))
        held = expect.holds(before, after, change)
        status = "held" if held else "failed"
        edits = [
            "zero "
            f"{unit_link(ref, ctx, f'{ref.model}/{ref.layer}:' + ','.join(map(str, ref.channels)))}"
            for ref, _ in call.data["ablate"]
        ]
        edits += [
            f"zero the weights {unit_link(s, ctx)} → {unit_link(d, ctx)}"
            for s, d in call.data["pairs"]
        ]
        ref = call.data["measure_ref"]
        if ref is not None:
            where = (
                f"on {escape(call.options['stimulus'])} stimuli"
                if call.options.get("stimulus")
                else f"on {int(result.data['samples'])} dataset images"
            )
            measured = f"the activation of {unit_link(ref, ctx)} {where}"
        elif call.data["measure"].startswith("accuracy:"):
            name = call.data["measure"].split(":", 1)[1].strip()
            count = int(result.data.get("measured", result.data["samples"]))
            measured = (
                f"the accuracy on the {count} images of class ‘{escape(name)}’ "
                f"among {int(result.data['samples'])} dataset images"
            )
        else:
            measured = f"the accuracy on {int(result.data['samples'])} dataset images"
        title = escape(call.argument)
        if not held:
            ctx.warn(
                f"claim '{call.argument}' failed: predicted that the measure {expect.describe()}, "
                f"measured {svg.num(before)} -> {svg.num(after)} ({svg.num(change * 100)}%)",
                call.line,
                hint="fix the claim or the circuit it describes",
            )
        # Before and after read as one pair: the same decimals; the change as a percentage.
        before_text, after_text = (escape(t) for t in shared([before, after]))
        pct = escape(percent(change * 100, signed=True))
        return (
            f'<figure class="cp-claim cp-claim-{status}" data-claim="{status}">'
            '<p class="cp-claim-title"><span class="cp-claim-badge">'
            f"{'✓ held' if held else '✗ failed'}</span> {title}</p>"
            f'<p class="cp-claim-prediction">Prediction: when we {"; ".join(edits)}, '
            f"{measured} {escape(expect.describe())}.</p>"
            '<dl class="cp-claim-numbers"><dt>before</dt>'
            f'<dd data-value="{svg.num(before)}">{before_text}</dd>'
            f'<dt>after</dt><dd data-value="{svg.num(after)}">{after_text}</dd>'
            f'<dt>change</dt><dd data-value="{svg.num(change * 100)}">{pct}</dd></dl>'
            + ctx.caption(call)
            + "</figure>"
        )


DIRECTIVES = [ClaimDirective]


def register(registry: Registry) -> None:
    """Entry point `claims` of the group `circuitpress.directives` (pyproject.toml)."""
    for directive in DIRECTIVES:
        registry.add_directive(directive)
