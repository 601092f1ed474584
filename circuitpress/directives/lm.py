"""Language-model directives: `{attention}`, `{heads}`, `{logits}`, and the language-model forms
of `{examples}` (token contexts), `{claim}` (head ablations, loss and head-score measures) and
`{circuit}` of a head (Q-, K- and V-composition with earlier heads).

    :::{attention} toy/blocks.1.attn:H3
    :prompt: the cat sat. the cat sat.
    :::

    :::{heads} toy
    :score: induction
    :::

Every number is in the HTML as text or a `data-*` attribute, shaded by inline colour, so the
figures read with JS off; `lm.js` only adds hover (where a token attends).
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from circuitpress.directives.circuitry import result_or_none, unit_link
from circuitpress.directives.figure_parts import caption_with_facts
from circuitpress.extensions import (
    Directive,
    DirectiveCall,
    FollowUpContext,
    Option,
    PlanContext,
    Registry,
    RenderContext,
    RenderServices,
    choice,
    integer,
    text,
)
from circuitpress.render import svg
from circuitpress.render.numbers import fmt, percent, shared
from circuitpress.requests import (
    HEAD_SCORES,
    AttentionRequest,
    CompositionRequest,
    ExamplesRequest,
    HeadScoresRequest,
    LMClaimRequest,
    LogitsRequest,
    ModelInfoRequest,
    Result,
    UnitRef,
)
from circuitpress.structure import lm_views

e = html.escape

POSITIVE = lm_views.POSITIVE
ATTENTION = "23, 69, 171"  # attention weights and scores: blue
NEGATIVE = "40, 110, 220"
_shade = lm_views.shade
_token_text = lm_views.token_text


def _head(call: DirectiveCall, ctx: PlanContext, text: str, line: int) -> UnitRef:
    ref = ctx.ref(text, line)
    if not ref.head:
        raise call.error(
            f"{{{call.name}}} needs an attention head, got '{ref}'",
            hint="write MODEL/blocks.L.attn:HN, e.g. toy/blocks.1.attn:H3",
            line=line,
        )
    return ref


# --- {examples} of a language model ------------------------------------------------------------


def render_examples(call: DirectiveCall, ctx: RenderContext, ref: UnitRef, result: Result) -> str:
    """`{examples}` of a text model (features.py hands over when the result carries tokens)."""
    context = int(call.options.get("context") or 8)
    k = int(call.options.get("k") or 8)
    body = lm_views.token_examples(result, context=context, limit=k)
    windows = int(result.data.get("windows", 0))
    facts = (
        f"{unit_link(ref, ctx)} · the top {min(k, len(result.data.get('contexts', [])))} of "
        f"{windows} token windows, {context} tokens each side of the strongest, shaded by "
        "activation (its value first)"
    )
    return (
        f'<figure class="cp-examples cp-lm-examples" data-unit="{e(str(ref))}">{body}'
        + caption_with_facts(call, ctx, facts)
        + "</figure>"
    )


# --- {attention} --------------------------------------------------------------------------------


class AttentionDirective(Directive):
    """A head's attention pattern on a prompt, query tokens down, key tokens across."""

    name = "attention"
    argument = "required"
    argument_help = "an attention head, e.g. toy/blocks.1.attn:H3"
    options = {"prompt": Option(text, None, "the text the head reads (required)")}

    def plan(self, call: DirectiveCall, ctx: PlanContext) -> None:
        ref = _head(call, ctx, call.argument, call.line)
        prompt = call.options.get("prompt")
        if not prompt or not str(prompt).strip():
            raise call.error("{attention} needs the option ':prompt:'", hint="e.g. :prompt: a b a")
        request = AttentionRequest(ref, str(prompt))
        call.data["request"] = request
        ctx.request(request)

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        request: AttentionRequest = call.data["request"]
        result = ctx.result(request)
        tokens = list(result.data["tokens"])
        pattern = result.data["pattern"]
        # The first token is the BOS the analysis put before the prompt: a short label.
        labels = ['<abbr title="beginning of sequence">BOS</abbr>'] + [
            _token_text(t) for t in tokens[1:]
        ]
        head = "".join(f'<th scope="col">{label}</th>' for label in labels)
        rows = []
        for q, label in enumerate(labels):
            cells = []
            for k in range(len(tokens)):
                w = float(pattern[q][k]) if k <= q else 0.0
                cells.append(
                    f'<td data-weight="{w:.3f}" data-key="{k}" style="{_shade(w, 1.0, ATTENTION)}"'
                    f' title="{e(fmt(w))}"></td>'
                    if k <= q
                    else "<td></td>"
                )
            best = max(range(q + 1), key=lambda k: float(pattern[q][k]))
            rows.append(
                f'<tr data-query="{q}" data-attends="{best}"><th scope="row">'
                f"{label}</th>{''.join(cells)}</tr>"
            )
        table = (
            '<div class="cp-attention-scroll"><table class="cp-attention">'
            f'<thead><tr><th scope="col"></th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )
        facts = (
            f"{unit_link(request.ref, ctx)} · attention pattern on a {len(tokens)}-token prompt "
            "(BOS first): each row is a query token, shaded by its attention to each key"
        )
        return (
            f'<figure class="cp-attention-figure" data-unit="{e(str(request.ref))}">{table}'
            + caption_with_facts(call, ctx, facts)
            + "</figure>"
        )


# --- {heads} ------------------------------------------------------------------------------------

_SCORE_TEXT = {
    "induction": "induction score: attention to the token after an earlier copy of the current one",
    "previous-token": "previous-token score: attention to the token just before",
    "duplicate-token": "duplicate-token score: attention to earlier copies of the current token",
}


class HeadsDirective(Directive):
    """A layers x heads grid of one head score, each cell linked to the head's unit page."""

    name = "heads"
    argument = "required"
    argument_help = "a language model, e.g. toy"
    options = {"score": Option(choice(*HEAD_SCORES), "induction", "which head score")}

    def plan(self, call: DirectiveCall, ctx: PlanContext) -> None:
        model = call.argument.strip()
        # Recorded as a layer, so an unknown model (or one without attention) is a located error.
        ctx.layer(f"{model}/blocks.0.attn", call.line)
        call.data["request"] = HeadScoresRequest(model)
        ctx.request(call.data["request"])

    def follow_up(self, call: DirectiveCall, ctx: FollowUpContext) -> None:
        # Every head of the grid gets a unit page, the figure links them all.
        info = result_or_none(ctx, ModelInfoRequest(call.data["request"].model))
        if info is None:
            ctx.request(ModelInfoRequest(call.data["request"].model))
            return
        model = call.data["request"].model
        for i in range(int(info.data.get("n_layers", 0))):
            for h in range(int(info.data.get("n_heads", 0))):
                ctx.mention(UnitRef(model, f"blocks.{i}.attn", ((h, 1.0),), head=True), call.line)

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        request: HeadScoresRequest = call.data["request"]
        result = ctx.result(request)
        score = str(call.options.get("score") or "induction")
        grid = result.data["scores"][score]
        heads = int(result.data["heads"])
        texts = shared([float(v) for row in grid for v in row])
        top = max([float(v) for row in grid for v in row] + [1e-9])
        head_row = "".join(f'<th scope="col">H{h}</th>' for h in range(heads))
        rows = []
        for i, layer in enumerate(result.data["layers"]):
            cells = []
            for h in range(heads):
                v = float(grid[i][h])
                ref = UnitRef(request.model, layer, ((h, 1.0),), head=True)
                url = ctx.unit_url(ref)
                text = e(texts[i * heads + h])
                inner = f'<a href="{e(url)}" title="{e(str(ref))}">{text}</a>' if url else text
                # A cell shaded past 60% is dark blue: its number is written in white.
                strong = ' class="cp-strong"' if v / top >= 0.6 else ""
                cells.append(
                    f'<td data-score="{v:.4f}" data-head="{e(str(ref))}"{strong} '
                    f'style="{_shade(v, top, ATTENTION)}">{inner}</td>'
                )
            rows.append(f'<tr><th scope="row">{e(layer)}</th>{"".join(cells)}</tr>')
        table = (
            f'<table class="cp-heads" data-score="{e(score)}">'
            f'<thead><tr><th scope="col">layer</th>{head_row}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
        facts = (
            f"{e(_SCORE_TEXT[score])}; TransformerLens head_detector's “mul” measure, the mean "
            f"over {int(result.data['sequences'])} sequences of {int(result.data['length'])} "
            "random tokens repeated twice"
        )
        return (
            f'<figure class="cp-heads-figure" data-model="{e(request.model)}">{table}'
            + caption_with_facts(call, ctx, facts)
            + "</figure>"
        )


# --- {logits} -----------------------------------------------------------------------------------


class LogitsDirective(Directive):
    """The tokens a unit, head or direction most promotes and suppresses (direct logit
    attribution through the unembedding)."""

    name = "logits"
    argument = "required"
    argument_help = "a unit, head or direction, e.g. toy/blocks.0.mlp.hook_post:17"
    options = {"k": Option(integer(1, 50), 10, "tokens shown on each side")}

    def plan(self, call: DirectiveCall, ctx: PlanContext) -> None:
        ref = ctx.ref(call.argument, call.line)
        call.data["request"] = LogitsRequest(ref, k=int(call.options.get("k") or 10))
        ctx.request(call.data["request"])

    def render(self, call: DirectiveCall, ctx: RenderContext) -> str:
        request: LogitsRequest = call.data["request"]
        result = ctx.result(request)
        top, bottom = list(result.data["top"]), list(result.data["bottom"])
        scale = max([abs(float(r["value"])) for r in top + bottom] + [1e-12])

        def column(rows: list[dict[str, Any]], title: str, rgb: str) -> str:
            texts = shared([float(r["value"]) for r in rows])
            items = "".join(
                f'<tr data-logit="{float(r["value"]):.4g}"><td class="cp-logit-token">'
                f"{_token_text(str(r['token']))}</td>"
                f'<td class="cp-logit-value" style="{_shade(abs(float(r["value"])), scale, rgb)}">'
                f"{e(t)}</td></tr>"
                for r, t in zip(rows, texts, strict=True)
            )
            return (
                f'<table class="cp-logits"><caption>{title}</caption><tbody>{items}</tbody></table>'
            )

        facts = (
            f"{unit_link(request.ref, ctx)} · direct logit attribution: its output direction "
            "through the unembedding W<sub>U</sub> (final LayerNorm scale left out)"
        )
        return (
            f'<figure class="cp-logits-figure" data-unit="{e(str(request.ref))}">'
            '<div class="cp-logits-columns">'
            + column(top, "promotes", POSITIVE)
            + column(bottom, "suppresses", NEGATIVE)
            + "</div>"
            + caption_with_facts(call, ctx, facts)
            + "</figure>"
        )


# --- {circuit} of a head ----------------------------------------------------------------------


def plan_head_circuit(call: DirectiveCall, ctx: PlanContext, root: UnitRef) -> None:
    call.data.update(lm=True, root=root, request=CompositionRequest(root))
    ctx.request(call.data["request"])
    ctx.request(ExamplesRequest(root))  # the root node's examples on hover


def follow_up_head_circuit(call: DirectiveCall, ctx: FollowUpContext) -> None:
    """The inputs shown get unit pages (and so thumbnails and hover examples), as the vision
    circuit's nodes do."""
    ctx.request(call.data["request"])
    result = result_or_none(ctx, call.data["request"])
    if result is None:
        return
    root: UnitRef = call.data["root"]
    for item in list(result.data["inputs"])[: int(call.options.get("inputs") or 4)]:
        ref = _head_ref(root.model, item)
        ctx.mention(ref, call.line)
        ctx.request(ExamplesRequest(ref))


def render_head_circuit(call: DirectiveCall, ctx: RenderContext) -> str:
    """The head and its strongest inputs among earlier heads by composition score, drawn by
    the vision circuits' diagram (nodes with their pictures, linked to their pages; hovering an
    edge shows its Q, K and V scores as a row of three cells), with a table of all three."""
    root: UnitRef = call.data["root"]
    result = ctx.result(call.data["request"])
    n = int(call.options.get("inputs") or 4)
    inputs = list(result.data["inputs"])[:n]
    baseline = float(result.data["baseline"])
    top = max([max(i["q"], i["k"], i["v"]) for i in inputs] + [1e-9])
    nodes = [_circuit_node(root, 0, ctx)]
    edges = []
    for item in inputs:
        src = _head_ref(root.model, item)
        nodes.append(_circuit_node(src, 1, ctx))
        kind = max("qkv", key=lambda m: item[m])
        edges.append(
            svg.Edge(
                src=str(src),
                dst=str(root),
                weight=float(item[kind]),
                data={
                    "kernel": json.dumps([[round(item[m], 4) for m in "qkv"]]),
                    "scale": svg.num(top),
                    "norm": svg.num(item[kind]),
                    "q": f"{item['q']:.4f}",
                    "k": f"{item['k']:.4f}",
                    "v": f"{item['v']:.4f}",
                    # The card's words (circuit.js): composition scores, not excitation.
                    "note": f"strongest: {kind.upper()}-composition {fmt(item[kind])} "
                    f"(Q {fmt(item['q'])}, K {fmt(item['k'])}, V {fmt(item['v'])})",
                },
                title=f"{src} → {root}: {kind.upper()}-composition {fmt(item[kind])} "
                f"(Q {fmt(item['q'])}, K {fmt(item['k'])}, V {fmt(item['v'])})",
            )
        )
    diagram = svg.circuit_diagram(nodes, edges, label=f"composition of {root}")
    rows = "".join(
        f'<tr class="cp-comp-edge" data-src="{e(str(_head_ref(root.model, i)))}">'
        f"<td>{unit_link(_head_ref(root.model, i), ctx)}</td>"
        f'<td data-q="{i["q"]:.4f}">{e(fmt(i["q"]))}</td>'
        f'<td data-k="{i["k"]:.4f}">{e(fmt(i["k"]))}</td>'
        f'<td data-v="{i["v"]:.4f}">{e(fmt(i["v"]))}</td></tr>'
        for i in inputs
    )
    table = (
        '<table class="cp-composition"><thead><tr><th scope="col">earlier head</th>'
        '<th scope="col">Q</th><th scope="col">K</th><th scope="col">V</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )
    facts = (
        f"{unit_link(root, ctx)} · its strongest inputs among earlier heads by Q-, K- and "
        "V-composition score (Elhage et al. 2021; TransformerLens all_composition_scores), "
        "line width the strongest of the three; hovering an edge shows Q, K and V as three "
        f"cells; random weights of the same shapes score {e(fmt(baseline))} on average"
    )
    return (
        f'<figure class="cp-circuit cp-head-circuit-figure" data-root="{e(str(root))}">'
        f'<div class="cp-circuit-diagram">{diagram}</div>'
        '<div class="cp-circuit-card" role="status" aria-live="polite" hidden></div>'
        + table
        + caption_with_facts(call, ctx, facts)
        + "</figure>"
    )


def _circuit_node(ref: UnitRef, level: int, ctx: RenderServices) -> svg.Node:
    examples: list[str] = []
    result = result_or_none(ctx, ExamplesRequest(ref))
    if result is not None and "images" in result.arrays:
        examples = [
            ctx.image_url(img, name=f"ex-{ref.layer}-{ref.unit_text}-{i}")
            for i, img in enumerate(result.arrays["images"][:3])
        ]
    layer = ref.layer.split(".")
    return svg.Node(
        id=str(ref),
        # TransformerLens' short head label (L1H3): the diagram's nodes are narrow.
        label=f"L{layer[1]}H{ref.terms[0][0]}" if len(layer) == 3 else ref.unit_text,
        level=level,
        href=ctx.unit_url(ref),
        image=ctx.thumbnail_url(ref),
        data={"name": str(ref), "examples": " ".join(examples)},
    )


def _head_ref(model: str, item: dict[str, Any]) -> UnitRef:
    return UnitRef(model, str(item["layer"]), ((int(item["head"]), 1.0),), head=True)


# --- {claim} on a language model ---------------------------------------------------------------

_SCORE_MEASURE = re.compile(r"^(induction-score|previous-token-score)(?:\s+(\S+))?$")


def is_lm_claim(options: dict[str, Any]) -> bool:
    """A claim about a language model: an LM measure, a comparison, or heads to ablate."""
    measure = str(options.get("measure") or "").strip()
    ablate = str(options.get("ablate") or "")
    return (
        measure in ("loss", "loss:repeated")
        or bool(_SCORE_MEASURE.match(measure))
        or bool(options.get("compare"))
        or bool(re.search(r":\s*H\d", ablate))
    )


def plan_claim(call: DirectiveCall, ctx: PlanContext) -> None:
    """`:ablate: toy/blocks.0.attn:H0,H1; toy/blocks.0.mlp.hook_post:3` (heads and neurons),
    `:measure: loss | loss:repeated | induction-score [HEAD]`, `:compare: MODEL`,
    `:ablation: zero | mean`."""
    measure = str(call.options["measure"]).strip()
    mline = call.option_line("measure")
    head: UnitRef | None = None
    model: str | None = None
    match = _SCORE_MEASURE.match(measure)
    if match:
        name = match.group(1)
        if match.group(2):
            target = match.group(2)
            if ":" in target:
                head = _head(call, ctx, target, mline)
                model = head.model
            else:  # the model's best head
                model = target
                ctx.layer(f"{target}/blocks.0.attn", mline)
    elif measure in ("loss", "loss:repeated"):
        name = measure
    else:
        raise call.error(
            f"option ':measure:' of {{claim}}: unknown language-model measure '{measure}'",
            hint="use loss, loss:repeated, induction-score HEAD or induction-score MODEL",
            line=mline,
        )
    ablate: list[UnitRef] = []
    if call.options.get("ablate"):
        aline = call.option_line("ablate")
        for part in [p.strip() for p in str(call.options["ablate"]).split(";") if p.strip()]:
            layer_text, sep, units = part.rpartition(":")
            items = [u.strip() for u in units.split(",") if u.strip()]
            heads = all(re.fullmatch(r"H\d+", u) for u in items)
            if not sep or not items or not (heads or all(u.isdigit() for u in items)):
                raise call.error(
                    f"option ':ablate:' of {{claim}}: bad units '{part}'",
                    hint="write MODEL/LAYER:H0,H1 (heads) or MODEL/LAYER:3,7 (neurons)",
                    line=aline,
                )
            for u in items:
                ablate.append(ctx.ref(f"{layer_text}:{u}", aline))
    models = {r.model for r in ablate} | ({model} if model else set())
    compare = str(call.options.get("compare") or "").strip() or None
    if compare:
        ctx.layer(f"{compare}/blocks.0.attn", call.option_line("compare"))
    if not models:
        raise call.error(
            "{claim} on a language model needs a model: ablate its units or name it in the measure",
            hint="e.g. ':measure: induction-score toy' or ':ablate: toy/blocks.0.attn:H1'",
            line=mline,
        )
    if len(models) > 1:
        raise call.error(
            f"{{claim}} edits and measures different models ({', '.join(sorted(models))})",
            hint="compare models with ':compare: MODEL'",
            line=mline,
        )
    if not ablate and not compare:
        raise call.error(
            "{claim} needs an edit or a comparison",
            hint="add ':ablate: MODEL/blocks.L.attn:H0' or ':compare: OTHER_MODEL'",
        )
    request = LMClaimRequest(
        model=models.pop(),
        measure=name,
        head=head,
        ablate=tuple(ablate),
        mode=str(call.options.get("ablation") or "zero"),
        compare=compare,
    )
    call.data.update(lm=True, request=request)
    ctx.request(request)


_MEASURE_TEXT = {
    "loss": "the mean next-token loss on the dataset sample",
    "loss:repeated": "the loss on the second half of repeated random token sequences",
}


def render_claim(call: DirectiveCall, ctx: RenderContext, expect: Any) -> str:
    request: LMClaimRequest = call.data["request"]
    result = ctx.result(request)
    before, after, change = (float(result.data[k]) for k in ("before", "after", "change"))
    held = bool(expect.holds(before, after, change))
    status = "held" if held else "failed"
    if request.measure in _MEASURE_TEXT:
        measured = e(_MEASURE_TEXT[request.measure])
    else:
        score = request.measure.replace("-score", "")
        measured = (
            f"the {e(score)} score of {unit_link(request.head, ctx)}"
            if request.head is not None
            else f"the best {e(score)} score among the heads of {e(request.model)}"
        )
    edits = [f"{request.mode}-ablate {unit_link(r, ctx)}" for r in request.ablate]
    if request.compare:
        named = request.head is None and request.measure not in _MEASURE_TEXT
        where = (
            measured
            + ("" if named else f" in {e(request.model)}")
            + (f" (with {', '.join(edits)})" if edits else "")
            + f", compared with {e(request.compare)}’s,"
        )
        prediction = f"Prediction: {where} {e(expect.describe())}."
    else:
        prediction = f"Prediction: when we {'; '.join(edits)}, {measured} {e(expect.describe())}."
    if not held:
        ctx.warn(
            f"claim '{call.argument}' failed: predicted that the measure {expect.describe()}, "
            f"measured {fmt(before)} -> {fmt(after)} ({fmt(change * 100)}%)",
            call.line,
            hint="fix the claim or the circuit it describes",
        )
    before_text, after_text = (e(t) for t in shared([before, after]))
    pct = e(percent(change * 100, signed=True))
    first = e(request.compare) if request.compare else "before"
    second = e(request.model) if request.compare else "after"
    return (
        f'<figure class="cp-claim cp-claim-{status}" data-claim="{status}">'
        '<p class="cp-claim-title"><span class="cp-claim-badge">'
        f"{'✓ held' if held else '✗ failed'}</span> {e(call.argument)}</p>"
        f'<p class="cp-claim-prediction">{prediction}</p>'
        f'<dl class="cp-claim-numbers"><dt>{first}</dt>'
        f'<dd data-value="{before:.6g}">{before_text}</dd>'
        f'<dt>{second}</dt><dd data-value="{after:.6g}">{after_text}</dd>'
        f'<dt>change</dt><dd data-value="{change * 100:.6g}">{pct}</dd></dl>'
        + ctx.caption(call)
        + "</figure>"
    )


DIRECTIVES = [AttentionDirective, HeadsDirective, LogitsDirective]


def register(registry: Registry) -> None:
    """Entry point `lm` of the group `circuitpress.directives` (pyproject.toml)."""
    for directive in DIRECTIVES:
        registry.add_directive(directive)
