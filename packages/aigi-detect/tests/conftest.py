"""Shared fixtures: one torch thread (fast and deterministic on the shared 2-core machine), no hub."""

from __future__ import annotations

import json
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)

TINY_CLIP = json.dumps({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                        "num_attention_heads": 4, "image_size": 16, "patch_size": 4})
TINY_VIT = json.dumps({"img_size": 16, "patch_size": 4, "embed_dim": 32, "depth": 2, "num_heads": 4})


@pytest.fixture
def tiny_clip_config():
    from moe_zoo.aigi.model import OmniAIDConfig

    return OmniAIDConfig(backbone="hf-clip", backbone_options=TINY_CLIP, image_size=16, rank=2)


@pytest.fixture
def tiny_vit_config():
    from moe_zoo.aigi.model import OmniAIDConfig

    return OmniAIDConfig(backbone="timm:vit_tiny_patch16_224", backbone_options=TINY_VIT, image_size=16, rank=2)
