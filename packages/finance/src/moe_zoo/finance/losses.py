"""Training losses: MIGA's ``-IC`` expert loss with the router's balance term, and MSE.

Every loss is computed per trading day (a cross-section) and averaged over the days of a batch,
vectorised with segment sums (``index_add``), so a batch of several days needs no loop.
"""

from __future__ import annotations

import torch
from torch import Tensor

from moe_zoo.core import InputError
from moe_zoo.finance.model import ForecastOutput

LOSSES = ("ic", "mse")


def _segment_mean(values: Tensor, days: Tensor, n_days: int) -> Tensor:
    counts = torch.zeros(n_days, dtype=values.dtype, device=values.device).index_add_(0, days, torch.ones_like(values))
    sums = torch.zeros(n_days, dtype=values.dtype, device=values.device).index_add(0, days, values)
    return sums / counts.clamp_min(1.0)


def daily_ic(pred: Tensor, target: Tensor, days: Tensor | None = None, n_days: int | None = None,
             eps: float = 1e-8) -> Tensor:
    """Pearson IC per day: ``IC_d = sum_i (p_i - p̄)(y_i - ȳ) / sqrt(sum_i (p_i - p̄)^2 sum_i (y_i - ȳ)^2)``.

    ``days`` (``[n]`` long, values ``< n_days``) groups the rows into cross-sections; ``None`` = one day.
    """
    if pred.shape != target.shape or pred.dim() != 1:
        raise InputError(f"daily_ic: pred and target must be equal 1-D shapes, got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    if days is None:
        days, n_days = torch.zeros_like(pred, dtype=torch.long), 1
    n_days = n_days if n_days is not None else int(days.max()) + 1
    p = pred - _segment_mean(pred, days, n_days)[days]
    y = target - _segment_mean(target, days, n_days)[days]
    zeros = torch.zeros(n_days, dtype=pred.dtype, device=pred.device)
    cov = zeros.index_add(0, days, p * y)
    var_p, var_y = zeros.index_add(0, days, p * p), zeros.index_add(0, days, y * y)
    return cov / (torch.sqrt(var_p * var_y) + eps)


def ic_loss(pred: Tensor, target: Tensor, days: Tensor | None = None, n_days: int | None = None) -> Tensor:
    """MIGA's expert loss ``L_expert = -(1/D) sum_d IC_d(s, y)``."""
    return -daily_ic(pred, target, days, n_days).mean()


def mse_loss(pred: Tensor, target: Tensor, days: Tensor | None = None, n_days: int | None = None) -> Tensor:
    """``(1/D) sum_d mean_i (s_i - y_i)^2`` (Qlib's default loss for its baselines)."""
    if days is None:
        return (pred - target).square().mean()
    n_days = n_days if n_days is not None else int(days.max()) + 1
    return _segment_mean((pred - target).square(), days, n_days).mean()


def forecast_loss(output: ForecastOutput, target: Tensor, days: Tensor | None = None, n_days: int | None = None,
                  *, kind: str = "ic", balance_weight: float = 0.0) -> tuple[Tensor, dict[str, float]]:
    """``L = L_task + lambda * L_balance`` with ``L_task`` = ``-IC`` (MIGA) or MSE.

    ``L_balance = E * sum_e f_e P_e`` is moe-core's Switch loss on the router (``output.aux_loss``);
    MIGA uses ``lambda = 2e-3``. Returns the loss and its parts for logging.
    """
    if kind not in LOSSES:
        raise InputError(f"loss must be one of {LOSSES}, got {kind!r}")
    task = (ic_loss if kind == "ic" else mse_loss)(output.score, target, days, n_days)
    total = task + balance_weight * output.aux_loss if balance_weight else task
    return total, {"task": float(task.detach()), "balance": float(output.aux_loss.detach())}
