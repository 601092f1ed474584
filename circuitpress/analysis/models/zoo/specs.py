"""What determines each zoo model (architecture, data, recipe), importable without torch.

Fingerprints and `circuitpress check` read this module; `models.py` builds the torch modules.
"""

from __future__ import annotations

from dataclasses import dataclass

from circuitpress.analysis.models.procedural import DATASETS, TRAIN_SEED
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
    # "chain" (ShapesNet: a chain of convs) or "branch" (BranchNet: conv1, conv2, an Inception
    # block `mixed3`, a max-pool, a residual block `block4`); see models.py.
    architecture: str = "chain"
    # BranchNet only: output channels of mixed3's branches (1x1, 3x3, 5x5, pool projection)
    # and of the 1x1 reductions before its 3x3 and 5x5 convs.
    branches: tuple[int, int, int, int] = (12, 16, 12, 8)
    reductions: tuple[int, int] = (16, 8)
    kernel1: int = 7  # conv1's kernel: 7x7 gives elongated, sharply oriented edge detectors
    global_pool: str = "max"  # "max" or "avg" over the last conv layer
    conv1_init_scale: float = 1.0  # multiplies conv1's default (Kaiming-uniform) initial weights
    dataset: str = "shapes"
    train_images: int = 20_000
    train_seed: int = TRAIN_SEED
    epochs: int = 5
    batch_size: int = 64
    lr: float = 6e-3
    # L1 penalty on conv1's post-ReLU activations (their mean, added to the loss): sparse first
    # layer responses make sharply tuned, elongated edge detectors (see docs/models.md).
    conv1_sparsity: float = 0.3
    description: str = ""

    @property
    def classes(self) -> tuple[str, ...]:
        return DATASETS[self.dataset].classes

    @property
    def layers(self) -> tuple[str, ...]:
        """The conv layers (pre-activation outputs), in the order the data flows."""
        chain = tuple(f"conv{i + 1}" for i in range(len(self.widths)))
        if self.architecture == "chain":
            return chain
        block = (
            "mixed3.conv1x1",
            "mixed3.conv3x3_reduce",
            "mixed3.conv3x3",
            "mixed3.conv5x5_reduce",
            "mixed3.conv5x5",
            "mixed3.pool_proj",
        )
        return (*chain, *block, "block4.conv_a", "block4.conv_b")


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
    "shapes-branch": ZooSpec(
        "shapes-branch",
        seed=4,
        widths=(16, 32),
        architecture="branch",
        description=(
            "conv1 and conv2 as in shapes-a, then an Inception block (1x1, 3x3, 5x5 and pool "
            "branches concatenated to 48 channels), a max-pool and a residual block of two 3x3 "
            "convs"
        ),
    ),
}


def get_spec(name: str) -> ZooSpec:
    """The spec of a zoo model; KeyError listing the known names when unknown."""
    try:
        return ZOO[name]
    except KeyError:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(sorted(ZOO))}") from None
