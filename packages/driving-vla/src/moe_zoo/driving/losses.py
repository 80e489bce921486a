"""DriveMoE's losses: conditional flow matching (pi0's schedule) and the routers' focal losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

FM_SIGMA_MIN = 1e-3
BETA_ALPHA, BETA_BETA, T_SCALE = 1.5, 1.0, 0.999


def sample_flow_time(n: int, generator: torch.Generator | None = None, device=None) -> Tensor:
    """``t = 0.999 (1 - z)``, ``z ~ Beta(1.5, 1)`` (pi0 / DriveMoE), so noisier times are favoured.

    Beta(a, 1) has CDF ``z^a``: ``z = u^(1/a)`` for ``u ~ U(0, 1)``."""
    u = torch.rand(n, generator=generator, device=device)
    z = u.pow(1.0 / BETA_ALPHA)
    return T_SCALE * (1.0 - z)


def flow_path(x0: Tensor, x1: Tensor, t: Tensor, sigma_min: float = FM_SIGMA_MIN) -> tuple[Tensor, Tensor]:
    """``psi_t = (1 - (1 - s) t) x0 + t x1`` and its velocity ``x1 - (1 - s) x0`` (x0 noise, x1 data)."""
    tt = t.view(-1, *([1] * (x0.dim() - 1)))
    return (1 - (1 - sigma_min) * tt) * x0 + tt * x1, x1 - (1 - sigma_min) * x0


def flow_matching_loss(velocity: Tensor, x0: Tensor, x1: Tensor, sigma_min: float = FM_SIGMA_MIN) -> Tensor:
    """``L_fm = E || v_theta(psi_t, t) - (x1 - (1 - s) x0) ||^2`` (mean over elements)."""
    return F.mse_loss(velocity, x1 - (1 - sigma_min) * x0)


def class_alpha(labels: Tensor, n_classes: int) -> Tensor:
    """Focal ``alpha``: inverse class counts normalised to sum to 1 (absent classes get 0)."""
    counts = torch.bincount(labels.long().flatten(), minlength=n_classes).float()
    inv = torch.where(counts > 0, 1.0 / counts.clamp(min=1), torch.zeros_like(counts))
    return inv / inv.sum().clamp(min=1e-12)


def focal_loss(logits: Tensor, target: Tensor, alpha: Tensor | None = None, gamma: float = 2.0) -> Tensor:
    """``FL = -alpha_y (1 - p_y)^gamma log p_y``, averaged over the batch (Lin et al., 2017)."""
    log_p = F.log_softmax(logits.float(), dim=-1).gather(-1, target.long()[:, None])[:, 0]
    loss = -(1 - log_p.exp()).pow(gamma) * log_p
    if alpha is not None:
        loss = loss * alpha.to(loss.device)[target.long()]
    return loss.mean()
