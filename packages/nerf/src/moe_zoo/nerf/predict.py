"""Loading a trained field: the shipped Switch-NeRF++ weights for the built-in scene, or a checkpoint."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from torch import nn

from moe_zoo.core import CheckpointMismatchError, load_checkpoint
from moe_zoo.core.checkpoint import build_from_checkpoint
from moe_zoo.nerf.model import MODELS, SHIPPED_WEIGHTS, build_model


def load(path: str | Path | None = None, *, device: str = "cpu") -> nn.Module:
    """A checkpoint written by :func:`moe_zoo.nerf.training` (default: the shipped built-in-scene weights).

    Built from the checkpoint's registry name and config under moe-core's allocation guard, then
    its tensors loaded (nothing unpickled).
    """
    path = Path(files("moe_zoo.nerf").joinpath(SHIPPED_WEIGHTS)) if path is None else Path(path)
    checkpoint = load_checkpoint(path)
    if checkpoint.model_name not in MODELS:
        raise CheckpointMismatchError(f"{path} holds {checkpoint.model_name!r}, not one of {sorted(MODELS)}")
    config = type(MODELS[checkpoint.model_name][1]).from_dict(checkpoint.config or {})
    model = build_from_checkpoint(lambda: build_model(checkpoint.model_name, config), checkpoint, source=str(path))
    return model.to(device).eval()
