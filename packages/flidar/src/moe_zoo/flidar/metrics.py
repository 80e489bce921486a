"""Metrics: NRMSE of depth and lifetime, and the calibration of predicted uncertainty."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr
from torch import Tensor


def rmse(prediction: Tensor, target: Tensor) -> Tensor:
    """``sqrt(mean((yhat - y)^2))`` per column."""
    return ((prediction - target) ** 2).mean(0).sqrt()


def nrmse(prediction: Tensor, target: Tensor) -> Tensor:
    """``RMSE / (max(y) - min(y))`` per column: the RMSE normalised by the range of the truth."""
    spread = (target.amax(0) - target.amin(0)).clamp_min(1e-12)
    return rmse(prediction, target) / spread


@dataclass(frozen=True)
class Calibration:
    """Mean absolute error in quantile bins of the predicted uncertainty, plus Spearman's rho."""

    uncertainty: np.ndarray   # [bins] mean predicted uncertainty per bin
    error: np.ndarray         # [bins] mean absolute error per bin
    spearman: float           # rank correlation of uncertainty and |error| over all samples


def calibration(uncertainty: Tensor, abs_error: Tensor, n_bins: int = 10) -> Calibration:
    """Sort by predicted uncertainty, split into ``n_bins`` equal-count bins, average each."""
    u = uncertainty.detach().double().cpu().numpy()
    e = abs_error.detach().double().cpu().numpy()
    order = np.argsort(u, kind="stable")
    chunks = np.array_split(order, n_bins)
    rho = spearmanr(u, e).statistic if len(u) > 2 else float("nan")
    return Calibration(np.array([u[c].mean() for c in chunks]), np.array([e[c].mean() for c in chunks]), float(rho))


def summarise(prediction: Tensor, target: Tensor) -> dict[str, float]:
    """NRMSE and RMSE of depth (mm) and lifetime (ns)."""
    n, r = nrmse(prediction, target), rmse(prediction, target)
    return {"nrmse_depth": float(n[0]), "nrmse_lifetime": float(n[1]),
            "rmse_depth_mm": float(r[0]), "rmse_lifetime_ns": float(r[1])}



