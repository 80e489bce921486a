"""Snippets follow time, not frame count: frames are resampled to the rate the model was trained at.

A model trained on 10 fps footage with 8-frame snippets sees 0.8 s per snippet; a 30 fps clip
cut into 8-frame snippets would show it 0.27 s of motion per snippet, and its motion features
(frame differences, shifts) would be a third of the trained ones. :func:`resample` keeps the
source frames nearest in time to the model's frame times ``j / fps_model``:
``i(j) = floor(j * fps_source / fps_model)``, and :func:`frame_to_resampled` maps every source
frame back to the resampled frame shown at its time, so scores come back per source frame.
Clips slower than the model's rate are not upsampled (repeated frames would look like a frozen
camera); they are scored at their own rate with a warning.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np

from moe_zoo.core import InputError

RATE_TOLERANCE = 0.05  # rates within 5% of the model's are used as they are


def check_fps(fps: float, name: str = "fps") -> float:
    """A frame rate must be a finite positive number."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number of frames per second, got {fps!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a positive number of frames per second, got {fps!r}")
    return value


def needs_resampling(source_fps: float, model_fps: float) -> bool:
    """Only faster clips are resampled (down to the model's rate)."""
    return source_fps > model_fps * (1 + RATE_TOLERANCE)


def resample(frames: Iterable[np.ndarray], source_fps: float, model_fps: float) -> Iterator[np.ndarray]:
    """Stream the frames nearest to the times ``j / model_fps`` (``i(j) = floor(j r)``, ``r`` =
    ``source_fps / model_fps``); every frame passes when no resampling is needed."""
    if not needs_resampling(source_fps, model_fps):
        yield from frames
        return
    ratio = source_fps / model_fps
    wanted = 0
    for i, frame in enumerate(frames):
        if i == math.floor(wanted * ratio + 1e-9):
            yield frame
            wanted += 1


def frame_to_resampled(n_source: int, source_fps: float, model_fps: float, n_resampled: int) -> np.ndarray:
    """``[n_source]`` index of the resampled frame whose time is the latest at or before each source
    frame's: ``j(i) = max{j : floor(j r) <= i}`` (identity when no resampling was done)."""
    i = np.arange(n_source)
    if not needs_resampling(source_fps, model_fps):
        return np.minimum(i, max(n_resampled - 1, 0))
    ratio = source_fps / model_fps
    j = np.floor((i + 1 - 1e-9) / ratio).astype(int)   # j with floor(j r) <= i  <=>  j r < i + 1
    j = np.where(np.floor(j * ratio + 1e-9) > i, j - 1, j)
    return np.clip(j, 0, max(n_resampled - 1, 0))
