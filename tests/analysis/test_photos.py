"""Every image Pillow opens is a dataset image: any mode, any size, in whole-pixel crops.

Fixture images are made here with Pillow; each test checks the pixels that come out, not only
that nothing crashed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from circuitpress.analysis.models.datasets import FolderImages, crop_box, load_image
from circuitpress.config import ModelConfig, load_config
from circuitpress.errors import UserError

RNG = np.random.default_rng(0)


def noise(h: int, w: int, channels: int = 3) -> np.ndarray:
    shape = (h, w, channels) if channels > 1 else (h, w)
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def test_crop_box_is_whole_pixels_inside_the_image() -> None:
    # The photo: the float box started at -7e-15 and Pillow refused it.
    assert crop_box((185, 123), (224, 224)) == (31, 0, 154, 123)
    assert crop_box((123, 185), (224, 224)) == (0, 31, 123, 154)
    assert crop_box((64, 64), (32, 32)) == (0, 0, 64, 64)
    assert crop_box((1, 1), (224, 224)) == (0, 0, 1, 1)
    assert crop_box((1000, 1), (224, 224)) == (499, 0, 500, 1)
    assert crop_box((100, 100), (32, 64)) == (0, 25, 100, 75)  # wide target: rows cut
    for iw in range(1, 60, 7):
        for ih in range(1, 60, 5):
            for target in ((224, 224), (32, 48), (48, 32)):
                left, top, right, bottom = crop_box((iw, ih), target)
                assert 0 <= left < right <= iw and 0 <= top < bottom <= ih


def test_a_185x123_jpeg_loads_at_224(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    Image.fromarray(noise(123, 185)).save(path, quality=95)
    x = load_image(path, (224, 224))
    assert x.shape == (224, 224, 3) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and 0.3 < x.mean() < 0.7


def test_sixteen_bit_grey_keeps_its_values(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I")  # what this test is about: a 16-bit grey PNG
    x = load_image(path, (64, 64))
    # Not flat white: a ramp from black to white, grey on all three channels.
    assert x[:, 0].max() < 0.01 and x[:, -1].min() > 0.99
    np.testing.assert_allclose(x[0, :, 0], ramp[0] / 65535.0, atol=1e-4)
    assert np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 0], x[..., 2])


def test_32_bit_integer_and_float_grey(tmp_path: Path) -> None:
    ints = (np.arange(32 * 32).reshape(32, 32) * 60).astype(np.int32)  # up to 61,380
    Image.fromarray(ints).save(tmp_path / "i.tif")
    x = load_image(tmp_path / "i.tif", (32, 32))
    np.testing.assert_allclose(x[..., 0], ints / 65535.0, atol=1e-5)
    floats = np.linspace(0.0, 1.0, 32 * 32, dtype=np.float32).reshape(32, 32)
    Image.fromarray(floats).save(tmp_path / "f.tif")
    y = load_image(tmp_path / "f.tif", (32, 32))
    np.testing.assert_allclose(y[..., 1], floats, atol=1e-6)


def test_palette_modes_and_transparency_over_white(tmp_path: Path) -> None:
    rgb = noise(40, 40)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    x = load_image(tmp_path / "p.png", (40, 40))
    assert np.abs(x - rgb / 255.0).mean() < 0.1  # a palette approximates the colours

    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0] = 255  # red, half of it fully transparent
    rgba[:, :10, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "a.png")
    y = load_image(tmp_path / "a.png", (20, 20))
    np.testing.assert_allclose(y[5, 2], [1.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(y[5, 17], [1.0, 1.0, 1.0], atol=1e-6)  # over white, not black

    Image.fromarray(rgba).convert("P").save(tmp_path / "pt.gif", transparency=0)
    assert load_image(tmp_path / "pt.gif", (20, 20)).shape == (20, 20, 3)
    la = Image.fromarray(rgba).convert("LA")
    la.save(tmp_path / "la.png")
    z = load_image(tmp_path / "la.png", (20, 20))
    np.testing.assert_allclose(z[5, 17], [1.0, 1.0, 1.0], atol=1e-6)


@pytest.mark.parametrize("mode", ["L", "1", "CMYK", "RGB", "YCbCr"])
def test_plain_modes(tmp_path: Path, mode: str) -> None:
    base = Image.fromarray(noise(30, 50))
    path = tmp_path / ("x.jpg" if mode in ("CMYK", "YCbCr") else "x.png")
    image = base.convert(mode) if mode != "YCbCr" else base.convert("YCbCr")
    image.save(path)
    x = load_image(path, (24, 24))
    assert x.shape == (24, 24, 3) and 0.0 <= x.min() and x.max() <= 1.0
    expected = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    assert abs(float(x.mean()) - float(expected.mean())) < 0.05


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = 255  # white left half of a landscape image
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    path = tmp_path / "turned.jpg"
    image.save(path, exif=exif, quality=95)
    x = load_image(path, (40, 20))  # shown upright: 40 rows, 20 columns
    assert x.shape == (40, 20, 3)
    assert x[:15].mean() > 0.9 and x[25:].mean() < 0.1  # white on top after turning


def test_extreme_sizes(tmp_path: Path) -> None:
    Image.fromarray(noise(1, 1)).save(tmp_path / "dot.png")
    Image.fromarray(noise(2, 300)).save(tmp_path / "strip.png")
    Image.fromarray(noise(900, 700)).save(tmp_path / "big.png")
    for name in ("dot.png", "strip.png", "big.png"):
        assert load_image(tmp_path / name, (224, 224)).shape == (224, 224, 3)


def test_a_folder_of_every_mode_is_one_dataset(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    Image.fromarray(noise(123, 185)).save(folder / "a.jpg")
    Image.fromarray(np.full((50, 50), 40000, np.uint16)).save(folder / "b.png")
    Image.fromarray(noise(30, 30)).convert("CMYK").save(folder / "c.jpg")
    Image.fromarray(noise(30, 30, 1)).save(folder / "d.png")
    Image.fromarray(noise(30, 30)).convert("P").save(folder / "e.gif")
    (tmp_path / "circuitpress.toml").write_text('[site]\ntitle = "x"\n', encoding="utf-8")
    config = load_config(tmp_path)
    model = ModelConfig(name="m", factory="x:y", dataset=str(folder))
    data = FolderImages(model, config, folder, 10, (224, 224))
    images = np.concatenate([x.permute(0, 2, 3, 1).numpy() for _, x, _ in data.batches(2)])
    assert images.shape == (5, 224, 224, 3)
    np.testing.assert_allclose(images[1], 40000 / 65535.0, atol=1e-4)  # grey, not white

    (folder / "f.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    broken = FolderImages(model, config, folder, 10, (224, 224))
    with pytest.raises(UserError, match="'data/f.png' cannot be read"):
        broken.images([5])
