"""Loading a trained field: the shipped Switch-NeRF++ weights for the built-in scene, or a checkpoint."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from moe_zoo.core import create_model, load_model


def load(path: str | Path | None = None, *, device: str = "cpu") -> nn.Module:
    """A checkpoint written by :func:`moe_zoo.nerf.train` (default: the shipped built-in-scene weights)."""
    model = create_model("switch-nerf-pp", pretrained=True) if path is None else load_model(path)
    return model.to(device).eval()
