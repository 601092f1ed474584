"""Frozen request and result types: the only module markup, analysis and render all share.

Markup turns directives into `Request`s (plain, hashable, no torch); the analysis engine turns
each into a `Result` (JSON-able `data` plus named NumPy `arrays`); render draws results as
images, SVG and HTML. A request's `key()` is a stable text that, with the model's and
dataset's fingerprints and the code version, forms its cache key.

Requests of one `group_key()` are computed together in one go (one batched optimisation, one
pass over a dataset).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

if TYPE_CHECKING:  # NumPy is imported where arrays are made: a prose build never needs it
    import numpy as np


def _fmt_coef(c: float) -> str:
    text = f"{c:.6g}"
    return text


@dataclass(frozen=True, slots=True)
class UnitRef:
    """A feature of a model: a channel, one neuron (`@Y,X`), or a direction of channels.

    `terms` are (channel, coefficient) pairs; a plain channel is `((7, 1.0),)`. `head` marks
    an attention head of a language model (`blocks.1.attn:H3`): its one term is the head's index.
    """

    model: str
    layer: str
    terms: tuple[tuple[int, float], ...]
    position: tuple[int, int] | None = None
    head: bool = False

    @property
    def channel(self) -> int | None:
        """The channel for a plain channel or neuron reference; None for a direction."""
        if len(self.terms) == 1 and self.terms[0][1] == 1.0:
            return self.terms[0][0]
        return None

    @property
    def is_direction(self) -> bool:
        return self.channel is None

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(c for c, _ in self.terms)

    @property
    def unit_text(self) -> str:
        """The part after the colon: '7', '7@3,4', '0.7*3-0.2*7', 'H3' (a head)."""
        if self.head:
            return f"H{self.terms[0][0]}"
        if self.channel is not None:
            text = str(self.channel)
        else:
            parts = []
            for i, (ch, coef) in enumerate(self.terms):
                sign = "-" if coef < 0 else ("+" if i else "")
                parts.append(f"{sign}{_fmt_coef(abs(coef))}*{ch}")
            text = "".join(parts)
        if self.position is not None:
            text += f"@{self.position[0]},{self.position[1]}"
        return text

    @property
    def layer_ref(self) -> str:
        return f"{self.model}/{self.layer}"

    def channel_ref(self) -> "UnitRef | None":
        """The plain channel this reference lives in (neurons map to their channel)."""
        if self.channel is None:
            return None
        return UnitRef(self.model, self.layer, ((self.channel, 1.0),), head=self.head)

    def __str__(self) -> str:
        return f"{self.model}/{self.layer}:{self.unit_text}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model,
            "layer": self.layer,
            "terms": [[c, w] for c, w in self.terms],
            "position": list(self.position) if self.position else None,
        }
        if self.head:  # only heads carry it: every other request keeps its cache key
            data["head"] = True
        return data


def unit_page_path(ref: UnitRef) -> str | None:
    """Site-relative path of the unit page ('units/MODEL/LAYER/UNIT/'), channels and heads
    ('units/toy/blocks.1.attn/H3/').

    Neurons link to their channel's page; directions have no page.
    """
    ch = ref.channel_ref()
    if ch is None:
        return None
    return f"units/{ch.model}/{ch.layer}/{ch.unit_text}/"


def _canon(value: Any) -> Any:
    if isinstance(value, UnitRef):
        return value.to_json()
    if isinstance(value, tuple):
        return [_canon(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.9g}")
    return value


@dataclass(frozen=True)
class Request:
    """Base of all analysis requests. Subclasses are frozen dataclasses with a `kind`."""

    kind: ClassVar[str] = "request"

    def key(self) -> str:
        """Stable canonical text of the request: kind and every field, sorted."""
        body = {f.name: _canon(getattr(self, f.name)) for f in fields(self)}
        return json.dumps({"kind": self.kind, **body}, sort_keys=True, separators=(",", ":"))

    @property
    def models(self) -> tuple[str, ...]:
        """The models whose fingerprints (and datasets) enter the cache key: by default the
        request's `model` field (requests without one override this)."""
        model = getattr(self, "model", None)
        if not isinstance(model, str):
            raise TypeError(f"{type(self).__name__} has no 'model': it must define `models`")
        return (model,)

    def group_key(self) -> tuple[Any, ...]:
        """Requests with equal group keys are computed together."""
        return (self.kind, self.models)


