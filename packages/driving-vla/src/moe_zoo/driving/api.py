"""High-level entry points: ``load`` a model, wrap it as a policy."""

from __future__ import annotations

from pathlib import Path

import torch

from moe_zoo.core import InputError, create_model, load_model


def load(model: str | Path = "drivemoe", *, device: str = "cpu") -> torch.nn.Module:
    """A trained model: a registry name with shipped weights (default ``drivemoe``) or a checkpoint path."""
    text = str(model)
    if text.endswith(".safetensors") or Path(text).is_file():
        return load_model(text, device=device).eval()
    return create_model(text, pretrained=True).to(device).eval()


def as_policy(model, *, euler_steps: int = 10, seed: int = 0, device: str = "cpu"):
    """A :class:`~moe_zoo.driving.policy.DrivingPolicy` from a model, a registry name or a checkpoint path."""
    from moe_zoo.driving.policy import DrivingPolicy

    if isinstance(model, DrivingPolicy):
        return model
    if isinstance(model, (str, Path)):
        model = load(model, device=device)
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"expected a model, a registry name or a checkpoint path, got {type(model).__name__}")
    return DrivingPolicy(model, euler_steps=euler_steps, seed=seed, device=device)
