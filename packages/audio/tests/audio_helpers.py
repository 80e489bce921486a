"""Tiny shapes shared by the audio tests (imported by name: conftest puts this folder on sys.path)."""

import numpy as np

from moe_zoo.audio.codec import CodecConfig
from moe_zoo.audio.model import UniMoEAudioConfig

TINY_CODEC = CodecConfig(n_fft=256, hop=80, synthesis_hop=40, n_mels=16, n_codebooks=2, codebook_size=16, griffin_lim_iters=4)
TINY = UniMoEAudioConfig(n_codebooks=2, codebook_size=16, delays=(0, 1), d_model=32, n_layers=2, n_heads=2,
                         max_len=96, expert_hidden=8, dense_hidden=32, dropout=0.0, codec=TINY_CODEC)


def tone(freq: float, seconds: float = 0.3, sr: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
