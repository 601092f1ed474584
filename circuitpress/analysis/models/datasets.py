"""The images a model is analysed on: a procedural dataset or a folder of image files.

Both read lazily in batches (a pass over the dataset never holds it all in memory) and give
float32 images in 0..1 at the model's input size. Procedural images use the held-out seed, so
analyses never look at the images a zoo model was trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from circuitpress.analysis.models import sources
from circuitpress.analysis.models.procedural import HELDOUT_SEED, generate_images, get_dataset
from circuitpress.config import ModelConfig, SiteConfig

# Decoded images kept in memory for the length of a build, per dataset: every analysis of every
# model on the same dataset reads them again (examples, universality, claims), and drawing the
# procedural sample costs more than a forward pass over it (2,048 images at 64 px: 7.7 CPU s).
MEMO_BYTES = 1 << 30


class ImageDataset:
    """`len(ds)` images; `batches()` streams them, `images(indices)` fetches any of them again.

    Images are decoded once: reads extend an in-memory prefix of the dataset (when it fits in
    `MEMO_BYTES`), which later reads are served from. Image i depends only on i, so a prefix
    read in pieces equals one read whole."""

    def __init__(
        self, description: str, size: tuple[int, int], count: int, classes: list[str] | None
    ) -> None:
        self.description = description
        self.size = size  # (height, width)
        self.count = count
        self.classes = classes
        self._images: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._filled = 0
        self.decoded = 0  # images decoded so far (tests: each is decoded once)

    def _memo_read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        h, w = self.size
        if self.count * h * w * 3 * 4 > MEMO_BYTES or start > self._filled:
            # Too large to keep, or a look far ahead of what was read: read it directly.
            self.decoded += stop - start
            return self._read(start, stop)
        kept = self._images
        if stop > self._filled:
            images, labels = self._read(self._filled, stop)
            self.decoded += stop - self._filled
            if kept is None:
                kept = self._images = np.empty((self.count, h, w, 3), dtype=np.float32)
                if labels is not None:
                    self._labels = np.empty(self.count, dtype=labels.dtype)
            kept[self._filled : stop] = images
            if self._labels is not None and labels is not None:
                self._labels[self._filled : stop] = labels
            self._filled = stop
        if kept is None:  # nothing asked for yet (start == stop == 0)
            return self._read(start, stop)
        labels_out = self._labels[start:stop].copy() if self._labels is not None else None
        return kept[start:stop].copy(), labels_out

    def __len__(self) -> int:
        return self.count

    def batches(
        self, batch_size: int = 64, limit: int | None = None
    ) -> Iterator[tuple[int, torch.Tensor, torch.Tensor | None]]:
        """(start index, float32 NCHW in 0..1 on the CPU, int64 labels or None) per batch."""
        stop = len(self) if limit is None else min(limit, len(self))
        for start in range(0, stop, batch_size):
            end = min(start + batch_size, stop)
            images, labels = self._memo_read(start, end)
            x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
            yield start, x, (torch.from_numpy(labels) if labels is not None else None)

    def images(self, indices: list[int] | np.ndarray) -> np.ndarray:
        """Float32 [n, H, W, 3] in 0..1 for the given dataset indices (any order)."""
        out = [self._memo_read(int(i), int(i) + 1)[0][0] for i in indices]
        h, w = self.size
        return np.stack(out) if out else np.zeros((0, h, w, 3), np.float32)

    def _read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError


class ProceduralImages(ImageDataset):
    def __init__(
        self, name: str, count: int, size: tuple[int, int], seed: int = HELDOUT_SEED
    ) -> None:
        dataset = get_dataset(name)
        description = f"procedural '{name}' ({count} images, seed {seed})"
        super().__init__(description, size, count, list(dataset.classes))
        self.name, self.seed = name, seed

    def _read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        h, w = self.size
        images, labels = generate_images(start, stop, self.seed, max(h, w), self.name)
        x = images.astype(np.float32) / 255.0
        if h != w:  # drawn square at the larger side, centre-cropped to the input's aspect
            top, left = (max(h, w) - h) // 2, (max(h, w) - w) // 2
            x = x[:, top : top + h, left : left + w]
        return np.ascontiguousarray(x), labels


# Pillow's modes of one 16- or 32-bit integer channel, and their full-scale value.
_DEEP_GREY = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0}
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_ORIENTATION = 0x0112  # the EXIF orientation tag


def crop_box(image: tuple[int, int], target: tuple[int, int]) -> tuple[int, int, int, int]:
    """The largest centred box (left, top, right, bottom) of the target's aspect inside an
    image of size (width, height), for a target (height, width), in whole pixels: computed in
    floats, a 185x123 photo's box at 224x224 began at -7e-15, which Pillow refuses."""
    iw, ih = image
    h, w = target
    if iw * h >= ih * w:  # at least as wide as the target: the full height
        ch = ih
        cw = min(iw, max(1, (2 * ih * w + h) // (2 * h)))
    else:
        cw = iw
        ch = min(ih, max(1, (2 * iw * h + w) // (2 * w)))
    left, top = (iw - cw) // 2, (ih - ch) // 2
    return left, top, left + cw, top + ch


def _channels(im: Image.Image) -> tuple[Image.Image | None, list[Image.Image]]:
    """An opened image as either one 8-bit RGB image (the common case, resized as it is) or
    three float ("F") channel images in 0..1, for what 8 bits would clip or drop: 16-bit and
    32-bit grey (an `I;16` PNG converted to RGB is flat white), floats, and transparency
    (composited over white, as a page shows it)."""
    mode = im.mode
    if mode in _DEEP_GREY or mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = float(a.max()) if a.size else 0.0
        if mode in _DEEP_GREY:
            scale = _DEEP_GREY[mode]
        elif mode == "I":  # 32-bit integers: 16-bit data in practice (TIFF, older Pillows)
            scale = 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
        else:  # floats: 0..1 as they are, else 8- or 16-bit ranges
            scale = 1.0 if top <= 1.0 else 255.0 if top <= 255 else 65535.0
        grey = Image.fromarray(np.clip(a / scale, 0.0, 1.0).astype(np.float32))
        return None, [grey, grey, grey]
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in im.info):
        if mode == "La":  # premultiplied grey + alpha: Pillow converts it only to LA
            im = im.convert("LA")
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:]
        rgb = rgba[..., :3] * alpha + (1.0 - alpha)
        return None, [Image.fromarray(np.ascontiguousarray(rgb[..., c])) for c in range(3)]
    return im.convert("RGB"), []


def load_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Float32 [H, W, 3] in 0..1 at `size` (height, width) from any image Pillow opens (any
    mode, any size, the camera's orientation applied): centre-cropped to the target's aspect,
    then resized bilinearly. Raises Pillow's errors for a file it cannot read."""
    h, w = size
    with Image.open(path) as opened:
        # Phones store photos sideways with an orientation tag; exif_transpose copies even
        # when there is nothing to turn, so only where there is.
        turned = opened.getexif().get(_ORIENTATION, 1) not in (0, 1)
        im = ImageOps.exif_transpose(opened) if turned else opened
        rgb, channels = _channels(im)
        box = crop_box(im.size, size)
        if rgb is not None:
            rgb = rgb.resize((w, h), Image.Resampling.BILINEAR, box=box)
            return np.asarray(rgb, dtype=np.float32) / 255.0
        planes = [
            np.asarray(c.resize((w, h), Image.Resampling.BILINEAR, box=box), dtype=np.float32)
            for c in channels
        ]
        return np.clip(np.stack(planes, axis=-1), 0.0, 1.0)


class FolderImages(ImageDataset):
    """Image files of a folder (recursively, sorted by relative path), resized to the input size
    after a centre crop to its aspect ratio (`load_image`); the first `count` files are used."""

    def __init__(
        self,
        model: ModelConfig,
        config: SiteConfig,
        folder: Path,
        count: int,
        size: tuple[int, int],
    ) -> None:
        files = sources.image_files(folder)
        shown = sources.display(folder, config)
        if not files:
            raise sources.model_error(
                model,
                f"model '{model.name}': dataset folder '{shown}' has no images",
                f'add {", ".join(sources.IMAGE_SUFFIXES[:3])} files, or use dataset = "shapes"',
            )
        files = files[:count]
        super().__init__(f"folder '{shown}' ({len(files)} images)", size, len(files), None)
        self.model, self.config, self.files = model, config, files

    def _read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        return np.stack([self._load(p) for p in self.files[start:stop]]), None

    def _load(self, path: Path) -> np.ndarray:
        shown = sources.display(path, self.config)
        try:
            return load_image(path, self.size)
        except Image.DecompressionBombError:
            raise sources.model_error(
                self.model,
                f"model '{self.model.name}': dataset image '{shown}' has more pixels than "
                f"Pillow opens safely ({Image.MAX_IMAGE_PIXELS} x 2)",
                "downscale the file",
            ) from None
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
            raise sources.model_error(
                self.model,
                f"model '{self.model.name}': dataset image '{shown}' cannot be read "
                f"({type(exc).__name__})",
                "remove or replace the file",
            ) from None


def open_dataset(model: ModelConfig, config: SiteConfig, size: tuple[int, int]) -> ImageDataset:
    """The dataset of a model, with `config.build.dataset_sample` images."""
    kind, folder = sources.check_dataset(model, config)
    count = config.build.dataset_sample
    if kind == "procedural" or folder is None:
        return ProceduralImages(sources.dataset_name(model), count, size)
    return FolderImages(model, config, folder, count, size)
