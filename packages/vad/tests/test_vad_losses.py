"""The losses against their formulas on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from moe_zoo.vad.losses import (
    fit_splats,
    gaussian_pseudo_labels,
    mil_ranking_loss,
    splat,
    tgs_loss,
    topk_count,
    topk_mil_loss,
)

CURVE = np.array([0.0, 0.2, 0.8, 0.2, 0.0, 0.0, 0.0, 0.5, 0.0])


def test_fit_splats_hand_case():
    """Peaks at 2 (prominence 0.8) and 7 (0.5). At rel_height 0.75 the first hill is cut at
    0.8 - 0.6 = 0.2, i.e. exactly at t = 1 and 3: W_1 = [1, 3] and
    sigma_1^2 = (0.2 * 1 + 0.8 * 0 + 0.2 * 1) / 1.2 = 1/3; the second is cut at 0.125, crossing at
    6.25 and 7.75, so W_2 = [7, 7], spread 0 -> min_sigma = 0.5."""
    splats = fit_splats(CURVE, prominence=0.1, rel_height=0.75, min_sigma=0.5)
    np.testing.assert_array_equal(splats.centres, [2, 7])
    np.testing.assert_array_equal(splats.windows, [[1, 3], [7, 7]])
    np.testing.assert_allclose(splats.sigmas, [math.sqrt(1 / 3), 0.5])
    np.testing.assert_allclose(splats.amplitudes, [0.8, 0.5])


def test_splat_is_the_normalised_masked_gaussian_mixture():
    """y(t) = sum_i a_i exp(-(t - P_i)^2 / (2 sigma_i^2)) 1[t in W_i] / max_t (same)."""
    target = splat(fit_splats(CURVE, prominence=0.1, rel_height=0.75), len(CURVE))
    expected = np.zeros(len(CURVE))
    for t in (1, 2, 3):
        expected[t] += 0.8 * math.exp(-((t - 2) ** 2) / (2 / 3))
    expected[7] += 0.5
    np.testing.assert_allclose(target, expected / 0.8, rtol=1e-6)
    assert target.max() == pytest.approx(1.0)
    assert target[0] == target[4] == target[8] == 0.0          # outside every window


def test_peak_on_the_border_and_flat_curve():
    edge = fit_splats(np.array([0.9, 0.4, 0.1, 0.1]), prominence=0.1)
    assert list(edge.centres) == [0]
    flat = fit_splats(np.full(6, 0.3), prominence=0.1)
    assert len(flat.centres) == 0 and splat(flat, 6).sum() == 0


def test_tgs_loss_is_bce_against_the_pseudo_labels_on_videos_with_peaks():
    scores = torch.from_numpy(np.stack([CURVE, np.full(9, 0.3)])).float().clamp(0.05, 0.95).requires_grad_()
    target, has_peak = gaussian_pseudo_labels(scores, prominence=0.1, rel_height=0.75)
    assert has_peak.tolist() == [1.0, 0.0]                      # the flat curve carries no evidence
    loss = tgs_loss(scores, prominence=0.1, rel_height=0.75)
    p, y = scores[0].detach().double(), target[0].double()
    expected = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert scores.grad[1].abs().sum() == 0 and scores.grad[0].abs().sum() > 0
    masked = tgs_loss(scores, weight=torch.tensor([0.0, 1.0]))  # only the flat curve selected
    assert masked.item() == 0.0


def test_topk_mil_loss_formula():
    """k = T // 16 + 1; S = mean of the k largest scores; L = BCE(S, y)."""
    assert topk_count(15) == 1 and topk_count(16) == 2 and topk_count(40) == 3
    scores = torch.linspace(0.01, 0.99, 32).view(1, 32).repeat(2, 1)
    labels = torch.tensor([1.0, 0.0])
    top = scores[0].topk(3).values.mean()
    expected = 0.5 * (-torch.log(top) - torch.log(1 - top))
    assert topk_mil_loss(scores, labels).item() == pytest.approx(expected.item(), rel=1e-5)


def test_mil_ranking_loss_formula():
    """max(0, 1 - max s^a + max s^n) + 8e-5 sum (s^a_t - s^a_{t+1})^2 + 8e-5 sum s^a_t."""
    normal = torch.tensor([[0.1, 0.3, 0.2]])
    abnormal = torch.tensor([[0.2, 0.9, 0.4]])
    scores = torch.cat([normal, abnormal]).requires_grad_()
    loss = mil_ranking_loss(scores, torch.tensor([0, 1]))
    expected = (1 - 0.9 + 0.3) + 8e-5 * (0.7**2 + 0.5**2) + 8e-5 * 1.5
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert scores.grad[0, 1] > 0 and scores.grad[1, 1] < 0     # push normal max down, abnormal max up
    with pytest.raises(ValueError, match="needs normal and abnormal"):
        mil_ranking_loss(normal, torch.tensor([0]))
