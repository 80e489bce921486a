"""Baseline detectors for the benchmark, trained on the same images as OmniAID.

- CNNSpot-style (Wang et al. 2020): the ImageNet CNN fine-tuned end to end (here the same
  MobileNetV2, all weights; batch norm statistics kept) with a new 2-way head.
- UnivFD-style (Ojha et al. 2023): the frozen pretrained backbone's pooled feature and a linear
  probe (logistic regression).
- NPR-style (Tan et al. 2024): the neighbouring-pixel residual ``x - up(down(x))`` (nearest, factor
  2) fed to a small CNN trained from scratch.

The single-adapter and no-artifact-expert baselines are :class:`~moe_zoo.aigi.model.OmniAID`
variants (``domains=()`` / ``artifact_expert=False``) trained by :func:`~moe_zoo.aigi.train.train`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moe_zoo.aigi.data import ImageSet
from moe_zoo.aigi.images import to_tensor
from moe_zoo.aigi.losses import classification_loss
from moe_zoo.aigi.train import balanced_epoch
from moe_zoo.core.backbones import imagenet_normalize, load_mobilenet_v2


class CNNSpot(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.trunk = load_mobilenet_v2(trunk_only=True, frozen=False)
        self.head = nn.Linear(1280, 2)

    def train(self, mode: bool = True) -> CNNSpot:
        super().train(mode)
        self.trunk.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(imagenet_normalize(x)).mean(dim=(2, 3)))


def npr(x: Tensor) -> Tensor:
    """NPR: ``x - up_2(down_2(x))`` with nearest-neighbour resampling (H, W even)."""
    return x - F.interpolate(F.interpolate(x, scale_factor=0.5, mode="nearest"), scale_factor=2.0, mode="nearest")


class NPRDetector(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                       nn.Conv2d(c_out, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(npr(x) * 4.0).mean(dim=(2, 3)))


def fit_classifier(module: nn.Module, params, data: ImageSet, *, images: int, size: int, lr: float,
                   batch_size: int = 32, seed: int = 0) -> nn.Module:
    """Train ``module`` (images in [0, 1] -> logits) with ``CE_ls`` on class-balanced batches until
    it has seen ``images`` images."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(list(params), lr=lr, weight_decay=0.0)
    module.train()
    seen = 0
    while seen < images:
        order = balanced_epoch(data.labels, 0, rng)
        for start in range(0, len(order), batch_size):
            x, y, _ = data.tensors(order[start:start + batch_size], size)
            loss = classification_loss(module(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(y)
            if seen >= images:
                break
    return module.eval()


@torch.no_grad()
def classifier_scores(module: nn.Module, images: np.ndarray, size: int, batch_size: int = 128) -> np.ndarray:
    out = [module(to_tensor(images[i:i + batch_size], size)).softmax(-1)[:, 1] for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy()


class UnivFD:
    """Frozen MobileNetV2 pooled features + logistic regression."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.trunk = load_mobilenet_v2(trunk_only=True, frozen=True)
        self.probe = None

    @torch.no_grad()
    def features(self, images: np.ndarray) -> np.ndarray:
        return torch.cat([self.trunk(imagenet_normalize(to_tensor(images[i:i + 128], self.size))).mean(dim=(2, 3))
                          for i in range(0, len(images), 128)]).numpy()

    def fit(self, data: ImageSet, seed: int = 0) -> UnivFD:
        from sklearn.linear_model import LogisticRegression

        self.probe = LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed)
        self.probe.fit(self.features(data.images), data.labels)
        return self

    def scores(self, images: np.ndarray) -> np.ndarray:
        return self.probe.predict_proba(self.features(images))[:, 1]
