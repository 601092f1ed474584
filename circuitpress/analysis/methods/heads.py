"""Attention heads: scores as TransformerLens' `head_detector` computes them, and patterns.

`detect_head(model, seq, "induction_head")` scores a head by the share of its attention that
falls on the detection pattern ("mul": sum(pattern * detection) / sum(pattern)), per sequence,
averaged over a list of sequences; the patterns are built from token equality (a duplicate
token head attends to earlier copies of the current token, an induction head to the token after
them, a previous-token head to the token before). Here the same functions run on every head
from ONE pass over the seeded probe sequences (`LMModel.probes`), and any edit (an ablation)
can be applied to that pass.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from circuitpress.analysis.lm import activations
from circuitpress.analysis.lm.loader import LMModel, lm_models
from circuitpress.errors import UserError
from circuitpress.requests import (
    HEAD_SCORES,
    AttentionRequest,
    HeadScoresRequest,
    Request,
    Result,
)


def previous_token_pattern(tokens: np.ndarray) -> np.ndarray:
    """head_detector's `get_previous_token_head_detection_pattern`: ones below the diagonal."""
    n = len(tokens)
    pattern = np.zeros((n, n), dtype=np.float32)
    pattern[1:, :-1] = np.eye(n - 1, dtype=np.float32)
    return np.tril(pattern)


def duplicate_token_pattern(tokens: np.ndarray) -> np.ndarray:
    """`get_duplicate_token_head_detection_pattern`: earlier (and later) copies, no diagonal,
    lower triangle."""
    eq = (tokens[None, :] == tokens[:, None]).astype(np.float32)
    np.fill_diagonal(eq, 0.0)
    return np.tril(eq)


def induction_pattern(tokens: np.ndarray) -> np.ndarray:
    """`get_induction_head_detection_pattern`: the duplicate pattern shifted one key right,
    first column zero."""
    dup = duplicate_token_pattern(tokens)
    shifted = np.roll(dup, 1, axis=1)
    shifted[:, 0] = 0.0
    return np.tril(shifted)


PATTERNS = {
    "induction": induction_pattern,
    "previous-token": previous_token_pattern,
    "duplicate-token": duplicate_token_pattern,
}


def mul_score(pattern: torch.Tensor, detection: torch.Tensor) -> torch.Tensor:
    """`compute_head_attention_similarity_score(error_measure="mul")` for every head at once:
    pattern [..., q, k], detection [q, k] -> [...]."""
    return (pattern * detection).sum(dim=(-1, -2)) / pattern.sum(dim=(-1, -2))


def head_scores(
    model: LMModel, edits: Sequence[activations.Hook] = (), names: Sequence[str] = HEAD_SCORES
) -> dict[str, np.ndarray]:
    """Every head's scores [layers, heads], averaged over the probe sequences (one pass)."""
    probes = model.probes()
    patterns = (
        activations.attention_patterns(model, torch.from_numpy(probes).to(model.device), edits)
        .float()
        .cpu()
    )  # [N, L, H, q, k]
    scores: dict[str, np.ndarray] = {}
    for name in names:
        per_seq = []
        for i, seq in enumerate(probes):
            detection = torch.from_numpy(PATTERNS[name](seq))
            per_seq.append(mul_score(patterns[i], detection))
        scores[name] = torch.stack(per_seq).mean(0).numpy()
    return scores


def compute_group(requests: Sequence[HeadScoresRequest], env: Any) -> dict[Request, Result]:
    out: dict[Request, Result] = {}
    for req in requests:
        model = lm_models(env).get(req.model)
        scores = head_scores(model)
        out[req] = Result(
            data={
                "layers": [f"blocks.{i}.attn" for i in range(model.n_layers)],
                "heads": model.n_heads,
                "sequences": int(len(model.probes())),
                "length": model.probe_length(),
                "scores": {k: v.round(6).tolist() for k, v in scores.items()},
            }
        )
    return out


def compute_attention(requests: Sequence[AttentionRequest], env: Any) -> dict[Request, Result]:
    """Each request's head pattern on its prompt; one pass per distinct prompt."""
    model = lm_models(env).get(requests[0].ref.model)
    out: dict[Request, Result] = {}
    by_prompt: dict[str, tuple[list[int], torch.Tensor]] = {}
    for req in requests:
        if req.prompt not in by_prompt:
            ids = model.encode(req.prompt)
            if len(ids) > model.n_ctx:
                raise UserError(
                    f"the prompt is {len(ids)} tokens long; model '{model.name}' reads at most "
                    f"{model.n_ctx}",
                    hint="shorten ':prompt:'",
                )
            x = torch.tensor([ids], device=model.device)
            by_prompt[req.prompt] = (ids, activations.attention_patterns(model, x)[0].cpu())
        ids, patterns = by_prompt[req.prompt]
        layer = int(req.ref.layer.split(".")[1])
        pattern = patterns[layer, req.ref.terms[0][0]].float().numpy()
        out[req] = Result(
            data={
                "tokens": model.token_texts(ids),
                "pattern": pattern.round(5).tolist(),
            }
        )
    return out
