"""When a clip is out of the model's scope: warnings instead of silently confident scores.

:class:`FeatureStats` keeps the per-dimension mean ``mu`` and spread ``sigma`` of the training
snippet features and the training distribution of the distance
``d(x) = (1/D) sum_i ((x_i - mu_i) / sigma_i)^2`` (its 99th percentile is the limit). A clip whose
median snippet distance exceeds the limit is "far from the training data". :func:`input_warnings`
adds the checks that need no model: shorter than one snippet, a single frame (still image),
no change between frames, a file that decoded only partly, frames too small to carry information,
and a frame rate below the model's.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

MIN_SIDE = 32          # frames with a shorter side than this (pixels) carry too little to score
SPREAD_FLOOR = 1e-3    # sigma_i >= this (constant training dimensions)
LIMIT_QUANTILE = 0.99


class FeatureStats(nn.Module):
    """Training feature statistics (buffers, so they travel in the safetensors checkpoint)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("limit", torch.tensor(float("inf")))   # inf: never fitted

    @property
    def fitted(self) -> bool:
        return bool(torch.isfinite(self.limit))

    @torch.no_grad()
    def fit(self, features: Tensor) -> FeatureStats:
        """``features`` ``[..., D]`` of the training snippets."""
        x = features.reshape(-1, features.shape[-1]).float()
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp_min(SPREAD_FLOOR))
        self.limit.copy_(torch.quantile(self.distance(x), LIMIT_QUANTILE))
        return self

    @torch.no_grad()
    def distance(self, features: Tensor) -> Tensor:
        """``d(x) = mean_i ((x_i - mu_i) / sigma_i)^2`` per snippet, ``[..., D] -> [...]``."""
        z = (features.float() - self.mean) / self.std
        return (z * z).mean(-1)


def out_of_distribution(stats: FeatureStats | None, features: np.ndarray) -> str | None:
    """A warning when the clip's median snippet distance is above the training limit."""
    if stats is None or not stats.fitted or len(features) == 0:
        return None
    distance = float(stats.distance(torch.as_tensor(features, device=stats.mean.device)).median())
    limit = float(stats.limit)
    if distance <= limit:
        return None
    return (f"features far from the training data (median distance {distance:.2f}, training 99th percentile "
            f"{limit:.2f}): scores on this footage are unreliable; calibrate on normal footage of this camera")


def input_warnings(*, n_frames: int, n_used: int, snippet_len: int, model_fps: float, source_fps: float,
                   height: int, width: int, still: bool, partial: str | None) -> list[str]:
    """Warnings about the input itself (no model needed). ``n_used``: frames after resampling;
    ``still``: no pixel changed between consecutive frames; ``partial``: why decoding stopped early."""
    warnings = []
    seconds = snippet_len / model_fps
    if n_frames == 1:
        warnings.append("a single frame (a still image, not a video): there is no motion to score")
    elif still:
        warnings.append(f"no pixel changes in {n_frames} frames (a still image or a frozen feed)")
    if n_used < snippet_len:
        warnings.append(f"clip shorter than one snippet ({n_used} frames at {model_fps:g} fps < {snippet_len} "
                        f"frames = {seconds:g} s): it was padded with mirrored frames")
    if partial:
        warnings.append(f"the file decoded only partly ({partial}): scores cover the decoded frames only")
    if min(height, width) < MIN_SIDE:
        warnings.append(f"frames are {width}x{height} pixels, too small to carry information "
                        f"(need at least {MIN_SIDE} on the shorter side)")
    if source_fps < model_fps * 0.95:
        warnings.append(f"frame rate {source_fps:g} fps is below the model's {model_fps:g} fps; frames were not "
                        f"upsampled, so each snippet spans {snippet_len / source_fps:.2f} s instead of {seconds:g} s")
    return warnings
