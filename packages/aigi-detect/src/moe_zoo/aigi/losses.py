"""OmniAID's training losses (official ``get_losses``), each with its formula.

``L = CE_ls(logits, y) + lambda_orth L_orth + lambda_bal L_bal + lambda_gcls CE(router logits, d)``

- ``CE_ls``: cross-entropy with label smoothing 0.1 on real (0) / fake (1);
- ``L_orth`` (stage 1 only): the mean over adapted layers of the targeted orthogonality term of
  :meth:`~moe_zoo.aigi.svd.SVDExpertLinear.targeted_orthogonal_loss`;
- ``L_bal`` (stage 2): ``N sum_i f_i P_i`` over the N semantic experts (moe-core
  ``load_balancing_loss``: ``f_i`` the fraction of images whose top-k includes ``i``, ``P_i`` the
  mean router probability);
- router CE (stage 2): cross-entropy of the router logits against the image's semantic domain
  (images without a domain label, ``d < 0``, are left out).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from moe_zoo.aigi.model import DetectorOutput, OmniAID
from moe_zoo.core import load_balancing_loss


def classification_loss(logits: Tensor, labels: Tensor, smoothing: float = 0.1) -> Tensor:
    """``CE_ls = -sum_c q_c log softmax(logits)_c`` with ``q = (1 - s) onehot(y) + s / 2``."""
    return F.cross_entropy(logits, labels, label_smoothing=smoothing)


def orthogonality_loss(model: OmniAID, active: int) -> Tensor:
    """Stage-1 ``L_orth``: mean over the adapted layers of the active expert's targeted term."""
    terms = [layer.targeted_orthogonal_loss(active, model.config.artifact_index) for layer in model.svd_layers]
    return torch.stack(terms).mean()


def router_loss(output: DetectorOutput, domains: Tensor) -> Tensor:
    """``CE(router logits, domain)`` over the images with a domain label (0 when there is none)."""
    if output.routing is None:
        return output.logits.new_zeros(())
    valid = domains >= 0
    if not bool(valid.any()):
        return output.logits.new_zeros(())
    return F.cross_entropy(output.routing.logits[valid], domains[valid])


def stage1_loss(model: OmniAID, output: DetectorOutput, labels: Tensor, active: int) -> dict[str, Tensor]:
    """``CE_ls + lambda_orth L_orth`` for the expert being trained alone."""
    config = model.config
    ce = classification_loss(output.logits, labels, config.label_smoothing)
    orth = orthogonality_loss(model, active)
    return {"loss": ce + config.lambda_orth * orth, "ce": ce.detach(), "orth": orth.detach()}


def stage2_loss(model: OmniAID, output: DetectorOutput, labels: Tensor, domains: Tensor) -> dict[str, Tensor]:
    """``CE_ls + lambda_bal L_bal + lambda_gcls CE_router`` while the router and head train."""
    config = model.config
    ce = classification_loss(output.logits, labels, config.label_smoothing)
    balance = load_balancing_loss(output.routing) if output.routing is not None else ce.new_zeros(())
    gcls = router_loss(output, domains)
    loss = ce + config.lambda_balance * balance + config.lambda_router * gcls
    return {"loss": loss, "ce": ce.detach(), "balance": balance.detach(), "router": gcls.detach()}
