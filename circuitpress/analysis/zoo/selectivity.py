"""Orientation selectivity of a model's first conv layer, measured with gratings.

Used by the training script (recorded in each model's JSON) and by the tests that check the zoo
learned interpretable early features.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from circuitpress.analysis.procedural import grating


@torch.no_grad()
def orientation_tuning(
    model: nn.Module,
    normalize: "callable",  # type: ignore[valid-type]
    layer: str = "conv1",
    size: int = 64,
    orientations: int = 16,
    phases: int = 4,
    frequencies: tuple[float, ...] = (4.0, 6.0, 8.0, 12.0, 16.0),
) -> np.ndarray:
    """Responses [units, frequencies, orientations]: for each black/white grating the maximum,
    over space (interior, away from padding) and phases, of the post-ReLU output of `layer`."""
    conv = dict(model.named_modules())[layer]
    angles = [math.pi * k / orientations for k in range(orientations)]
    stimuli = np.stack(
        [
            grating(size, f, a, phase=2 * math.pi * p / phases)
            for f in frequencies
            for a in angles
            for p in range(phases)
        ]
    )
    device = next(model.parameters()).device
    x = torch.from_numpy(stimuli).permute(0, 3, 1, 2).to(device)
    out: list[torch.Tensor] = []
    handle = conv.register_forward_hook(lambda _m, _i, o: out.append(o))
    try:
        model(normalize(x))
    finally:
        handle.remove()
    act = torch.relu(out[0])
    margin = max(1, act.shape[-1] // 16)
    act = act[..., margin:-margin, margin:-margin].amax(dim=(-1, -2))  # [stimuli, units]
    act = act.reshape(len(frequencies), orientations, phases, -1).amax(dim=2)
    return act.permute(2, 0, 1).cpu().numpy()


def selectivity_ratios(tuning: np.ndarray) -> np.ndarray:
    """Per unit: best orientation's response / mean over orientations, at the unit's preferred
    frequency (the one with the strongest response). A unit that never responds scores 0."""
    best_freq = tuning.max(axis=2).argmax(axis=1)
    curves = tuning[np.arange(tuning.shape[0]), best_freq]  # [units, orientations]
    mean = curves.mean(axis=1)
    return np.where(mean > 1e-6, curves.max(axis=1) / np.maximum(mean, 1e-12), 0.0)


def selective_fraction(model: nn.Module, normalize: "callable", threshold: float = 2.0) -> float:  # type: ignore[valid-type]
    """Fraction of conv1 units whose best orientation gives >= `threshold` x the mean response."""
    ratios = selectivity_ratios(orientation_tuning(model, normalize))
    return float((ratios >= threshold).mean())
