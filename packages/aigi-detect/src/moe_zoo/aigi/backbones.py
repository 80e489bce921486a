"""Backbones for OmniAID: which pretrained network, how it pools, and which linear maps get experts.

- ``mobilenet_v2`` (default, offline): torchvision MobileNetV2 with ImageNet weights shipped by
  moe-core. Experts on every pointwise (1x1) convolution: each inverted residual block's expansion
  and projection, and the 320->1280 head convolution. Pooled feature: global average of the
  1280-channel map.
- ``timm:<name>`` (e.g. ``timm:vit_large_patch14_clip_336``): a timm ViT; experts on the attention
  maps (fused ``qkv`` and ``proj``); pooled feature: the model's pooled output (``num_classes=0``).
- ``hf-clip``: a transformers ``CLIPVisionModel`` (the paper's CLIP ViT-L/14); experts on
  ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``; pooled feature: ``pooler_output`` (post-LN CLS).

``weights`` is a local path (timm: a checkpoint file; hf-clip: a ``from_pretrained`` folder);
empty means ImageNet weights for MobileNetV2 and a random init (seeded) for the others, which
the tests use with tiny configs given as JSON ``options``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from moe_zoo.core import InputError
from moe_zoo.core.backbones import IMAGENET_MEAN, IMAGENET_STD, load_mobilenet_v2

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class Backbone:
    """A frozen pretrained network, its pooling and the rule choosing the maps that get experts."""

    network: nn.Module
    pool: Callable[[nn.Module, Tensor], Tensor]     # (network, normalised images) -> [B, dim]
    select: Callable[[str, nn.Module], bool]        # (module name, module) -> adapt it?
    dim: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def _freeze(module: nn.Module) -> nn.Module:
    module.eval()
    for param in module.parameters():
        param.requires_grad_(False)
    return module


def _pool_mobilenet(network: nn.Module, x: Tensor) -> Tensor:
    return network(x).mean(dim=(2, 3))


def _pointwise(_name: str, module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.groups == 1


def _mobilenet(weights: str, options: dict) -> Backbone:
    if weights or options:
        raise InputError("the mobilenet_v2 backbone takes no weights path or options (ImageNet weights ship with "
                         "moe-zoo-core; set $MOE_ZOO_MOBILENET_V2 to use another state dict)")
    return Backbone(load_mobilenet_v2(trunk_only=True, frozen=True), _pool_mobilenet, _pointwise, 1280,
                    IMAGENET_MEAN, IMAGENET_STD)


def _timm(name: str, weights: str, options: dict) -> Backbone:
    import timm

    try:
        network = timm.create_model(name, pretrained=False, num_classes=0, **options)
    except (RuntimeError, TypeError, ValueError) as err:
        raise InputError(f"timm cannot build {name!r} with options {options}: {err}") from None
    if weights:
        from timm.models import load_checkpoint

        load_checkpoint(network, _existing(weights), strict=False, weights_only=True)
    config = network.pretrained_cfg or {}
    return Backbone(_freeze(network), lambda net, x: net(x),
                    lambda n, m: isinstance(m, nn.Linear) and ".attn." in f".{n}",
                    network.num_features, tuple(config.get("mean", CLIP_MEAN)), tuple(config.get("std", CLIP_STD)))


def _hf_clip(weights: str, options: dict) -> Backbone:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    if weights:
        network = CLIPVisionModel.from_pretrained(_existing(weights), **options)
    else:
        network = CLIPVisionModel(CLIPVisionConfig(**options))
    return Backbone(_freeze(network), lambda net, x: net(pixel_values=x).pooler_output,
                    lambda n, m: isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] in ("q_proj", "k_proj", "v_proj",
                                                                                         "out_proj"),
                    network.config.hidden_size, CLIP_MEAN, CLIP_STD)


def _existing(path: str) -> str:
    if not Path(path).exists():
        raise InputError(f"backbone weights {path!r} do not exist")
    return path


def build_backbone(spec: str, weights: str = "", options: str = "{}", seed: int = 0) -> Backbone:
    """The frozen backbone named by ``spec`` (see the module docstring). Random inits use ``seed``,
    so a model rebuilt from its config gets the same frozen weights."""
    try:
        kwargs = json.loads(options or "{}")
    except json.JSONDecodeError as err:
        raise InputError(f"backbone options must be a JSON object, got {options!r}: {err}") from None
    if not isinstance(kwargs, dict):
        raise InputError(f"backbone options must be a JSON object, got {options!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if spec == "mobilenet_v2":
            return _mobilenet(weights, kwargs)
        if spec.startswith("timm:"):
            return _timm(spec.removeprefix("timm:"), weights, kwargs)
        if spec == "hf-clip":
            return _hf_clip(weights, kwargs)
    raise InputError(f"unknown backbone {spec!r}: expected 'mobilenet_v2', 'timm:<model name>' or 'hf-clip'")


def adapted_copy(backbone: Backbone) -> nn.Module:
    """A deep copy of the frozen network (the SVD experts replace maps in the copy)."""
    return copy.deepcopy(backbone.network)
