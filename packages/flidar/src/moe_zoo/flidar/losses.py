"""EvidenceMoE losses: regression, the evidential loss with its KL regulariser, physics consistency."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from moe_zoo.flidar.simulator import SimulationConfig, expected_histograms


def dirichlet_kl_to_uniform(alpha: Tensor) -> Tensor:
    """``KL[Dir(p | alpha) || Dir(p | 1)]`` over the last axis (``K`` classes)::

        KL = ln Gamma(S) - ln Gamma(K) - sum_k ln Gamma(alpha_k)
             + sum_k (alpha_k - 1) (psi(alpha_k) - psi(S)),        S = sum_k alpha_k
    """
    k = alpha.shape[-1]
    strength = alpha.sum(-1)
    return (torch.lgamma(strength) - math.lgamma(k) - torch.lgamma(alpha).sum(-1)
            + ((alpha - 1.0) * (torch.digamma(alpha) - torch.digamma(strength)[..., None])).sum(-1))


def evidential_loss(alpha: Tensor, target: Tensor, kl_weight: float) -> Tensor:
    """Evidential classification loss of Sensoy et al. (2018, eq. 5) with its regulariser, per row::

        L = sum_k (y_k - p_k)^2 + p_k (1 - p_k) / (S + 1)  +  lambda_t KL[Dir(p | alpha~) || Dir(p | 1)]
        p_k = alpha_k / S,   alpha~ = y + (1 - y) * alpha   (the target's evidence removed)

    ``alpha``: ``[..., K]`` Dirichlet concentrations (>= 1), ``target``: ``[...]`` class indices,
    ``kl_weight``: ``lambda_t`` (annealed ``min(1, t / T_anneal)`` by the trainer). Returns ``[...]``.
    """
    onehot = F.one_hot(target, alpha.shape[-1]).to(alpha.dtype)
    strength = alpha.sum(-1, keepdim=True)
    p = alpha / strength
    fit = ((onehot - p) ** 2 + p * (1.0 - p) / (strength + 1.0)).sum(-1)
    alpha_tilde = onehot + (1.0 - onehot) * alpha
    return fit + kl_weight * dirichlet_kl_to_uniform(alpha_tilde)


def regression_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error on normalised targets, ``mean_j (y_j - yhat_j)^2`` (mean over the batch)."""
    return F.mse_loss(prediction, target)


def estimate_background(histograms: Tensor, simulation: SimulationConfig) -> Tensor:
    """Background counts per bin from the bins before the earliest IRF onset of the simulation's
    IRF box (earliest centre - 4 sigma of the widest IRF)."""
    sigma = max((*simulation.irf_fwhm_range_ps, simulation.irf_fwhm_ps)) / 2.3548
    start = simulation.irf_center_ps + min(0.0, simulation.irf_shift_range_ps[0])
    stop = max(4, int((start - 4.0 * sigma) // simulation.bin_ps))
    return histograms[:, :stop].mean(-1, keepdim=True)


def fine_irf(irf: Tensor, oversample: int) -> Tensor:
    """Binned IRFs ``[B, T]`` -> ``[B, T * oversample]`` on the simulator's fine grid: linear
    interpolation between bin centres (circular), each row normalised to sum 1."""
    n_bins = irf.shape[-1]
    position = (torch.arange(n_bins * oversample, dtype=irf.dtype, device=irf.device) + 0.5) / oversample - 0.5
    left = torch.floor(position)
    frac = position - left
    index = left.long() % n_bins
    values = (1.0 - frac) * irf[:, index] + frac * irf[:, (index + 1) % n_bins]
    return values / values.sum(-1, keepdim=True)


def physics_consistency_loss(params: dict[str, Tensor], histograms: Tensor, simulation: SimulationConfig,
                             irf: Tensor | None = None) -> Tensor:
    """Pearson chi^2 per bin between the measurement and the forward model at the prediction::

        m_k = N_s s_k(depth, tau, mu_a, mu_s'; IRF) + b,   b = mean of the pre-IRF bins,
        N_s = sum_k (h_k - b),                            L = mean_k (h_k - m_k)^2 / (m_k + 1)

    ``s`` is the diffusion-theory histogram shape (:func:`expected_histograms`, differentiable),
    so the gradient pushes the predicted parameters toward ones that explain the photons.
    ``irf``: each histogram's binned IRF ``[B, T]`` (:func:`fine_irf`; default the nominal one).
    About 1 for a perfect prediction (Poisson noise), larger otherwise.
    """
    fine = None if irf is None else fine_irf(irf.to(histograms.dtype), simulation.oversample)
    shape = expected_histograms(params, simulation, irf=fine, dtype=histograms.dtype)
    background = estimate_background(histograms, simulation)
    signal = (histograms - background).sum(-1, keepdim=True).clamp_min(1.0)
    model = signal * shape + background
    return ((histograms - model) ** 2 / (model + 1.0)).mean()
