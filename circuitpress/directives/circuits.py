"""`{weights}` and `{circuit}`: how features connect (the second claim of "Zoom In").

- `{weights} A -> B` draws the kernel from feature A to feature B (red positive, blue negative,
  one symmetric scale). Across non-adjacent layers it is the expanded weight, and says so.
- `{weights} * -> B` with `:top: N` draws a grid of B's strongest inputs with kernels and
  feature visualizations.
- `{circuit} REF` draws the unit and its strongest inputs (recursively with `:depth:`) as an SVG
  diagram whose nodes link to unit pages; circuit.js adds kernel and example hover cards.

The layer order of `A -> B` is checked against the cached model facts in `follow_up` (plan time
knows no layer order); the weights are only requested once the order is known to be right.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from circuitpress.directives import lm
from circuitpress.directives.circuitry import (
    channel_ref,
    check_order,
    check_same_model,
    check_units,
    input_layer,
    kernel_cell,
    kernel_json,
    layer_info,
    result_or_none,
    split_pair,
    symmetric_scale,
    thumb,
    unit_link,
)
from circuitpress.extensions import (
    Directive,
    DirectiveCall,
    FollowUpContext,
    Option,
    PlanContext,
    Registry,
    RenderContext,
    integer,
)
from circuitpress.render import svg
from circuitpress.requests import (
    ExamplesRequest,
    ModelInfoRequest,
    TopConnectionsRequest,
    UnitRef,
    WeightsRequest,
)

if TYPE_CHECKING:  # NumPy is imported where results are drawn
    import numpy as np

EXAMPLES_ON_HOVER = 4


def _channels(value: str) -> tuple[int, ...]:
    """`3, 7,12` -> (3, 7, 12)."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items or not all(v.isdigit() for v in items):
        raise ValueError(f"expected channel numbers separated by commas, got '{value}'")
    channels = tuple(int(v) for v in items)
    if len(set(channels)) != len(channels):
        raise ValueError("a channel is listed twice")
    return channels


def _figure_close(call: DirectiveCall, ctx: RenderContext) -> str:
    return ctx.caption(call) + "</figure>"