def group_models(requests: Sequence[Request]) -> tuple[str, ...]:
    """Every model the requests of a group name, in order, each once (a group's requests may
    name different models: universality groups by the first model only)."""
    return tuple(dict.fromkeys(m for r in requests for m in r.models))


# --- model facts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfoRequest(Request):
    """Layers of a model. Result data: {"layers": [{"name", "type", "shape": [C,H,W] or [C],
    "units": C, "kernel_layer": bool}], "input_shape": [3,H,W], "classes": [...], "params": N,
    "dataset": str}. A kernel layer (conv or linear) is one whose weights the weights analysis
    reads as kernels between the features of the layer before and its own."""

    kind: ClassVar[str] = "model-info"
    model: str


# --- features ---------------------------------------------------------------------------------


MODEL_SIZE = 0  # a feature visualization at the model's own size (`FeatureVisRequest.size`)

# What a feature visualization of a channel or direction maximises over the unit's map
# (`FeatureVisRequest.objective`): "positive", the mean of its positive part (plus a little of
# the plain mean, `featurevis.LEAK`), what a ReLU after the layer passes on; or "mean", the
# plain mean, lucent's `objectives.channel` (for a direction, the plain mean of its weighted
# sum of channels: lucent's `channel_weight` times the layer's channel count, not lucent's
# cosine `direction`). A neuron `@Y,X` maximises its value either way.
OBJECTIVES = ("positive", "mean")


@dataclass(frozen=True)
class FeatureVisRequest(Request):
    """Feature visualization. Result arrays: {"images": float32 [N, S, S, 3] in 0..1}
    (N = diversity, 1 by default); data: {"activation": [N floats], "loss_start", "loss_end",
    "size": S}. `size` 0 (`MODEL_SIZE`, the default) is the model's own size, which the engine
    decides from the model (its input size): the model's fingerprint, part of the cache key,
    covers everything that decides it. Another size is the author's, in pixels. `objective`
    is one of OBJECTIVES."""

    kind: ClassVar[str] = "featurevis"
    ref: UnitRef
    size: int = 0
    steps: int = 256
    seed: int = 0
    negative: bool = False
    diversity: int = 1
    lr: float = 0.05
    objective: str = "positive"  # one of OBJECTIVES

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"unknown feature-vis objective '{self.objective}' "
                f"(expected one of: {', '.join(OBJECTIVES)})"
            )

    @property
    def models(self) -> tuple[str, ...]:
        return (self.ref.model,)

    def group_key(self) -> tuple[Any, ...]:
        # One batched optimisation per layer and image size: steps, seeds, signs, diversity and
        # objectives may differ within a batch (featurevis.visualize); Adam's learning rate may
        # not.
        return (self.kind, self.ref.model, self.ref.layer, self.size, self.lr)


@dataclass(frozen=True)
class ExamplesRequest(Request):
    """Top-k dataset examples. Result arrays: {"images": float32 [k, h, w, 3] in 0..1 (cropped
    around the receptive field of the max when crop), "heatmaps": float32 [k, h, w] in 0..1};
    data: {"values": [k floats], "indices": [k ints], "boxes": [[y0, x0, y1, x1], …]}."""

    kind: ClassVar[str] = "examples"
    ref: UnitRef
    k: int = 8
    crop: bool = True

    @property
    def models(self) -> tuple[str, ...]:
        return (self.ref.model,)

    def group_key(self) -> tuple[Any, ...]:
        return (self.kind, self.ref.model)  # one pass over the model's dataset serves all


# --- circuits ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightsRequest(Request):
    """The kernel from `src` to `dst` (plain or expanded). Result arrays: {"kernel": float32
    [kh, kw]}; data: {"expanded": bool, "norm": float, "sign": 1 or -1 (of the kernel's sum:
    excitatory or inhibitory), "max_abs": float, "path": [layers]}."""

    kind: ClassVar[str] = "weights"
    src: UnitRef
    dst: UnitRef

    @property
    def models(self) -> tuple[str, ...]:
        return (self.dst.model,)


