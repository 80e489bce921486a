"""Metrics and losses against their definitions."""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from moe_zoo.recsys.losses import multitask_loss, task_losses
from moe_zoo.recsys.metrics import auc, gauc, logloss, rmse, task_metrics


def test_gauc_is_the_impression_weighted_mean_of_user_aucs():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 6, 300)
    y = (rng.random(300) < 0.4).astype(float)
    s = np.round(y * 0.3 + rng.random(300), 1)  # ties inside users
    y[users == 5] = 1.0  # a user with one class is left out
    expected_num, expected_den = 0.0, 0
    for u in range(5):
        rows = users == u
        expected_num += roc_auc_score(y[rows], s[rows]) * rows.sum()
        expected_den += rows.sum()
    assert math.isclose(gauc(y, s, users), expected_num / expected_den, rel_tol=1e-12)


def test_auc_logloss_rmse_and_missing_labels():
    y = np.array([0, 1, 1, np.nan, 0])
    p = np.array([0.1, 0.8, 0.6, 0.5, 0.7])
    assert auc(y, p) == roc_auc_score([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.7])
    assert math.isclose(logloss(y, p), -np.mean(np.log([0.9, 0.8, 0.6, 0.3])), rel_tol=1e-9)
    assert math.isnan(auc(np.ones(3), np.arange(3.0)))
    assert rmse(np.array([1.0, 3.0]), np.array([2.0, 1.0])) == math.sqrt(2.5)
    metrics = task_metrics(np.stack([y, y], 1), np.stack([p, p], 1), ("binary", "regression"), ("a", "b"))
    assert set(metrics["a"]) == {"auc", "logloss"} and set(metrics["b"]) == {"rmse"}


def test_task_losses_are_bce_and_mse_over_present_labels():
    z = torch.tensor([[0.5, 2.0], [-1.0, 1.0], [2.0, float("nan")]])
    y = torch.tensor([[1.0, 3.0], [0.0, float("nan")], [float("nan"), 0.0]])
    y[2, 1] = float("nan")
    losses = task_losses(torch.nan_to_num(z), y, torch.tensor([True, False]))
    bce = -(np.log(1 / (1 + np.exp(-0.5))) + np.log(1 - 1 / (1 + np.exp(1.0)))) / 2
    assert math.isclose(losses[0].item(), bce, rel_tol=1e-6)
    assert math.isclose(losses[1].item(), 1.0, rel_tol=1e-6)  # (2 - 3)^2 on the one present label
    assert math.isclose(multitask_loss(torch.nan_to_num(z), y, torch.tensor([True, False])).item(), bce + 1.0,
                        rel_tol=1e-6)
