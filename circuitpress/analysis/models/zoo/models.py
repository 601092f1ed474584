"""Architectures of the zoo models: small CNNs with named conv layers, for circuits analysis.

Layer naming contract (other modules and articles rely on it):
- `convN` is the `nn.Conv2d` itself, so a reference to `shapes-a/conv2:7` reads the
  *pre-activation* output of channel 7; `reluN` (an `nn.ReLU` module) is the post-activation.
- `poolN` are `nn.MaxPool2d` modules (the circuits analysis swaps ReLU for identity and max-pool
  for average-pool to compute expanded weights, so neither may be functional calls).
- then `global_pool` (global max pooling), `flatten`, and the linear classifier `head`.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from circuitpress.analysis.models.zoo.specs import ZOO, ZOO_PREPROCESSING, ZooSpec, get_spec

__all__ = ["ZOO", "ZOO_PREPROCESSING", "ZooSpec", "ShapesNet", "build_model", "get_spec"]


class ShapesNet(nn.Module):
    """conv1 -> relu1 -> pool1 -> conv2 -> relu2 -> pool2 -> conv3 -> relu3 [-> pool3 -> conv4
    -> relu4 ...] -> global_pool -> flatten -> head. Pooling follows every conv layer but the
    last."""

    def __init__(
        self,
        widths: tuple[int, ...],
        n_classes: int,
        kernel1: int = 5,
        global_pool: str = "max",
        conv1_init_scale: float = 1.0,
    ) -> None:
        super().__init__()
        channels = 3
        for i, width in enumerate(widths, start=1):
            k = kernel1 if i == 1 else 3
            # Registered in forward order so named_modules() lists layers as the data flows.
            self.add_module(f"conv{i}", nn.Conv2d(channels, width, k, padding=k // 2))
            self.add_module(f"relu{i}", nn.ReLU())
            if i < len(widths):
                self.add_module(f"pool{i}", nn.MaxPool2d(2))
            channels = width
        # Global max pooling: "is there an end point / corner / curve anywhere" is what tells thin
        # shapes apart; averaging dilutes a few strong responses over the whole image.
        self.global_pool = (
            nn.AdaptiveMaxPool2d(1) if global_pool == "max" else nn.AdaptiveAvgPool2d(1)
        )
        self.flatten = nn.Flatten()
        self.head = nn.Linear(channels, n_classes)
        self.depth = len(widths)
        with torch.no_grad():
            # A small start for conv1: its final filters are then what training put there (clean
            # oriented edges and colour detectors), not the random pattern it began with.
            cast(nn.Conv2d, self.conv1).weight.mul_(conv1_init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.depth + 1):
            x = getattr(self, f"relu{i}")(getattr(self, f"conv{i}")(x))
            if i < self.depth:
                x = getattr(self, f"pool{i}")(x)
        return self.head(self.flatten(self.global_pool(x)))


def build_model(name: str) -> ShapesNet:
    """A zoo architecture with its seeded random initialisation (no trained weights)."""
    spec = get_spec(name)
    torch.manual_seed(spec.seed)
    return ShapesNet(
        spec.widths, len(spec.classes), spec.kernel1, spec.global_pool, spec.conv1_init_scale
    )