@dataclass(frozen=True)
class TopConnectionsRequest(Request):
    """Strongest inputs (or outputs) of a unit by (expanded) kernel norm, from/to `other_layer`
    (default: the adjacent conv layer). Result data: {"layer": str, "expanded": bool,
    "units": [{"channel", "norm", "sign"}]}; arrays: {"kernels": float32 [n, kh, kw]}."""

    kind: ClassVar[str] = "connections"
    ref: UnitRef
    n: int = 8
    direction: str = "inputs"  # or "outputs"
    other_layer: str | None = None

    @property
    def models(self) -> tuple[str, ...]:
        return (self.ref.model,)


# --- stimuli of tuning curves and claims --------------------------------------------------------

STIMULI = ("orientation", "curvature", "frequency", "colour")
STIMULUS_ALIASES = {
    "color": "colour",
    "hue": "colour",
    "angle": "orientation",
    "spatial-frequency": "frequency",
}
STIMULUS_PAIRS = {  # the 2-D sweeps
    ("orientation", "curvature"),
    ("orientation", "frequency"),
    ("curvature", "orientation"),
    ("frequency", "orientation"),
}


def parse_stimulus(text: str) -> tuple[str, ...]:
    """`orientation`, `colour`, `orientation x curvature` (also `×`) -> axis names.

    Raises ValueError with the valid choices."""
    parts = [p.strip().lower() for p in text.replace("×", " x ").split(" x ")]
    axes = tuple(STIMULUS_ALIASES.get(p, p) for p in parts if p)
    for a in axes:
        if a not in STIMULI:
            raise ValueError(
                f"unknown stimulus '{a}' (expected one of: {', '.join(STIMULI)}, "
                "or a pair such as 'orientation x curvature')"
            )
    if len(axes) == 2 and axes not in STIMULUS_PAIRS:
        raise ValueError(
            f"no 2-D sweep '{axes[0]} x {axes[1]}' "
            "(available: orientation x curvature, orientation x frequency)"
        )
    if not 1 <= len(axes) <= 2:
        raise ValueError(f"expected one stimulus or a pair 'A x B', got '{text}'")
    return axes


def canonical_stimulus(text: str) -> str:
    """The stimulus text requests carry: `Color` -> `colour`, `angle × curvature` ->
    `orientation x curvature`. Raises ValueError like `parse_stimulus`."""
    return " x ".join(parse_stimulus(text))


@dataclass(frozen=True)
class TuningRequest(Request):
    """Response of a unit to swept synthetic stimuli. Result data: {"axes": [{"name", "values"}]
    (1 or 2 axes), "response": list (1-D) or list of lists (2-D), "peak": [i] or [i, j] (the
    strongest response's index on each axis, the first on ties), "position": [y, x]};
    arrays: {"stimuli": float32 [n, h, w, 3] thumbnails along the first axis}."""

    kind: ClassVar[str] = "tuning"
    ref: UnitRef
    stimulus: str  # canonical_stimulus(): "orientation", …, "colour", or "A x B"
    steps: int = 24

    @property
    def models(self) -> tuple[str, ...]:
        return (self.ref.model,)


@dataclass(frozen=True)
class ClaimRequest(Request):
    """Before/after measurement around an edit. `ablate` zeroes units; `ablate_weights` zeroes
    the kernel src -> dst. `measure` is a unit (parsed by markup), or the text "accuracy" /
    "accuracy:CLASS". Result data: {"before": float, "after": float, "change": float,
    "measure": str (the unit as text, or the accuracy text), "samples": int, "measured": int}."""

    kind: ClassVar[str] = "claim"
    model: str
    measure: UnitRef | str
    ablate: tuple[UnitRef, ...] = ()
    ablate_weights: tuple[tuple[UnitRef, UnitRef], ...] = ()
    stimulus: str | None = None


# A unit's response to an image in a universality comparison: its "max" or "mean" over
# positions, or "positions": every position of every image is a sample (the grids must match).
POOLS = ("max", "mean", "positions")


