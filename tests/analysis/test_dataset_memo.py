"""A build decodes each dataset once: every pass of every model on the same images is served
from memory, with exactly the images a direct read gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from circuitpress.analysis.models.procedural import HELDOUT_SEED, generate_images
from circuitpress.analysis.models.registry import ModelRegistry
from circuitpress.config import load_config


def registry(tmp_path: Path) -> ModelRegistry:
    (tmp_path / "circuitpress.toml").write_text(
        '[site]\ntitle = "t"\n[models.a]\nzoo = "shapes-a"\n[models.b]\nzoo = "shapes-b"\n'
        "[build]\ndataset_sample = 40\n"
    )
    return ModelRegistry(load_config(tmp_path), "cpu")


def test_models_on_the_same_images_share_one_decoded_dataset(tmp_path: Path) -> None:
    models = registry(tmp_path)
    a, b = models.get("a").dataset(), models.get("b").dataset()
    assert a is b
    first = torch.cat([x for _, x, _ in a.batches(16)])
    again = torch.cat([x for _, x, _ in b.batches(7, limit=30)])
    labels = torch.cat([y for _, _, y in a.batches(64) if y is not None])
    assert a.decoded == 40  # once, whatever the batch sizes and limits of later reads
    images, direct_labels = generate_images(0, 40, HELDOUT_SEED, 64, "shapes")
    direct = torch.from_numpy(images.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    assert torch.equal(first, direct) and torch.equal(again, direct[:30])
    assert torch.equal(labels, torch.from_numpy(direct_labels))
    np.testing.assert_array_equal(a.images([5, 2, 39]), images[[5, 2, 39]] / np.float32(255.0))
    # A served batch is a copy: a handler writing into it changes nothing for the next one.
    next(a.batches(4))[1].zero_()
    assert torch.equal(next(a.batches(4))[1], direct[:4])
