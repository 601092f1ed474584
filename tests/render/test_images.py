"""PNG encoding and the colour maps of figures (no torch)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from circuitpress.render.images import kernel_heatmap, overlay, to_png, to_uint8


def test_png_is_deterministic_and_lossless() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((9, 7, 3), dtype=np.float32)
    data = to_png(image)
    assert data == to_png(image.copy())
    assert b"tIME" not in data and b"tEXt" not in data  # no timestamps or text metadata
    decoded = np.asarray(Image.open(io.BytesIO(data)))
    np.testing.assert_array_equal(decoded, to_uint8(image))
    assert decoded.shape == (9, 7, 3)


@pytest.mark.parametrize(
    "shape, mode", [((5, 6), "L"), ((5, 6, 1), "L"), ((5, 6, 3), "RGB"), ((5, 6, 4), "RGBA")]
)
def test_png_shapes(shape: tuple[int, ...], mode: str) -> None:
    assert Image.open(io.BytesIO(to_png(np.full(shape, 200, np.uint8)))).mode == mode


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="HxW"):
        to_png(np.zeros((2, 3, 5)))


def test_float_values_are_clipped_and_rounded() -> None:
    out = to_uint8(np.array([[-1.0, 0.0, 0.5, 1.0, 7.0, np.nan]]))
    assert out.tolist() == [[0, 0, 128, 255, 255, 0]]


def test_kernel_heatmap_is_red_positive_blue_negative_on_one_scale() -> None:
    kernel = np.array([[1.0, -1.0], [0.0, 0.5]])
    rgb = kernel_heatmap(kernel, scale=2.0, pixels=3)
    assert rgb.shape == (6, 6, 3)
    pos, neg, zero, half = rgb[0, 0], rgb[0, 3], rgb[3, 0], rgb[3, 3]
    assert pos[0] > pos[2] and neg[2] > neg[0]  # red vs blue
    np.testing.assert_allclose(zero, 1.0)  # zero is white
    assert half.min() > pos.min()  # 0.5 on the shared scale 2 is paler than 1
    np.testing.assert_allclose(
        kernel_heatmap(kernel * 3)[0, 0], kernel_heatmap(kernel)[0, 0]
    )  # own max by default


def test_overlay_dims_silent_and_keeps_firing_pixels() -> None:
    image = np.full((4, 4, 3), 0.8, np.float32)
    heat = np.zeros((2, 2), np.float32)
    heat[0, 0] = 1.0
    out = overlay(image, heat)
    assert out.shape == (4, 4, 3) and out.dtype == np.float32
    assert out[0, 0].mean() > out[3, 3].mean()  # resized heatmap: the top-left fires
    assert out.min() >= 0 and out.max() <= 1