class WeightsDirective(Directive):
    name = "weights"
    argument = "required"
    argument_help = "SRC -> DST (e.g. shapes-a/conv1:3 -> shapes-a/conv2:7), or * -> DST"
    options = {
        "top": Option(integer(1, 64), 8, "with * -> DST: how many of the strongest inputs to show"),
    }

    def plan(self, call: DirectiveCall, ctx: PlanContext) -> None:
        left, right = split_pair(call.argument, call, call.line, "{weights}")
        dst = ctx.ref(right, call.line)
        call.data["dst"] = dst
        if left == "*":
            call.data["request"] = TopConnectionsRequest(dst, n=call.options["top"])
            ctx.request(call.data["request"])
            return
        if "top" in call.data.get("_option_lines", {}):
            raise call.error(
                "option ':top:' needs '* -> DST'",
                hint="write {weights} * -> DST to show the strongest inputs",
                line=call.option_line("top"),
            )
        src = ctx.ref(left, call.line)
        check_same_model(src, dst, call, call.line, "{weights}")
        call.data["src"] = src
        ctx.request(ModelInfoRequest(dst.model))

    def follow_up(self, call: DirectiveCall, ctx: FollowUpContext) -> None:
        dst: UnitRef = call.data["dst"]
        if "src" in call.data:
            src: UnitRef = call.data["src"]
            if layer_info(ctx, dst.model) is None:
                return
            check_order(ctx, src, dst, call, call.line, "{weights}")
            call.data["request"] = WeightsRequest(src, dst)
            ctx.request(call.data["request"])
            return
        result = result_or_none(ctx, call.data["request"])
        if result is None or not result.data["layer"]:
            return
        for unit in result.data["units"]:
            ctx.mention(channel_ref(dst.model, result.data["layer"], unit["channel"]), call.line)

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        if "src" in call.data:
            return self._render_pair(call, ctx)
        return self._render_top(call, ctx)

    def _render_pair(self, call: DirectiveCall, ctx: RenderContext) -> str:
        import numpy as np  # only where results are drawn: prose builds never import it

        src: UnitRef = call.data["src"]
        dst: UnitRef = call.data["dst"]
        # No request when the follow-up's check failed: `check` collects that error and still
        # renders the page, where the figure is a placeholder (PendingResult).
        result = ctx.result(call.data.get("request") or WeightsRequest(src, dst))
        kernel = np.asarray(result.arrays["kernel"])
        scale = symmetric_scale([kernel])
        expanded = bool(result.data["expanded"])
        kind = "expanded weights" if expanded else "weights"
        label = f"{kind} from {src} to {dst}"
        path = " → ".join(escape(p) for p in result.data.get("path", []))
        note = (
            f'<span class="cp-expanded" title="through {path}, '
            'with ReLU as identity and max-pool as average-pool">expanded</span> '
            if expanded
            else ""
        )
        return (
            f'<figure class="cp-weights" data-expanded="{str(expanded).lower()}">'
            '<div class="cp-weights-kernel">'
            f"{kernel_cell(kernel, scale, pixels=160, label=label)}</div>"
            '<div class="cp-weights-meta"><span class="cp-weights-pair">'
            f"{unit_link(src, ctx)} → {unit_link(dst, ctx)}</span> "
            f'{note}<span class="cp-weights-magnitude">norm {svg.num(result.data["norm"])}, '
            f"largest |w| {svg.num(result.data['max_abs'])}</span></div>"
            '<div class="cp-colorbar-wrap">'
            f"{svg.colorbar_svg(-scale, scale, diverge=True, label='weight')}</div>"
            + _figure_close(call, ctx)
        )

    def _render_top(self, call: DirectiveCall, ctx: RenderContext) -> str:
        import numpy as np  # only where results are drawn: prose builds never import it

        dst: UnitRef = call.data["dst"]
        result = ctx.result(call.data["request"])
        layer = result.data["layer"]
        if not layer:
            return (
                '<figure class="cp-weights cp-weights-top"><p class="cp-empty">'
                f"{escape(str(dst))} is in the first "
                "layer: its inputs are the image's colour channels.</p>" + _figure_close(call, ctx)
            )
        kernels = np.asarray(result.arrays["kernels"])
        scale = symmetric_scale(list(kernels))
        expanded = bool(result.data["expanded"])
        cells = []
        for unit, kernel in zip(result.data["units"], kernels, strict=True):
            ref = channel_ref(dst.model, layer, unit["channel"])
            short = f"{layer}:{unit['channel']}"
            norm = svg.num(unit["norm"])
            sign = "excitatory" if unit["sign"] > 0 else "inhibitory"
            cells.append(
                f'<li class="cp-weights-cell" data-unit="{escape(str(ref), quote=True)}" '
                f'data-norm="{norm}">'
                '<a class="cp-weights-thumb" '
                f'href="{escape(ctx.unit_url(ref) or "#", quote=True)}">'
                f"{thumb(ref, ctx, 64)}</a>"
                f"{kernel_cell(kernel, scale, pixels=64, label=f'kernel from {ref} to {dst}')}"
                f'<span class="cp-weights-label">{unit_link(ref, ctx, short)}'
                f' <span class="cp-sign cp-{sign}">{sign}</span>, norm {norm}</span></li>'
            )
        heading = f"The {len(cells)} strongest inputs of {unit_link(dst, ctx)} in {escape(layer)}"
        if expanded:
            heading += ' (<span class="cp-expanded">expanded</span> weights)'
        return (
            f'<figure class="cp-weights cp-weights-top" data-expanded="{str(expanded).lower()}">'
            f'<p class="cp-weights-heading">{heading}</p>'
            f'<ol class="cp-weights-grid">{"".join(cells)}</ol>'
            '<div class="cp-colorbar-wrap">'
            f"{svg.colorbar_svg(-scale, scale, diverge=True, label='weight')}</div>"
            + _figure_close(call, ctx)
        )


