"""The multi-task objective: one loss per task, summed (HoME and MMoE train on the plain sum).

``L = sum_t L_t`` with, over the rows whose label for ``t`` is present (NaN = missing),
``L_t = -mean(y log sigmoid(z) + (1 - y) log(1 - sigmoid(z)))`` for binary tasks (HoME eq. 1's
cross-entropy) and ``L_t = mean((z - y)^2)`` for regression tasks (the MMoE synthetic tasks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def task_losses(outputs: Tensor, labels: Tensor, binary: Tensor) -> Tensor:
    """Per-task losses ``[K]``: ``outputs``/``labels`` ``[N, K]``, ``binary`` a bool mask ``[K]``."""
    present = ~torch.isnan(labels)
    target = torch.where(present, labels, torch.zeros_like(labels))
    bce = F.binary_cross_entropy_with_logits(outputs, target, reduction="none")
    mse = (outputs - target).square()
    per_row = torch.where(binary, bce, mse) * present
    return per_row.sum(0) / present.sum(0).clamp_min(1)


def multitask_loss(outputs: Tensor, labels: Tensor, binary: Tensor, weights: Tensor | None = None) -> Tensor:
    """``sum_t w_t L_t`` (``w_t = 1`` by default)."""
    losses = task_losses(outputs, labels, binary)
    return (losses if weights is None else losses * weights).sum()


def to_predictions(outputs: Tensor, binary: Tensor) -> Tensor:
    """Probabilities ``sigmoid(z)`` for binary tasks, the raw value for regression tasks."""
    return torch.where(binary, torch.sigmoid(outputs), outputs)