@dataclass(frozen=True)
class UniversalityRequest(Request):
    """Match units of two layers by activation correlation on the same images. Result data:
    {"pairs": [{"a", "b", "r"}] (Hungarian matching, strongest first), "best_a": [{"b", "r"}],
    "mean_matched": float, "samples": int}; arrays: {"correlation": float32 [Ca, Cb]}."""

    kind: ClassVar[str] = "universality"
    model_a: str
    layer_a: str
    model_b: str
    layer_b: str
    pool: str = "max"  # one of POOLS

    @property
    def models(self) -> tuple[str, ...]:
        return (self.model_a, self.model_b)

    def group_key(self) -> tuple[Any, ...]:
        # One group per image sample (the first model's): each model then runs one pass over
        # it for all the layers the site compares, whichever model it is compared with.
        return (self.kind, self.model_a)


# --- language models (analysis/lm, analysis/methods/lm_*) ----------------------------------------

HEAD_SCORES = ("induction", "previous-token", "duplicate-token")
LM_MEASURES = ("loss", "loss:repeated", "induction-score", "previous-token-score")


@dataclass(frozen=True)
class HeadScoresRequest(Request):
    """Every head's scores as TransformerLens' `head_detector` computes them ("mul": the share of
    attention on the detection pattern), averaged over seeded repeated random token sequences.
    Result data: {"layers": [names], "heads": H, "sequences": N, "length": L, "scores":
    {score: [[float] * H] * layers}}: one cached pass serves every score."""

    kind: ClassVar[str] = "lm-heads"
    model: str


@dataclass(frozen=True)
class AttentionRequest(Request):
    """A head's attention pattern on a prompt. Result data: {"tokens": [str], "pattern":
    [[float]] (query x key, lower triangular)}."""

    kind: ClassVar[str] = "lm-attention"
    ref: UnitRef
    prompt: str

    @property
    def models(self) -> tuple[str, ...]:
        return (self.ref.model,)


@dataclass(frozen=True)
class LogitsRequest(Request):
    """Direct logit attribution of a unit, head or direction: its output direction through the
    unembedding. Result data: {"top": [{"token", "value"}], "bottom": [...]}."""

    kind: ClassVar[str] = "lm-logits"
    ref: UnitRef
    k: int = 10

    @property
    def models(self) -> tuple[str, ...]:
        return (self.ref.model,)


@dataclass(frozen=True)
class CompositionRequest(Request):
    """Q-, K- and V-composition scores (Elhage et al. 2021) of a head with every earlier head.
    Result data: {"inputs": [{"layer", "head", "q", "k", "v"}] (strongest first by max),
    "baseline": float (the score of random matrices of the same shapes)}."""

    kind: ClassVar[str] = "lm-composition"
    ref: UnitRef

    @property
    def models(self) -> tuple[str, ...]:
        return (self.ref.model,)


@dataclass(frozen=True)
class LMClaimRequest(Request):
    """A language model's measure before and after ablating heads or neurons (`mode` "zero" or
    "mean"). `measure` is one of LM_MEASURES; `head` names the head of a head score (None: the
    model's best head). With `compare`, "before" is the other model's unablated measure.
    Result data: {"before", "after", "change", "measure", "samples"}."""

    kind: ClassVar[str] = "lm-claim"
    model: str
    measure: str
    head: UnitRef | None = None
    ablate: tuple[UnitRef, ...] = ()
    mode: str = "zero"
    compare: str | None = None

    @property
    def models(self) -> tuple[str, ...]:
        return (self.model,) if self.compare is None else (self.model, self.compare)


@dataclass(frozen=True)
class Result:
    """What analysis returns: JSON-able `data` and named NumPy `arrays` (no objects, no torch)."""

    data: Mapping[str, Any] = field(default_factory=dict)
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)


REQUEST_KINDS: dict[str, type[Request]] = {
    cls.kind: cls
    for cls in (
        ModelInfoRequest,
        FeatureVisRequest,
        ExamplesRequest,
        WeightsRequest,
        TopConnectionsRequest,
        TuningRequest,
        ClaimRequest,
        UniversalityRequest,
        HeadScoresRequest,
        AttentionRequest,
        LogitsRequest,
        CompositionRequest,
        LMClaimRequest,
    )
}
