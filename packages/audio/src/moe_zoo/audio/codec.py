"""Audio tokens: a residual-VQ codec over log-mel frames trained here, and a wrapper for a user's
pretrained neural codec (transformers' EnCodec / DAC).

``MelRVQCodec``: ``x -> log-mel frames m_t`` (80 bands, 40 ms hop at 16 kHz: 25 frames/s); ``K``
codebooks by residual k-means: ``c_1 = argmin_j ||m_t - C_1[j]||``, ``r_1 = m_t - C_1[c_1]``, ``c_k``
on the residual ``r_{k-1}``; decoding sums the chosen centroids, interpolates the log-mel frames
linearly in time to the synthesis hop (20 ms; Griffin-Lim needs the window overlap), maps mel
magnitudes to a linear spectrogram with the filterbank's pseudo-inverse (clamped at 0) and runs
Griffin-Lim.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from torch import Tensor, nn

from moe_zoo.audio.audio_io import SAMPLE_RATE
from moe_zoo.core import Config, InputError
from moe_zoo.core.runtime import get_logger

_log = get_logger(__name__)


@dataclass(frozen=True)
class CodecConfig(Config):
    sample_rate: int = SAMPLE_RATE
    n_fft: int = 1024
    hop: int = 640
    synthesis_hop: int = 320
    n_mels: int = 80
    n_codebooks: int = 4
    codebook_size: int = 256
    griffin_lim_iters: int = 48

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def __post_init__(self) -> None:
        if self.hop % self.synthesis_hop:
            raise InputError(f"CodecConfig: hop {self.hop} is not a multiple of synthesis_hop {self.synthesis_hop}")


class MelRVQCodec(nn.Module):
    """Residual VQ of log-mel frames; ``encode(wave) -> [K, T]`` codes, ``decode(codes) -> wave``."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("codebooks", torch.zeros(config.n_codebooks, config.codebook_size, config.n_mels))
        self.mel = torchaudio.transforms.MelSpectrogram(config.sample_rate, n_fft=config.n_fft, hop_length=config.hop,
                                                        n_mels=config.n_mels, power=1.0)
        fb = self.mel.mel_scale.fb  # [n_freq, n_mels]
        self.register_buffer("inverse_fb", torch.linalg.pinv(fb), persistent=False)  # [n_mels, n_freq]
        self.griffin_lim = torchaudio.transforms.GriffinLim(n_fft=config.n_fft, hop_length=config.synthesis_hop, power=1.0,
                                                            n_iter=config.griffin_lim_iters)

    def log_mel(self, wave: Tensor | np.ndarray) -> Tensor:
        """``[T, n_mels]`` log-mel frames of a mono wave ``[N]``."""
        wave = torch.as_tensor(np.asarray(wave, dtype=np.float32) if isinstance(wave, np.ndarray) else wave)
        if wave.ndim != 1 or wave.numel() < self.config.hop:
            raise InputError(f"codec: expected a mono wave of at least {self.config.hop} samples, got shape {tuple(wave.shape)}")
        with torch.no_grad():
            return self.mel(wave.float()).clamp_min(1e-5).log().T

    @torch.no_grad()
    def fit(self, waves: list[np.ndarray], *, iters: int = 15, seed: int = 0, max_frames: int = 60_000) -> MelRVQCodec:
        """Residual k-means on the log-mel frames of ``waves``."""
        frames = torch.cat([self.log_mel(w) for w in waves])
        generator = torch.Generator().manual_seed(seed)
        if frames.shape[0] > max_frames:
            frames = frames[torch.randperm(frames.shape[0], generator=generator)[:max_frames]]
        residual = frames.clone()
        for k in range(self.config.n_codebooks):
            centroids = _kmeans(residual, self.config.codebook_size, iters, generator)
            self.codebooks[k] = centroids
            residual = residual - centroids[_nearest(residual, centroids)]
            _log.info("codec: codebook %d, residual rms %.3f", k, residual.pow(2).mean().sqrt().item())
        return self

    @torch.no_grad()
    def encode(self, wave: Tensor | np.ndarray) -> Tensor:
        """``[K, T]`` long codes of a mono wave."""
        residual = self.log_mel(wave)
        codes = []
        for k in range(self.config.n_codebooks):
            idx = _nearest(residual, self.codebooks[k])
            codes.append(idx)
            residual = residual - self.codebooks[k][idx]
        return torch.stack(codes)

    @torch.no_grad()
    def codes_to_log_mel(self, codes: Tensor) -> Tensor:
        self._check_codes(codes)
        return sum(self.codebooks[k][codes[k]] for k in range(codes.shape[0]))

    @torch.no_grad()
    def decode(self, codes: Tensor) -> np.ndarray:
        """Mono float32 wave from ``[K, T]`` codes (Griffin-Lim)."""
        return self.log_mel_to_wave(self.codes_to_log_mel(codes))

    @torch.no_grad()
    def log_mel_to_wave(self, log_mel: Tensor) -> np.ndarray:
        """Griffin-Lim of ``[T, n_mels]`` log-mel frames at ``hop``, first interpolated linearly to
        ``synthesis_hop`` (frame ``j`` of the finer grid sits at coarse time ``j / factor``)."""
        factor = self.config.hop // self.config.synthesis_hop
        if factor > 1:
            log_mel = F.interpolate(log_mel.T[None], scale_factor=factor, mode="linear", align_corners=False)[0].T
        mel = log_mel.exp().T  # [n_mels, T * factor]
        linear = (self.inverse_fb.T @ mel).clamp_min(0.0)  # [n_freq, T]
        wave = self.griffin_lim(linear)
        peak = wave.abs().max().clamp_min(1e-6)
        return (wave * min(1.0, 0.95 / float(peak))).numpy().astype(np.float32)

    def _check_codes(self, codes: Tensor) -> None:
        c = self.config
        if codes.ndim != 2 or codes.shape[0] != c.n_codebooks:
            raise InputError(f"codec: expected codes [{c.n_codebooks}, T], got shape {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= c.codebook_size):
            raise InputError(f"codec: codes must be in [0, {c.codebook_size}), got {int(codes.min())}..{int(codes.max())}")


def _nearest(x: Tensor, centroids: Tensor) -> Tensor:
    """Index of the nearest centroid of each row: ``argmin_j ||x - c_j||^2``."""
    d = (centroids * centroids).sum(-1)[None, :] - 2.0 * x @ centroids.T
    return d.argmin(-1)


def _kmeans(x: Tensor, k: int, iters: int, generator: torch.Generator) -> Tensor:
    """Lloyd's k-means with k-means++-style seeding by random rows; empty clusters re-seeded."""
    if x.shape[0] >= k:
        centroids = x[torch.randperm(x.shape[0], generator=generator)[:k]].clone()
    else:  # fewer frames than codes (a tiny data set): repeat rows with a little noise
        rows = torch.randint(0, x.shape[0], (k,), generator=generator)
        centroids = x[rows] + 1e-3 * torch.randn(k, x.shape[1], generator=generator)
    for _ in range(iters):
        assign = _nearest(x, centroids)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).float()
        empty = counts == 0
        centroids = torch.where(empty[:, None], centroids, sums / counts.clamp_min(1)[:, None])
        if empty.any():
            centroids[empty] = x[torch.randint(0, x.shape[0], (int(empty.sum()),), generator=generator)]
    return centroids


