"""Losses of GS-MoE, its task encoder (UR-DMU) and the MIL ranking baseline, each with its formula.

Notation: ``s_t`` is the anomaly score of snippet ``t`` of a video with ``T`` snippets and weak
label ``y`` (1 = the video contains an anomaly), ``k = floor(T / 16) + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import find_peaks, peak_widths
from torch import Tensor

EPS = 1e-6


def topk_count(n_snippets: int, divisor: int = 16) -> int:
    """``k = floor(T / divisor) + 1`` (UR-DMU, GS-MoE)."""
    return n_snippets // divisor + 1


def topk_mean(scores: Tensor, divisor: int = 16) -> Tensor:
    """Video score ``S = (1/k) sum of the k largest s_t`` over the last axis."""
    return scores.topk(topk_count(scores.shape[-1], divisor), dim=-1).values.mean(-1)


def bce(p: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Binary cross-entropy on probabilities clamped to ``[eps, 1 - eps]`` (weighted mean)."""
    loss = F.binary_cross_entropy(p.clamp(EPS, 1 - EPS), target.to(p.dtype), reduction="none")
    if weight is None:
        return loss.mean()
    weight = weight.to(loss.dtype).expand_as(loss)
    return (loss * weight).sum() / weight.sum().clamp_min(EPS)


def topk_mil_loss(scores: Tensor, labels: Tensor, divisor: int = 16, weight: Tensor | None = None) -> Tensor:
    """Top-k MIL: ``L_mil = BCE(S, y)`` with ``S`` the mean of the top-k snippet scores.

    ``scores`` ``[B, T]`` (or ``[B, E, T]`` with per-expert ``labels``/``weight`` ``[B, E]``)."""
    return bce(topk_mean(scores, divisor), labels, weight)


# --------------------------------------------------------------------------------------------
# Temporal Gaussian splatting (GS-MoE)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GaussianSplats:
    """The temporal Gaussians fitted to one score curve: centres ``P_i``, widths ``sigma_i``,
    amplitudes ``a_i`` and support windows ``[lo_i, hi_i]`` (inclusive snippet indices)."""

    centres: np.ndarray
    sigmas: np.ndarray
    amplitudes: np.ndarray
    windows: np.ndarray  # [n, 2]


def fit_splats(scores: np.ndarray, *, prominence: float = 0.1, rel_height: float = 0.75,
               min_sigma: float = 0.5) -> GaussianSplats:
    """Detect the peaks of a score curve and fit one temporal Gaussian to each.

    1. Peaks ``P_i``: local maxima of ``s`` with topographic prominence ``>= prominence``
       (``scipy.signal.find_peaks``, the first and last snippet included). A curve without such
       a peak gets no splats (and no TGS term: it carries no temporal evidence yet).
    2. Support ``W_i = [lo_i, hi_i]``: where the peak's hill stays above
       ``s(P_i) - rel_height * prominence_i`` (``scipy.signal.peak_widths``).
    3. Width ``sigma_i^2 = sum_{t in W_i} s_t (t - P_i)^2 / sum_{t in W_i} s_t`` (the standard
       deviation of the score mass inside ``W_i`` around the peak), at least ``min_sigma``.
    4. Amplitude ``a_i = s(P_i)``.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    # pad with the curve's minimum so a peak on the first or last snippet counts too
    padded = np.concatenate([[s.min()], s, [s.min()]])
    peaks, props = find_peaks(padded, prominence=prominence)
    if len(peaks) == 0:
        empty = np.zeros(0)
        return GaussianSplats(empty.astype(int), empty, empty, np.zeros((0, 2), dtype=int))
    widths = peak_widths(padded, peaks, rel_height=rel_height,
                         prominence_data=(props["prominences"], props["left_bases"], props["right_bases"]))
    peaks, lo, hi = peaks - 1, widths[2] - 1, widths[3] - 1
    lo = np.clip(np.ceil(np.minimum(lo, peaks)), 0, len(s) - 1).astype(int)
    hi = np.clip(np.floor(np.maximum(hi, peaks)), 0, len(s) - 1).astype(int)
    t = np.arange(len(s))
    inside = (t[None] >= lo[:, None]) & (t[None] <= hi[:, None])
    mass = np.where(inside, np.maximum(s, 0)[None], 0.0)
    spread = (mass * (t[None] - peaks[:, None]) ** 2).sum(1) / np.maximum(mass.sum(1), 1e-12)
    sigmas = np.maximum(np.sqrt(spread), min_sigma)
    return GaussianSplats(peaks.astype(int), sigmas, s[peaks], np.stack([lo, hi], 1))


def splat(splats: GaussianSplats, n_snippets: int) -> np.ndarray:
    """Render the Gaussians into the pseudo-label

    ``G_i(t) = a_i exp(-(t - P_i)^2 / (2 sigma_i^2)) 1[t in W_i]``,
    ``y_hat(t) = sum_i G_i(t) / max_t sum_i G_i(t)`` (normalised so the strongest splat peaks at 1).
    """
    t = np.arange(n_snippets)[None]
    centres, sigmas = splats.centres[:, None], splats.sigmas[:, None]
    inside = (t >= splats.windows[:, :1]) & (t <= splats.windows[:, 1:])
    kernels = splats.amplitudes[:, None] * np.exp(-((t - centres) ** 2) / (2 * sigmas**2)) * inside
    total = kernels.sum(0)
    peak = total.max()
    return (total / peak if peak > 0 else total).astype(np.float32)


def gaussian_pseudo_labels(scores: Tensor, **fit_options) -> tuple[Tensor, Tensor]:
    """Pseudo-labels ``[B, T]`` for score curves ``[B, T]`` and a ``[B]`` mask of curves that had a
    peak (no gradient: a target). Peak finding is sequential, so this runs per video with scipy."""
    curves = scores.detach().float().cpu().numpy()
    fitted = [fit_splats(c, **fit_options) for c in curves]
    labels = np.stack([splat(f, len(c)) for f, c in zip(fitted, curves)])
    has_peak = np.array([len(f.centres) > 0 for f in fitted], dtype=np.float32)
    return torch.from_numpy(labels).to(scores.device), torch.from_numpy(has_peak).to(scores.device)


def tgs_loss(scores: Tensor, weight: Tensor | None = None, **fit_options) -> Tensor:
    """Temporal Gaussian splatting loss: ``L_tgs = BCE(s_t, y_hat(t))`` averaged over the snippets of
    the abnormal videos selected by ``weight`` ``[B]`` that have at least one peak."""
    target, has_peak = gaussian_pseudo_labels(scores, **fit_options)
    per_video = has_peak if weight is None else weight.to(has_peak) * has_peak
    if per_video.sum() == 0:
        return scores.sum() * 0.0
    return bce(scores, target, per_video[:, None].expand_as(scores))


# --------------------------------------------------------------------------------------------
# UR-DMU (task encoder) and Sultani et al. MIL ranking
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class URDMUWeights:
    """UR-DMU's loss weights (its ``AD_Loss``): memory terms 0.1, triplet 0.1, KL 0.001, distance 1e-4."""

    memory: float = 0.1
    triplet: float = 0.1
    kl: float = 0.001
    distance: float = 1e-4


