"""The built-in model zoo: small CNNs trained on the procedural `shapes` dataset.

Architectures live in `models.py`, the reproducible training script in `train.py`, and the
shipped weights (safetensors + a JSON record each) in `weights/`.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent / "weights"


def weights_path(name: str) -> Path:
    """Where the shipped weights of zoo model `name` live (whether or not the file exists)."""
    return WEIGHTS_DIR / f"{name}.safetensors"


def record_path(name: str) -> Path:
    """The JSON training record next to the weights (accuracy, time, command, sha256)."""
    return WEIGHTS_DIR / f"{name}.json"
