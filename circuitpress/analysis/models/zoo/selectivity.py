"""Orientation selectivity of a model's first conv layer, measured with gratings.

Used by the training script (recorded in each model's JSON) and by the tests that check the zoo
learned interpretable early features. The criterion is the classic one: black/white sinusoidal
gratings, and a unit is orientation-selective when its response to the best orientation is at
least twice its mean response over orientations (at its preferred frequency). The zoo's images
pair random colours, so the module can also test along all four diagonals of the RGB cube
(black/white, red/cyan, green/magenta, blue/yellow) and judge each unit at the colour pair it
responds to most (`colors=CUBE_DIAGONALS`), which the training record reports alongside.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from circuitpress.analysis.models.capture import capture
from circuitpress.analysis.models.procedural import grating

ColorPair = tuple[tuple[float, float, float], tuple[float, float, float]]
BLACK_WHITE: tuple[ColorPair, ...] = (((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),)
CUBE_DIAGONALS: tuple[ColorPair, ...] = BLACK_WHITE + (
    ((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)),
    ((0.0, 1.0, 0.0), (1.0, 0.0, 1.0)),
    ((0.0, 0.0, 1.0), (1.0, 1.0, 0.0)),
)
FREQUENCIES = (4.0, 6.0, 8.0, 12.0, 16.0)  # cycles per 64-pixel image


@torch.no_grad()
def orientation_tuning(
    model: nn.Module,
    normalize: Callable[[torch.Tensor], torch.Tensor],
    layer: str = "conv1",
    size: int = 64,
    orientations: int = 16,
    phases: int = 4,
    frequencies: tuple[float, ...] = FREQUENCIES,
    colors: tuple[ColorPair, ...] = BLACK_WHITE,
) -> np.ndarray:
    """Responses [units, colours, frequencies, orientations]: for each grating the maximum, over
    space (interior, away from padding) and phases, of the post-ReLU output of `layer`."""
    device = next(model.parameters()).device
    angles = [math.pi * k / orientations for k in range(orientations)]
    responses = []
    with capture(model, [layer]) as cap:  # the forward pass stops at `layer`
        for pair in colors:
            stimuli = np.stack(
                [
                    grating(size, f, a, phase=2 * math.pi * p / phases, colors=pair)
                    for f in frequencies
                    for a in angles
                    for p in range(phases)
                ]
            )
            x = torch.from_numpy(stimuli).permute(0, 3, 1, 2).to(device)
            (out,) = cap.run(normalize(x))
            act = torch.relu(out)
            margin = max(1, act.shape[-1] // 16)
            act = act[..., margin:-margin, margin:-margin].amax(dim=(-1, -2))  # [stimuli, units]
            responses.append(act.reshape(len(frequencies), orientations, phases, -1).amax(dim=2))
    # [colours, freqs, orientations, units] -> [units, colours, freqs, orientations]
    return torch.stack(responses).permute(3, 0, 1, 2).cpu().numpy()


def selectivity_ratios(tuning: np.ndarray) -> np.ndarray:
    """Per unit: best orientation's response / mean over orientations, at the unit's preferred
    colour pair and frequency (those of its strongest response). A silent unit scores 0."""
    units = tuning.shape[0]
    flat = tuning.reshape(units, -1, tuning.shape[-1])  # [units, colour x freq, orientations]
    best = flat.max(axis=2).argmax(axis=1)
    curves = flat[np.arange(units), best]
    mean = curves.mean(axis=1)
    return np.where(mean > 1e-6, curves.max(axis=1) / np.maximum(mean, 1e-12), 0.0)


def relative_strength(tuning: np.ndarray) -> np.ndarray:
    """Per unit: its strongest grating response over the strongest of any unit in the layer.

    A nearly silent unit can pass the ratio test with tiny, narrowly tuned responses; requiring
    a share of the layer's strongest response keeps the count to units that matter."""
    best = tuning.reshape(tuning.shape[0], -1).max(axis=1)
    top = float(best.max())
    return best / top if top > 1e-12 else np.zeros_like(best)


def selective_fraction(
    model: nn.Module,
    normalize: Callable[[torch.Tensor], torch.Tensor],
    threshold: float = 2.0,
    colors: tuple[ColorPair, ...] = BLACK_WHITE,
    min_strength: float = 0.0,
) -> float:
    """Fraction of conv1 units whose best orientation gives >= `threshold` x the mean response
    (and, with `min_strength`, whose strongest response is at least that share of the layer's)."""
    tuning = orientation_tuning(model, normalize, colors=colors)
    passed = (selectivity_ratios(tuning) >= threshold) & (relative_strength(tuning) >= min_strength)
    return float(passed.mean())


@torch.no_grad()
def class_responses(
    model: nn.Module,
    normalize: Callable[[torch.Tensor], torch.Tensor],
    layer: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    batch: int = 200,
) -> np.ndarray:
    """[units, classes]: each unit's strongest response over positions in an image, averaged
    over the images of each class (what a claim's unit measure and dataset examples rank by).

    `images` are float NCHW in 0..1; a class without images gets NaN."""
    device = next(model.parameters()).device
    peaks = []
    with capture(model, [layer]) as cap:  # the forward pass stops at `layer`
        for start in range(0, len(images), batch):
            (out,) = cap.run(normalize(images[start : start + batch].to(device)))
            peaks.append(out.flatten(2).amax(2) if out.dim() == 4 else out)
    act = torch.cat(peaks).double().cpu()  # [images, units]
    means = torch.full((act.shape[1], n_classes), float("nan"), dtype=torch.float64)
    for c in range(n_classes):
        chosen = labels == c
        if bool(chosen.any()):
            means[:, c] = act[chosen].mean(0)
    return means.numpy()


def class_selectivity(responses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per unit of `class_responses`: its preferred class and how much more it responds to that
    class than to the next best one (preferred / runner-up; infinite when the runner-up is <= 0
    and the preferred class > 0). A unit that never fires scores 0."""
    order = np.argsort(-np.nan_to_num(responses, nan=-np.inf), axis=1)
    rows = np.arange(len(responses))
    best, second = responses[rows, order[:, 0]], responses[rows, order[:, 1]]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(second > 0, best / second, np.where(best > 0, np.inf, 0.0))
    return order[:, 0], ratio