def urdmu_loss(out, labels: Tensor, weights: URDMUWeights = URDMUWeights(), divisor: int = 16) -> dict[str, Tensor]:
    """UR-DMU's objective on a batch of ``b`` normal then ``b`` abnormal videos::

        L = BCE(S, y) + 0.1 (L_A + L_pA + L_N + L_AN) + 0.1 L_trip + 0.001 L_KL + 1e-4 L_dist
        L_A  = BCE(topk(A_att(abnormal)), 1)       abnormal memory fires on abnormal videos
        L_pA = BCE(topk(1 - N_att(abnormal)), 1)   some snippets of abnormal videos are not normal
        L_N  = BCE(N_att(normal), 1)               normal memory fires on every normal snippet
        L_AN = BCE(A_att(normal), 0)               abnormal memory stays silent on normal videos

    ``out`` is the encoder's training output (:class:`~moe_zoo.vad.model.EncoderTrainOutput`).
    """
    half = labels.shape[0] // 2
    a_att, pa_att = out.a_att[half:], out.n_att[half:]
    ones = torch.ones(half, device=labels.device)
    parts = {
        "mil": topk_mil_loss(out.scores, labels, divisor),
        "memory": (bce(topk_mean(a_att, divisor), ones) + bce(topk_mean(1 - pa_att, divisor), ones)
                   + bce(out.n_att[:half], torch.ones_like(out.n_att[:half]))
                   + bce(out.a_att[:half], torch.zeros_like(out.a_att[:half]))),
        "triplet": out.triplet, "kl": out.kl, "distance": out.distance,
    }
    parts["total"] = (parts["mil"] + weights.memory * parts["memory"] + weights.triplet * out.triplet
                      + weights.kl * out.kl + weights.distance * out.distance)
    return parts


def mil_ranking_loss(scores: Tensor, labels: Tensor, *, smooth: float = 8e-5, sparse: float = 8e-5) -> Tensor:
    """Sultani et al. (CVPR 2018) for bags of segments ``scores`` ``[B, T]``, normal then abnormal::

        L = mean_pairs max(0, 1 - max_t s^a_t + max_t s^n_t)
            + lambda_1 sum_t (s^a_t - s^a_{t+1})^2 + lambda_2 sum_t s^a_t ,  lambda_1 = lambda_2 = 8e-5
    """
    normal, abnormal = scores[labels == 0], scores[labels == 1]
    if len(normal) == 0 or len(abnormal) == 0:
        raise ValueError("mil_ranking_loss needs normal and abnormal videos in the batch")
    hinge = F.relu(1.0 - abnormal.amax(-1)[:, None] + normal.amax(-1)[None]).mean()
    smoothness = (abnormal[:, 1:] - abnormal[:, :-1]).pow(2).sum(-1).mean()
    sparsity = abnormal.sum(-1).mean()
    return hinge + smooth * smoothness + sparse * sparsity