class CircuitDirective(Directive):
    name = "circuit"
    argument = "required"
    argument_help = "REF (e.g. shapes-a/conv2:7)"
    options = {
        "inputs": Option(integer(1, 16), 4, "strongest inputs shown per unit"),
        "depth": Option(integer(1, 3), 1, "how many layers back to follow the strongest inputs"),
        "units": Option(
            _channels, None, "channels of the previous layer to show instead of the strongest"
        ),
    }

    def plan(self, call: DirectiveCall, ctx: PlanContext) -> None:
        root = ctx.ref(call.argument, call.line)
        if root.head:  # a language model's head: composition with earlier heads
            lm.plan_head_circuit(call, ctx, root)
            return
        if root.is_direction:
            raise call.error(
                f"{{circuit}} needs a channel or a neuron, got the direction '{root}'",
                hint="e.g. conv2:7",
            )
        call.data["root"] = root
        ctx.request(ModelInfoRequest(root.model))
        ctx.request(self._connections(call, root))
        ctx.request(ExamplesRequest(root.channel_ref() or root))

    def _connections(self, call: DirectiveCall, ref: UnitRef) -> TopConnectionsRequest:
        return TopConnectionsRequest(ref.channel_ref() or ref, n=call.options["inputs"])

    def follow_up(self, call: DirectiveCall, ctx: FollowUpContext) -> None:
        """Walk back from the root as far as results allow; each round goes one layer further.

        The build calls this again every round and keeps only the last round's requests and
        mentions, so it re-requests the whole walk each time."""
        if call.data.get("lm"):
            lm.follow_up_head_circuit(call, ctx)
            return
        self._check_units(call, ctx)
        nodes, edges, missing = self._walk(call, ctx)
        for ref in nodes[1:]:
            ctx.mention(ref, call.line)
            ctx.request(ExamplesRequest(ref))
        for request in missing:
            ctx.request(request)

    def _walk(
        self, call: DirectiveCall, ctx: Any
    ) -> tuple[list[UnitRef], list[dict[str, Any]], list[Any]]:
        """Nodes (root first), edges and the requests still needed to go deeper."""
        root: UnitRef = call.data["root"]
        root = root.channel_ref() or root
        chosen: tuple[int, ...] | None = call.options.get("units")
        nodes: list[UnitRef] = [root]
        levels: dict[UnitRef, int] = {root: 0}
        edges: list[dict[str, Any]] = []
        missing: list[Any] = []
        frontier = [root]
        for depth in range(1, call.options["depth"] + 1):
            next_frontier: list[UnitRef] = []
            for ref in frontier:
                request = self._connections(call, ref)
                result = result_or_none(ctx, request)
                if result is None:
                    missing.append(request)
                    continue
                layer = result.data["layer"]
                if not layer:
                    continue
                inputs = [
                    (u["channel"], k, u["sign"] * u["norm"])
                    for u, k in zip(result.data["units"], result.arrays["kernels"], strict=True)
                ]
                if depth == 1 and chosen is not None:
                    inputs = self._chosen_inputs(call, ctx, ref, layer, chosen, missing)
                for channel, kernel, weight in inputs:
                    src = channel_ref(root.model, layer, channel)
                    if src not in levels:
                        levels[src] = depth
                        nodes.append(src)
                        next_frontier.append(src)
                    edges.append(
                        {
                            "src": src,
                            "dst": ref,
                            "weight": weight,
                            "kernel": kernel,
                            "expanded": result.data["expanded"],
                        }
                    )
            frontier = next_frontier
        return nodes, edges, missing

    def _check_units(self, call: DirectiveCall, ctx: Any) -> None:
        """`:units:` against the layer that feeds the root (the model facts' dataflow), from
        model facts alone: before any analysis runs."""
        chosen: tuple[int, ...] | None = call.options.get("units")
        root: UnitRef = call.data["root"]
        layers = layer_info(ctx, root.model)
        if chosen is None or layers is None or root.layer not in layers:
            return
        feeds = input_layer(layers, root.layer)
        if feeds is None:
            return
        check_units(
            call,
            chosen,
            layers,
            root.model,
            feeds,
            line=call.option_line("units"),
            what="{circuit} option ':units:'",
        )

    def _chosen_inputs(
        self,
        call: DirectiveCall,
        ctx: Any,
        ref: UnitRef,
        layer: str,
        chosen: tuple[int, ...],
        missing: list[Any],
    ) -> list[tuple[int, np.ndarray, float]]:
        import numpy as np  # only where results are drawn: prose builds never import it

        inputs = []
        for c in chosen:
            request = WeightsRequest(channel_ref(ref.model, layer, c), ref)
            result = result_or_none(ctx, request)
            if result is None:
                missing.append(request)
                continue
            kernel = np.asarray(result.arrays["kernel"])
            sign = float(result.data["sign"])  # the analysis says excitatory or inhibitory
            inputs.append((c, kernel, sign * float(result.data["norm"])))
        return inputs

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        if call.data.get("lm"):
            return lm.render_head_circuit(call, ctx)
        nodes, edges, _ = self._walk(call, ctx)
        root = nodes[0]
        scale = symmetric_scale([e["kernel"] for e in edges])
        depth_of = {root: 0}
        for e in edges:
            depth_of.setdefault(e["src"], depth_of[e["dst"]] + 1)
        svg_nodes = []
        for ref in nodes:
            examples = result_or_none(ctx, ExamplesRequest(ref))
            example_urls: list[str] = []
            if examples is not None:
                images = examples.arrays.get("images")
                if images is not None:
                    example_urls = [
                        ctx.image_url(img, name=f"ex-{ref.layer}-{ref.channel}-{i}")
                        for i, img in enumerate(images[:EXAMPLES_ON_HOVER])
                    ]
            svg_nodes.append(
                svg.Node(
                    id=str(ref),
                    label=f"{ref.layer}:{ref.unit_text}",
                    level=depth_of[ref],
                    href=ctx.unit_url(ref),
                    image=ctx.thumbnail_url(ref),
                    data={"name": str(ref), "examples": " ".join(example_urls)},
                )
            )
        svg_edges = []
        for e in edges:
            kind = "excitatory" if e["weight"] >= 0 else "inhibitory"
            expanded = " (expanded)" if e["expanded"] else ""
            svg_edges.append(
                svg.Edge(
                    src=str(e["src"]),
                    dst=str(e["dst"]),
                    weight=float(e["weight"]),
                    data={
                        "kernel": kernel_json(e["kernel"]),
                        "scale": svg.num(scale),
                        "norm": svg.num(abs(e["weight"])),
                    },
                    title=f"{e['src']} → {e['dst']}: {kind}{expanded}, "
                    f"strength {svg.num(abs(e['weight']))}",
                )
            )
        diagram = svg.circuit_diagram(svg_nodes, svg_edges, label=f"circuit of {root}")
        return (
            f'<figure class="cp-circuit" data-root="{escape(str(root), quote=True)}">'
            f'<div class="cp-circuit-diagram">{diagram}</div>'
            '<div class="cp-circuit-card" role="status" aria-live="polite" hidden></div>'
            '<p class="cp-circuit-legend"><span class="cp-excitatory">red: excitatory</span>, '
            '<span class="cp-inhibitory">blue: inhibitory</span>; line width: weight strength. '
            "Select a unit to open its page.</p>" + _figure_close(call, ctx)
        )


DIRECTIVES = [WeightsDirective, CircuitDirective]


def register(registry: Registry) -> None:
    """Entry point `circuits` of the group `circuitpress.directives` (pyproject.toml)."""
    for directive in DIRECTIVES:
        registry.add_directive(directive)
