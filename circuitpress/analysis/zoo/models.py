"""Architectures of the zoo models: small CNNs with named conv layers, for circuits analysis.

Layer naming contract (other modules and articles rely on it):
- `convN` is the `nn.Conv2d` itself, so a reference to `shapes-a/conv2:7` reads the
  *pre-activation* output of channel 7; `reluN` (an `nn.ReLU` module) is the post-activation.
- `poolN` are `nn.MaxPool2d` modules (the circuits analysis swaps ReLU for identity and max-pool
  for average-pool to compute expanded weights, so neither may be functional calls).
- then `gap` (global average pooling), `flatten`, and the linear classifier `head`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from circuitpress.analysis.procedural import DATASETS, TRAIN_SEED
from circuitpress.config import Preprocessing

# Zoo models see images in 0..1, normalised around mid-grey.
ZOO_PREPROCESSING = Preprocessing(
    input_range=(0.0, 1.0), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), input_size=(64, 64)
)


@dataclass(frozen=True)
class ZooSpec:
    """Everything that determines a zoo model: architecture, data and training recipe."""

    name: str
    seed: int
    widths: tuple[int, ...] = (16, 32, 48)  # output channels of conv1, conv2, conv3, ...
    kernel1: int = 5  # conv1's kernel; 5x5 lets oriented edge detectors form
    dataset: str = "shapes"
    train_images: int = 30_000
    train_seed: int = TRAIN_SEED
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    description: str = ""

    @property
    def classes(self) -> tuple[str, ...]:
        return DATASETS[self.dataset].classes

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(f"conv{i + 1}" for i in range(len(self.widths)))


ZOO: dict[str, ZooSpec] = {
    "shapes-a": ZooSpec("shapes-a", seed=1, description="3 conv layers (16, 32, 48 channels)"),
    "shapes-b": ZooSpec(
        "shapes-b", seed=2, description="the architecture of shapes-a trained from another seed"
    ),
    "shapes-deep": ZooSpec(
        "shapes-deep",
        seed=3,
        widths=(16, 32, 48, 64),
        description="4 conv layers (16, 32, 48, 64 channels): a deeper relative of shapes-a",
    ),
}


class ShapesNet(nn.Module):
    """conv1 -> relu1 -> pool1 -> conv2 -> relu2 -> pool2 -> conv3 -> relu3 [-> pool3 -> conv4
    -> relu4 ...] -> gap -> flatten -> head. Pooling follows every conv layer but the last."""

    def __init__(self, widths: tuple[int, ...], n_classes: int, kernel1: int = 5) -> None:
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
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(channels, n_classes)
        self.depth = len(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.depth + 1):
            x = getattr(self, f"relu{i}")(getattr(self, f"conv{i}")(x))
            if i < self.depth:
                x = getattr(self, f"pool{i}")(x)
        return self.head(self.flatten(self.gap(x)))


def get_spec(name: str) -> ZooSpec:
    """The spec of a zoo model; KeyError listing the known names when unknown."""
    try:
        return ZOO[name]
    except KeyError:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(sorted(ZOO))}") from None


def build_model(name: str) -> ShapesNet:
    """A zoo architecture with its seeded random initialisation (no trained weights)."""
    spec = get_spec(name)
    torch.manual_seed(spec.seed)
    return ShapesNet(spec.widths, len(spec.classes), spec.kernel1)
