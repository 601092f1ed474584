"""Architectures of the zoo models: small CNNs with named conv layers, for circuits analysis.

Layer naming contract (other modules and articles rely on it):
- `convN` is the `nn.Conv2d` itself, so a reference to `shapes-a/conv2:7` reads the
  *pre-activation* output of channel 7; `reluN` (an `nn.ReLU` module) is the post-activation.
- `poolN` are `nn.MaxPool2d` modules (the circuits analysis swaps ReLU for identity and max-pool
  for average-pool to compute expanded weights, so neither may be functional calls).
- then `global_pool` (global max pooling), `flatten`, and the linear classifier `head`.

`shapes-branch` (`BranchNet`) keeps conv1/relu1/pool1/conv2/relu2/pool2 and replaces conv3 by
two blocks, named as torchvision names GoogLeNet's and ResNet's submodules:
- `mixed3`, an Inception block whose output is the concatenation, in this channel order, of
  four branches: `conv1x1`; `conv3x3_reduce` (1x1) then `conv3x3`; `conv5x5_reduce` (1x1) then
  `conv5x5`; `pool` (3x3 max-pool, stride 1) then `pool_proj` (1x1). Each conv has its ReLU
  module `relu1x1`, `relu3x3_reduce`, ... so `mixed3.conv3x3:5` is a pre-activation and
  `mixed3.relu3x3:5` its post-activation, as in the chain models.
- `pool3` (2x2 max-pool), then `block4`, a residual block: `conv_a` (3x3) -> `relu_a` ->
  `conv_b` (3x3), added to the block's input (the skip connection), then `relu`; the block's
  output is `block4.relu`'s.
No operation is in place, so every module's captured output is the value it computed.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from circuitpress.analysis.models.zoo.specs import ZOO, ZOO_PREPROCESSING, ZooSpec, get_spec

__all__ = [
    "ZOO",
    "ZOO_PREPROCESSING",
    "BranchNet",
    "ZooSpec",
    "ShapesNet",
    "build_architecture",
    "build_model",
    "get_spec",
]


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


class InceptionBlock(nn.Module):
    """Four parallel branches over one input, concatenated along channels (GoogLeNet's block):
    1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max-pool -> 1x1."""

    def __init__(
        self, channels: int, branches: tuple[int, int, int, int], reductions: tuple[int, int]
    ) -> None:
        super().__init__()
        b1, b3, b5, bp = branches
        r3, r5 = reductions
        # Registered in forward order, branch by branch, so named_modules() reads as the data flows.
        self.conv1x1 = nn.Conv2d(channels, b1, 1)
        self.relu1x1 = nn.ReLU()
        self.conv3x3_reduce = nn.Conv2d(channels, r3, 1)
        self.relu3x3_reduce = nn.ReLU()
        self.conv3x3 = nn.Conv2d(r3, b3, 3, padding=1)
        self.relu3x3 = nn.ReLU()
        self.conv5x5_reduce = nn.Conv2d(channels, r5, 1)
        self.relu5x5_reduce = nn.ReLU()
        self.conv5x5 = nn.Conv2d(r5, b5, 5, padding=2)
        self.relu5x5 = nn.ReLU()
        self.pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.pool_proj = nn.Conv2d(channels, bp, 1)
        self.relu_pool_proj = nn.ReLU()
        self.out_channels = b1 + b3 + b5 + bp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        one = self.relu1x1(self.conv1x1(x))
        three = self.relu3x3(self.conv3x3(self.relu3x3_reduce(self.conv3x3_reduce(x))))
        five = self.relu5x5(self.conv5x5(self.relu5x5_reduce(self.conv5x5_reduce(x))))
        pool = self.relu_pool_proj(self.pool_proj(self.pool(x)))
        return torch.cat([one, three, five, pool], dim=1)


class ResidualBlock(nn.Module):
    """relu(x + conv_b(relu(conv_a(x)))): ResNet's basic block without batch norm."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu_a = nn.ReLU()
        self.conv_b = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Not `+=`: an in-place add would change a captured conv_b output after the fact.
        return self.relu(x + self.conv_b(self.relu_a(self.conv_a(x))))


class BranchNet(nn.Module):
    """conv1 -> relu1 -> pool1 -> conv2 -> relu2 -> pool2 -> mixed3 (Inception block, 16x16)
    -> pool3 -> block4 (residual block, 8x8) -> global_pool -> flatten -> head."""

    def __init__(
        self,
        widths: tuple[int, int],
        n_classes: int,
        branches: tuple[int, int, int, int],
        reductions: tuple[int, int],
        kernel1: int = 7,
        conv1_init_scale: float = 1.0,
    ) -> None:
        super().__init__()
        w1, w2 = widths
        self.conv1 = nn.Conv2d(3, w1, kernel1, padding=kernel1 // 2)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(w1, w2, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.mixed3 = InceptionBlock(w2, branches, reductions)
        # The residual block runs at 8x8: at 16x16 its two 48-channel convs tripled the cost
        # of a training step.
        self.pool3 = nn.MaxPool2d(2)
        self.block4 = ResidualBlock(self.mixed3.out_channels)
        self.global_pool = nn.AdaptiveMaxPool2d(1)  # as in ShapesNet
        self.flatten = nn.Flatten()
        self.head = nn.Linear(self.mixed3.out_channels, n_classes)
        with torch.no_grad():
            self.conv1.weight.mul_(conv1_init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.block4(self.pool3(self.mixed3(x)))
        return self.head(self.flatten(self.global_pool(x)))


def build_architecture(spec: ZooSpec) -> nn.Module:
    """The architecture of `spec` with its seeded random initialisation (`spec.seed`)."""
    torch.manual_seed(spec.seed)
    n_classes = len(spec.classes)
    if spec.architecture == "branch":
        w1, w2 = spec.widths
        return BranchNet(
            (w1, w2),
            n_classes,
            spec.branches,
            spec.reductions,
            spec.kernel1,
            spec.conv1_init_scale,
        )
    return ShapesNet(spec.widths, n_classes, spec.kernel1, spec.global_pool, spec.conv1_init_scale)


def build_model(name: str) -> nn.Module:
    """A zoo architecture with its seeded random initialisation (no trained weights)."""
    return build_architecture(get_spec(name))
