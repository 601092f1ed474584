"""The procedural dataset is deterministic per image, covers every class, and the stimuli
follow the documented geometry."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys

import numpy as np
import pytest

from circuitpress.analysis.models import procedural as p


def test_same_seed_gives_identical_bytes() -> None:
    a, la, classes = p.make_dataset("shapes", 40, seed=7)
    b, lb, _ = p.make_dataset("shapes", 40, seed=7)
    assert a.dtype == np.uint8 and a.shape == (40, 64, 64, 3)
    assert lb.dtype == np.int64 and classes == list(p.DATASETS["shapes"].classes)
    assert a.tobytes() == b.tobytes() and np.array_equal(la, lb)


def test_other_seed_gives_other_images() -> None:
    a, _, _ = p.make_dataset("shapes", 10, seed=7)
    b, _, _ = p.make_dataset("shapes", 10, seed=8)
    assert a.tobytes() != b.tobytes()


def test_any_slice_is_reproducible_on_its_own() -> None:
    full, labels, _ = p.make_dataset("shapes", 30, seed=3)
    part, part_labels = p.generate_images(17, 25, seed=3)
    assert np.array_equal(part, full[17:25]) and np.array_equal(part_labels, labels[17:25])


def test_bytes_identical_in_a_fresh_process() -> None:
    images, _ = p.generate_images(100, 110, seed=5)
    code = (
        "import hashlib; from circuitpress.analysis.models import procedural as p; "
        "print(hashlib.sha256(p.generate_images(100, 110, seed=5)[0].tobytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == hashlib.sha256(images.tobytes()).hexdigest()


def test_every_class_renders_something_visible() -> None:
    dataset = p.DATASETS["shapes"]
    images, labels = p.generate_images(0, 300, seed=11)
    assert set(labels.tolist()) == set(range(len(dataset.classes)))
    for c in range(len(dataset.classes)):
        img = images[labels == c][0].astype(float)
        # foreground and background contrast: far more spread than the pixel noise alone
        assert img.std(axis=(0, 1)).max() > 12, dataset.classes[c]


def test_other_sizes() -> None:
    images, _ = p.generate_images(0, 3, seed=0, size=96)
    assert images.shape == (3, 96, 96, 3)


def test_unknown_dataset_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="shapes"):
        p.make_dataset("nope", 1)


@pytest.mark.parametrize(
    "image",
    [
        p.grating(32, 4, 0.3),
        p.arc(32, 10, 1.0),
        p.edge(32, 0.5),
        p.line(32, 2.0),
        p.color_patch(32, (1.0, 0.0, 0.0), radius=6),
        p.color_patch(32, (0.2, 0.4, 0.6)),
    ],
)
def test_stimuli_are_float_images_in_unit_range(image: np.ndarray) -> None:
    assert image.dtype == np.float32 and image.shape == (32, 32, 3)
    assert image.min() >= 0.0 and image.max() <= 1.0


def test_grating_orientation_and_frequency() -> None:
    horizontal = p.grating(64, 4, 0.0)[..., 0]
    assert np.allclose(horizontal, horizontal[:, :1])  # stripes along x: constant along each row
    vertical = p.grating(64, 4, math.pi / 2)[..., 0]
    assert np.allclose(vertical, vertical[:1, :], atol=1e-6)
    column = horizontal[:, 0]
    crossings = np.count_nonzero(np.diff(np.sign(column - 0.5)))
    assert crossings == 8  # 4 cycles per image


def test_grating_colors_and_phase() -> None:
    g = p.grating(16, 2, 0.0, colors=((1, 0, 0), (0, 0, 1)))
    assert np.allclose(g[..., 1], 0) and np.allclose(g[..., 0] + g[..., 2], 1, atol=1e-6)
    assert not np.allclose(p.grating(16, 2, 0.0, phase=math.pi), p.grating(16, 2, 0.0))


def test_arc_midpoint_tangent_and_curvature() -> None:
    # angle 0: a hump whose midpoint is at the centre and whose ends bend downwards
    img = p.arc(64, 12, 0.0, span=math.pi)[..., 0]
    rows = np.nonzero(img.max(axis=1) > 0.5)[0]
    assert rows.min() <= 32 <= rows.min() + 2  # the top of the hump is at the centre row
    assert rows.max() > 40  # ends 12 px below
    # rotating by pi turns it into a bowl
    bowl = p.arc(64, 12, math.pi, span=math.pi)[..., 0]
    assert np.nonzero(bowl.max(axis=1) > 0.5)[0].max() <= 33
    # a huge radius is nearly straight: all ink within a couple of rows
    flat = p.arc(64, 5000, 0.0, span=0.01)[..., 0]
    ink_rows = np.nonzero(flat.max(axis=1) > 0.5)[0]
    assert ink_rows.max() - ink_rows.min() <= 3


def test_line_and_edge_orientation() -> None:
    diag = p.line(64, math.pi / 4)[..., 0]
    assert diag[10, 53] > 0.5 and diag[53, 10] > 0.5 and diag[10, 10] < 0.5  # rises to the right
    e = p.edge(64, 0.0)[..., 0]
    assert e[5, 32] < 0.1 and e[60, 32] > 0.9  # horizontal boundary: colors[0] above


def test_color_patch_disc() -> None:
    d = p.color_patch(32, (1.0, 0.0, 0.0), background=(0.0, 0.0, 1.0), radius=5)
    assert np.allclose(d[16, 16], (1, 0, 0)) and np.allclose(d[0, 0], (0, 0, 1))


def test_procedural_does_not_import_torch() -> None:
    code = "import sys, circuitpress.analysis.models.procedural; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
