"""Reading and writing audio with soundfile (torchaudio's I/O needs FFmpeg here), with clear errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from moe_zoo.core import InputError

SAMPLE_RATE = 16_000


def resample(audio: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    if sr_from == sr_to:
        return audio.astype(np.float32)
    g = math.gcd(sr_from, sr_to)
    return resample_poly(audio, sr_to // g, sr_from // g).astype(np.float32)


def read_audio(path: str | Path, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 audio at ``sr``; an :class:`InputError` for a missing, corrupt, empty or
    non-finite file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"audio file not found: {path}")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as error:
        raise InputError(f"audio file {path} is corrupt or not a readable audio format: {error}") from None
    if data.shape[0] == 0:
        raise InputError(f"audio file {path} is empty (0 samples)")
    mono = data.mean(axis=1)
    if not np.isfinite(mono).all():
        raise InputError(f"audio file {path} holds NaN or infinite samples")
    return resample(mono, int(file_sr), sr)


def write_audio(path: str | Path, audio: np.ndarray, sr: int = SAMPLE_RATE) -> Path:
    """16-bit PCM wav (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0), sr, subtype="PCM_16")
    return path
