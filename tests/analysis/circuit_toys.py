"""Tiny hand-built models and a stand-in engine environment for the circuits analyses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn


class ToyNet(nn.Module):
    """conv1 -> relu1 -> pool1 -> conv2 -> relu2 -> conv3 -> relu3 -> gap -> flatten -> head."""

    def __init__(self, k1: int = 3, k2: int = 3, classes: int = 2, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 4, k1, padding=k1 // 2)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 5, k2, padding=k2 // 2)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(5, 6, 1)
        self.relu3 = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(6, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.relu3(self.conv3(self.relu2(self.conv2(x))))
        return self.head(self.flatten(self.gap(x)))


class ToyDataset:
    def __init__(self, n: int = 96, size: int = 16, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.rand(n, 3, size, size, generator=g)
        # Labels a model can learn from: is the image's red channel brighter than its blue one?
        self.labels = (self.images[:, 0].mean((1, 2)) > self.images[:, 2].mean((1, 2))).long()

    def batches(
        self, batch_size: int, limit: int | None = None
    ) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        n = len(self.images) if limit is None else min(limit, len(self.images))
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            yield start, self.images[start:stop], self.labels[start:stop]


@dataclass
class Loaded:
    module: nn.Module
    data: ToyDataset
    classes: tuple[str, ...] = ("blue", "red")
    input_shape: tuple[int, int, int] = (3, 16, 16)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 0.5) / 0.25

    def dataset(self) -> ToyDataset:
        return self.data


@dataclass
class Models:
    loaded: dict[str, Loaded]

    def get(self, name: str) -> Loaded:
        return self.loaded[name]


@dataclass
class Env:
    models: Models
    device: str = "cpu"
    sample_size: int = 96
    calls: list[tuple[str, int, int]] = field(default_factory=list)

    def progress(self, label: str, done: int, total: int) -> None:
        self.calls.append((label, done, total))


def env_with(**models: nn.Module) -> Env:
    data = ToyDataset()
    return Env(Models({name: Loaded(m.eval(), data) for name, m in models.items()}))


def state(model: nn.Module) -> dict[str, Any]:
    return {k: v.clone() for k, v in model.state_dict().items()}
