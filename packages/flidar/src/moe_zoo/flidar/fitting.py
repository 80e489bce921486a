"""Baseline: least-squares fit of the diffusion forward model to each histogram (scipy).

For each histogram ``h`` minimise the Neyman chi^2 ``sum_k (h_k - m_k)^2 / max(h_k, 1)`` over
``m_k = A s_k(depth, tau, mu_a, mu_s') + b`` with ``scipy.optimize.least_squares`` (trust region
reflective, bounds = the simulation ranges, start = the centre of the box). The four physical
parameters are mapped to ``[0, 1]`` (``mu_a`` on a log scale); the Jacobian columns of the
shape come from one batched forward call with forward differences, those of ``A`` and ``b``
are exact. The fit knows the exact forward model and IRF: what it lacks is a prior over which
parameter combinations explain a noisy histogram equally well.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import least_squares

from moe_zoo.flidar.simulator import PARAMETERS, SimulationConfig, expected_histograms, irf_fine

_STEP = 1e-3


def _to_physical(unit: np.ndarray, config: SimulationConfig) -> dict[str, torch.Tensor]:
    """``[n, 4]`` points of the unit box -> parameter tensors (``mu_a`` log-scaled)."""
    columns = {}
    for i, name in enumerate(PARAMETERS):
        low, high = getattr(config, name)
        u = torch.as_tensor(unit[:, i], dtype=torch.float64)
        columns[name] = (torch.exp(math.log(low) + u * math.log(high / low)) if name == "mu_a_per_mm"
                         else low + u * (high - low))
    return columns


def fit_histogram(counts: np.ndarray, config: SimulationConfig, irf: torch.Tensor | None = None,
                  max_nfev: int = 60) -> dict[str, float]:
    """Fit one histogram; returns the physical parameters, amplitude, background and cost."""
    irf = irf_fine(config) if irf is None else irf
    counts = np.asarray(counts, dtype=np.float64)
    weight = 1.0 / np.sqrt(np.maximum(counts, 1.0))
    total = max(float(counts.sum()), 1.0)

    def shapes(unit: np.ndarray) -> np.ndarray:
        return expected_histograms(_to_physical(unit, config), config, irf=irf).numpy()

    cache: dict[bytes, np.ndarray] = {}

    def batch(x: np.ndarray) -> np.ndarray:
        key = x.tobytes()
        if key not in cache:
            unit = np.vstack([x[:4], x[:4] + _STEP * np.eye(4)])
            cache.clear()
            cache[key] = shapes(np.clip(unit, 0.0, 1.0 + _STEP))
        return cache[key]

    def residual(x: np.ndarray) -> np.ndarray:
        s = batch(x)[0]
        return (counts - total * x[4] * s - x[5]) * weight

    def jacobian(x: np.ndarray) -> np.ndarray:
        s = batch(x)
        d_shape = total * x[4] * (s[1:] - s[0]) / _STEP
        columns = np.vstack([d_shape, total * s[0], np.ones_like(s[0])])
        return -(columns * weight).T

    background0 = float(np.median(counts[: max(4, int(config.irf_center_ps / config.bin_ps) // 2)]))
    x0 = np.array([0.5, 0.5, 0.5, 0.5, max(1.0 - background0 * len(counts) / total, 0.05), background0])
    lower = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    upper = np.array([1.0, 1.0, 1.0, 1.0, 2.0, max(counts.max(), 1.0)])
    fit = least_squares(residual, np.clip(x0, lower, upper), jac=jacobian, bounds=(lower, upper), method="trf",
                        max_nfev=max_nfev, x_scale=np.array([0.1, 0.1, 0.1, 0.1, 0.1, max(background0, 1.0)]))
    physical = {k: float(v[0]) for k, v in _to_physical(fit.x[None, :4], config).items()}
    return {**physical, "amplitude": float(fit.x[4] * total), "background": float(fit.x[5] * len(counts)),
            "cost": float(fit.cost)}


def fit_histograms(histograms: torch.Tensor, config: SimulationConfig, max_nfev: int = 60) -> torch.Tensor:
    """``[N, T]`` counts -> ``[N, 2]`` fitted (depth mm, lifetime ns)."""
    irf = irf_fine(config)
    rows = [fit_histogram(h, config, irf, max_nfev) for h in histograms.numpy()]
    return torch.tensor([[r["depth_mm"], r["lifetime_ns"]] for r in rows], dtype=torch.float32)
