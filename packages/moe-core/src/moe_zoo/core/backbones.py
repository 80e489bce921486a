"""Pretrained backbones shipped with moe-core, shared by the domain packages.

MobileNetV2 with torchvision's ImageNet-1k weights (``MobileNet_V2_Weights.IMAGENET1K_V1``), shipped
as ``weights/mobilenet_v2-b0353104.safetensors`` (converted unchanged from torchvision's ``.pth`` by
``scripts/convert_mobilenet_weights.py``; licence and provenance in ``weights/LICENSE-mobilenet_v2.txt``).
vad (snippet features), aigi (the OmniAID backbone) and driving (camera encoder) load it from here,
so one copy ships. torchvision is imported only when a model is built (the packages that call these
functions depend on it).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from moe_zoo.core.errors import InputError

MOBILENET_V2_ENV = "MOE_ZOO_MOBILENET_V2"
MOBILENET_V2_FILE = "mobilenet_v2-b0353104.safetensors"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def mobilenet_v2_weights_path() -> Path:
    """The MobileNetV2 ImageNet state dict (safetensors): ``$MOE_ZOO_MOBILENET_V2`` or the shipped file."""
    override = os.environ.get(MOBILENET_V2_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise InputError(f"${MOBILENET_V2_ENV} points to {path}, which is not a file")
        return path
    path = Path(__file__).parent / "weights" / MOBILENET_V2_FILE
    if not path.is_file():
        raise InputError(f"MobileNetV2 ImageNet weights missing: {path} is not in this moe-zoo-core install "
                         f"(reinstall it, or set ${MOBILENET_V2_ENV} to a safetensors state dict)")
    return path


def load_mobilenet_v2(device: torch.device | str = "cpu", *, trunk_only: bool = True,
                      frozen: bool = True) -> torch.nn.Module:
    """torchvision MobileNetV2 with ImageNet weights, loaded from safetensors (no code runs on load).

    ``trunk_only``: the convolutional feature trunk ``model.features`` (``[B, 3, H, W] -> [B, 1280,
    H/32, W/32]``) instead of the whole classifier. ``frozen``: eval mode, no gradients."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from torchvision.models import mobilenet_v2

    path = mobilenet_v2_weights_path()
    model = mobilenet_v2()
    try:
        model.load_state_dict(load_file(path))
    except (SafetensorError, RuntimeError) as err:
        raise InputError(f"{path} is not a MobileNetV2 state dict in safetensors format: {err}") from None
    module = (model.features if trunk_only else model).to(device)
    if frozen:
        module.eval()
        for param in module.parameters():
            param.requires_grad_(False)
    return module


def imagenet_normalize(images: torch.Tensor) -> torch.Tensor:
    """``float [B, 3, H, W]`` in [0, 1] -> ImageNet-normalised input of the backbones above."""
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std
