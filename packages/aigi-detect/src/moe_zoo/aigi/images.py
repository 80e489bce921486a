"""Image input: files, PIL images and arrays to RGB ``uint8``, and the one resize every model input
goes through (training, evaluation and prediction alike).

Conversions: grayscale (L, 1, I, F), 16-bit (I;16*), palette (P), CMYK and YCbCr become RGB; an
alpha channel (RGBA, LA, PA) is composited on white. 16-bit and float images are scaled by their
own range to 8 bits. Corrupt, truncated, empty or non-image files and images over
:data:`MAX_PIXELS` raise :class:`~moe_zoo.core.InputError` naming the file. Large JPEGs are
decoded at a reduced scale (``draft``) when the target size allows it.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from moe_zoo.core import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
MAX_PIXELS = 200_000_000          # ~14k x 14k; above this an image is refused (decompression bombs)


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = np.zeros_like(values) if high <= low else (values - low) / (high - low) * 255.0
        gray = np.round(scaled).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"))


def load_image(source: str | Path | Image.Image | np.ndarray, *, target: int | None = None) -> np.ndarray:
    """``uint8 [H, W, 3]`` RGB from a path, a PIL image or an array (``[H, W]``, ``[H, W, 1|3|4]``;
    uint8, uint16 or float in [0, 1]). ``target`` lets big JPEGs decode at a smaller scale."""
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source)
    if isinstance(source, Image.Image):
        return _to_rgb(source)
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file, expected an image")
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InputError(f"{path}: {width}x{height} is too large ({width * height / 1e6:.0f} MP; "
                                 f"at most {MAX_PIXELS / 1e6:.0f} MP); downscale it first")
            if target is not None and image.format == "JPEG":
                image.draft("RGB", (target, target))
            image.load()
            return _to_rgb(image)
    except InputError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise InputError(f"{path}: not a readable image ({type(err).__name__}: {err})") from None


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)) or min(array.shape[:2]) < 1:
        raise InputError(f"image array must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got shape {array.shape}")
    if array.dtype == np.uint8:
        values = array
    elif array.dtype == np.uint16:
        values = (array.astype(np.float64) / 65535.0 * 255.0).round().astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise InputError("image array has NaN or inf values")
        values = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    else:
        raise InputError(f"image array dtype must be uint8, uint16 or float in [0, 1], got {array.dtype}")
    if values.ndim == 2:
        return np.repeat(values[..., None], 3, axis=-1)
    if values.shape[-1] == 4:
        alpha = values[..., 3:].astype(np.float64) / 255.0
        return (values[..., :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(values)


def to_tensor(images: np.ndarray | list[np.ndarray], size: int) -> torch.Tensor:
    """``uint8 [N, H, W, 3]`` (or a list of differently sized ``[H, W, 3]``) -> ``float [N, 3, size,
    size]`` in [0, 1]: bilinear, antialiased resize to a square (no crop), the same for every input."""
    if isinstance(images, np.ndarray):
        batch = torch.from_numpy(np.require(images, requirements=["C", "W"])).permute(0, 3, 1, 2).float() / 255.0
        return _resize(batch, size)
    return torch.cat([to_tensor(image[None], size) for image in images]) if images else torch.zeros(0, 3, size, size)


def _resize(batch: torch.Tensor, size: int) -> torch.Tensor:
    if batch.shape[-2:] == (size, size):
        return batch
    return F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode ``uint8 [H, W, 3]`` as a JPEG of ``quality`` in memory and decode it again."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted)."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
