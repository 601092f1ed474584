"""Arrays to PNG bytes and the colour maps of figures (Pillow and NumPy; no torch).

PNG bytes are deterministic: the same array always gives the same bytes (no timestamps, no
text chunks), so image assets can be content-addressed and a rebuild rewrites nothing.
"""

from __future__ import annotations

import io

import numpy as np

# Pillow is imported where an image is made: a prose build never loads it.

# Heatmap overlay colour (Distill-ish warm orange) and the weight colours: red for excitation,
# blue for inhibition, as in the Circuits thread's weight figures.
HEAT_RGB = np.array([1.0, 0.45, 0.05], dtype=np.float32)
POSITIVE_RGB = np.array([0.84, 0.19, 0.15], dtype=np.float32)
NEGATIVE_RGB = np.array([0.17, 0.39, 0.74], dtype=np.float32)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """float in 0..1 (clipped) or uint8, HWC (C = 1, 3, 4) or HW, as uint8 HWC/HW."""
    a = np.asarray(array)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected an HxW or HxWxC image (C = 1, 3 or 4), got shape {a.shape}")
    if a.dtype == np.uint8:
        out = a
    elif np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer):
        f = np.nan_to_num(a.astype(np.float32), nan=0.0)
        out = np.round(np.clip(f, 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        raise ValueError(f"unsupported image dtype {a.dtype}")
    if out.ndim == 3 and out.shape[2] == 1:
        out = out[:, :, 0]
    return np.ascontiguousarray(out)


def to_png(array: np.ndarray) -> bytes:
    """PNG bytes of an image array (see `to_uint8` for accepted shapes and types)."""
    from PIL import Image

    a = to_uint8(array)
    mode = "L" if a.ndim == 2 else ("RGBA" if a.shape[2] == 4 else "RGB")
    buffer = io.BytesIO()
    # optimize=False and no pnginfo: Pillow then writes only IHDR/IDAT/IEND, byte-stable.
    Image.fromarray(a, mode=mode).save(buffer, format="PNG", optimize=False, compress_level=9)
    return buffer.getvalue()


def resize(array: np.ndarray, height: int, width: int, *, smooth: bool = True) -> np.ndarray:
    """Resize a float image (HW or HWC) with bilinear or nearest sampling, keeping float32."""
    from PIL import Image

    a = np.asarray(array, dtype=np.float32)
    if a.shape[:2] == (height, width):
        return a
    resample = Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST
    if a.ndim == 2:
        return np.asarray(
            Image.fromarray(a, mode="F").resize((width, height), resample), dtype=np.float32
        )
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(a[:, :, c]), mode="F").resize(
                (width, height), resample
            )
        )
        for c in range(a.shape[2])
    ]
    return np.stack(channels, axis=2).astype(np.float32)


def overlay(image: np.ndarray, heatmap: np.ndarray, *, strength: float = 0.75) -> np.ndarray:
    """Lay an activation heatmap (HW in 0..1) over an image (HWC float 0..1 or uint8).

    Where the unit is silent the image is dimmed, where it fires the image keeps its colours
    under a warm tint: the reader sees both the pixels and where the unit responded.
    Returns float32 HWC in 0..1.
    """
    img = to_uint8(image).astype(np.float32) / 255.0
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3]
    heat = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0.0, 1.0)
    if heat.shape != img.shape[:2]:
        heat = resize(heat, img.shape[0], img.shape[1])
    h = heat[:, :, None]
    dimmed = img * (0.35 + 0.65 * h)
    tinted = dimmed * (1 - strength * 0.35 * h) + HEAT_RGB * (strength * 0.35 * h)
    return np.clip(tinted, 0.0, 1.0).astype(np.float32)


def kernel_heatmap(
    kernel: np.ndarray, scale: float | None = None, *, pixels: int = 1
) -> np.ndarray:
    """A weight kernel (HW) as colours: red positive, blue negative, white zero.

    `scale` is the magnitude that maps to full colour; pass one shared value to draw several
    kernels on the same symmetric scale (default: this kernel's max |w|). `pixels` enlarges each
    weight to a pixels x pixels block (nearest), so small kernels stay crisp in the browser.
    Returns float32 HWC in 0..1.
    """
    k = np.nan_to_num(np.asarray(kernel, dtype=np.float32))
    if k.ndim != 2:
        raise ValueError(f"expected a 2-D kernel, got shape {k.shape}")
    s = float(scale) if scale is not None else float(np.abs(k).max())
    t = np.clip(k / s, -1.0, 1.0) if s > 0 else np.zeros_like(k)
    pos = np.clip(t, 0.0, 1.0)[:, :, None]
    neg = np.clip(-t, 0.0, 1.0)[:, :, None]
    white = np.ones(3, dtype=np.float32)
    rgb = white * (1 - pos - neg) + POSITIVE_RGB * pos + NEGATIVE_RGB * neg
    if pixels > 1:
        rgb = np.repeat(np.repeat(rgb, pixels, axis=0), pixels, axis=1)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def grid(
    images: list[np.ndarray], columns: int, *, gap: int = 2, background: float = 1.0
) -> np.ndarray:
    """Tile equally sized HWC float images into one image (for sprites and contact sheets)."""
    if not images:
        raise ValueError("no images to tile")
    h, w = images[0].shape[:2]
    rows = (len(images) + columns - 1) // columns
    out = np.full(
        (rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap, 3), background, np.float32
    )
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        a = to_uint8(img).astype(np.float32) / 255.0
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = a[:, :, :3]
    return out
