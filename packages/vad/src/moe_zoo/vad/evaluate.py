"""Evaluate a trained detector on a feature set with the frame-level protocol."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from moe_zoo.core import resolve_device
from moe_zoo.vad.data import FeatureSet, expand_to_frames
from moe_zoo.vad.metrics import frame_metrics
from moe_zoo.vad.train import snippet_scores


def frame_scores(model: nn.Module, data: FeatureSet, *, variant: str = "gsmoe",
                 device: str | torch.device | None = None) -> list[np.ndarray]:
    """Per-video frame scores: snippet scores repeated ``snippet_len`` times, cut to the labels' length."""
    device = resolve_device(device)
    out = []
    for video in data:
        scores = snippet_scores(model, video.load(), variant=variant, device=device)
        n_frames = len(video.frame_labels) if video.frame_labels is not None else None
        out.append(expand_to_frames(scores, data.snippet_len, n_frames))
    return out


def evaluate(model: nn.Module | None = None, data: FeatureSet | None = None, *, variant: str = "gsmoe",
             device: str | torch.device | None = None) -> dict[str, float]:
    """Frame AUC, AP, AUC on anomalous videos and per-class AUC (:func:`~moe_zoo.vad.metrics.frame_metrics`).

    Defaults: the shipped model and the built-in test split."""
    if model is None:
        from moe_zoo.vad.predict import load_default_model

        model = load_default_model(device)
    if data is None:
        from moe_zoo.vad.builtin import load_builtin

        data = load_builtin("test")
    return frame_metrics(frame_scores(model, data, variant=variant, device=device), data.videos)