class NeuralCodec:
    """A user's pretrained neural codec through transformers (``EncodecModel`` or ``DacModel``):
    ``encode(wave) -> [K, T]``, ``decode(codes) -> wave``. ``NeuralCodec.from_pretrained(path)``
    loads local weights only."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model.eval()
        self.kind = type(model).__name__
        if self.kind not in ("EncodecModel", "DacModel"):
            raise InputError(f"NeuralCodec supports EncodecModel or DacModel, got {self.kind}")
        self.sample_rate = int(model.config.sampling_rate)

    @classmethod
    def from_pretrained(cls, path: str) -> NeuralCodec:
        import transformers

        config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
        model_cls = {"encodec": transformers.EncodecModel, "dac": transformers.DacModel}.get(config.model_type)
        if model_cls is None:
            raise InputError(f"{path}: model_type {config.model_type!r} is not an EnCodec or DAC codec")
        return cls(model_cls.from_pretrained(path, local_files_only=True))

    @torch.no_grad()
    def encode(self, wave: np.ndarray | Tensor) -> Tensor:
        x = torch.as_tensor(np.asarray(wave, dtype=np.float32)).reshape(1, 1, -1)
        if self.kind == "EncodecModel":
            return self.model.encode(x).audio_codes[0, 0]  # [K, T]
        return self.model.encode(x).audio_codes[0]  # [K, T]

    @torch.no_grad()
    def decode(self, codes: Tensor) -> np.ndarray:
        if self.kind == "EncodecModel":
            out = self.model.decode(codes[None, None], [None]).audio_values
        else:
            out = self.model.decode(audio_codes=codes[None]).audio_values
        return out.reshape(-1).numpy().astype(np.float32)
