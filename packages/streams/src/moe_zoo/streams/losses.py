"""DriftMoE's router training signal: the multi-hot correctness mask and its BCE loss.

- MoE-Data (:func:`correctness_mask`): ``m_e = 1`` for every expert whose predicted class is the
  label, or, if none is, for the expert that gave the label the highest probability;
- MoE-Task (:func:`task_mask`): expert ``c`` is the one-vs-rest tree of class ``c``; the only
  expert that can be right about ``(x, y)`` is the label's own, so ``m = onehot(y)`` (the
  reference code's "true positive, else the label's expert" rule, which always gives this);
- both train the router with :func:`router_loss`, the mean BCE of its logits against ``m``.
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from moe_zoo.core import InputError


def correctness_mask(probs: np.ndarray, y: int, abstain: np.ndarray | None = None) -> np.ndarray:
    """MoE-Data's multi-hot router target for one instance (paper, "router training").

    ``m_e = 1[argmax_k P_e[k] = y]`` for every expert that gave a prediction; if no expert is
    correct, ``m_{e*} = 1`` for ``e* = argmax_e P_e[y]`` (the expert closest to right), so every
    instance reinforces at least one expert. Experts that have not learned anything yet
    (``abstain``) make no prediction and are never marked correct by the first rule.

    ``probs`` ``[E, C]`` class distributions, ``y`` the label's index in ``[0, C)``, ``abstain``
    ``[E]`` bool. Ties in an argmax go to the lowest index. Returns float32 ``[E]`` in ``{0, 1}``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] == 0:
        raise InputError(f"correctness_mask: expected probs [E, C] with E, C >= 1, got {probs.shape}")
    if not 0 <= y < probs.shape[1]:
        raise InputError(f"correctness_mask: y must lie in [0, {probs.shape[1]}), got {y}")
    mask = probs.argmax(axis=1) == y
    if abstain is not None:
        mask &= ~np.asarray(abstain, dtype=bool)
    if not mask.any():
        mask[int(np.argmax(probs[:, y]))] = True
    return mask.astype(np.float32)


def task_mask(n_experts: int, y: int) -> np.ndarray:
    """MoE-Task's router target: ``m_c = 1[c = y]`` over the ``n_experts`` one-vs-rest experts."""
    if not 0 <= y < n_experts:
        raise InputError(f"task_mask: y must lie in [0, {n_experts}), got {y}")
    mask = np.zeros(n_experts, dtype=np.float32)
    mask[y] = 1.0
    return mask


def router_loss(logits: Tensor, mask: Tensor, active: Tensor | None = None) -> Tensor:
    """Mean binary cross-entropy of the router logits against the correctness masks.

    ``L = 1/|A| * sum_{(b,e) in A} -[m_be log sigma(z_be) + (1 - m_be) log(1 - sigma(z_be))]``

    over a mini-batch of ``B`` instances (``logits``/``mask`` ``[B, E]``). ``A`` is every entry
    (the paper's ``BCEWithLogitsLoss`` with mean reduction), or the entries where ``active`` is
    1 (MoE-Task: experts of classes that did not exist yet when the instance arrived).
    """
    if logits.shape != mask.shape:
        raise InputError(f"router_loss: logits {tuple(logits.shape)} and mask {tuple(mask.shape)} differ")
    if active is None:
        return F.binary_cross_entropy_with_logits(logits, mask)
    total = F.binary_cross_entropy_with_logits(logits, mask, weight=active, reduction="sum")
    return total / active.sum().clamp_min(1.0)


__all__ = ["correctness_mask", "router_loss", "task_mask"]
