"""DriftMoE's router training signal: the multi-hot correctness mask and its BCE loss.

Both variants share one definition. Every expert ``e`` answers its *own* question with a
probability vector ``P_e`` over ``K`` answers and has a target answer ``t_e``:

- MoE-Data: ``P_e`` is the expert's class distribution over the ``C`` known classes and
  ``t_e = y`` for every expert;
- MoE-Task: expert ``e`` is the one-vs-rest tree of class ``e``, ``P_e = (1 - s_e, s_e)`` with
  ``s_e = P_e(y = e | x)`` and ``t_e = 1[y = e]``.
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from moe_zoo.core import InputError


def correctness_mask(probs: np.ndarray, targets: np.ndarray, abstain: np.ndarray | None = None) -> np.ndarray:
    """The multi-hot target of the router for one instance (paper, Sec. "router training").

    ``m_e = 1[argmax_k P_e[k] = t_e]`` for every expert that gave a prediction; if no expert
    is correct, ``m_{e*} = 1`` for ``e* = argmax_e P_e[t_e]`` (the expert closest to right),
    so every instance reinforces at least one expert. Experts that have not learned anything
    yet (``abstain``) make no prediction and are never marked correct by the first rule.

    ``probs`` ``[E, K]``, ``targets`` ``[E]`` (ints in ``[0, K)``), ``abstain`` ``[E]`` bool.
    Ties in an argmax go to the lowest index. Returns float32 ``[E]`` in ``{0, 1}``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    if probs.ndim != 2 or targets.shape != (probs.shape[0],):
        raise InputError(f"correctness_mask: expected probs [E, K] and targets [E], got {probs.shape} and {targets.shape}")
    if probs.shape[0] == 0 or probs.shape[1] == 0:
        raise InputError("correctness_mask: need at least one expert and one answer")
    if targets.min() < 0 or targets.max() >= probs.shape[1]:
        raise InputError(f"correctness_mask: targets must lie in [0, {probs.shape[1]}), got {targets.tolist()}")
    mask = probs.argmax(axis=1) == targets
    if abstain is not None:
        mask &= ~np.asarray(abstain, dtype=bool)
    if not mask.any():
        mask[int(np.argmax(probs[np.arange(len(targets)), targets]))] = True
    return mask.astype(np.float32)


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


__all__ = ["correctness_mask", "router_loss"]
