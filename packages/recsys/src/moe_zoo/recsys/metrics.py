"""Per-task metrics: AUC, GAUC by user, logloss (binary tasks) and RMSE (regression tasks).

AUC and logloss come from scikit-learn. GAUC (Zhou et al., DIN 2018) is the impression-weighted
mean of per-user AUCs, ``GAUC = sum_u n_u AUC_u / sum_u n_u`` over users with both classes; each
``AUC_u`` is the rank statistic ``(R_u^+ - P_u (P_u + 1) / 2) / (P_u N_u)`` (``R_u^+``: sum of the
positives' mid-ranks inside user ``u``), computed for all users at once with a grouped rank.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

from moe_zoo.core import InputError


def _valid(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels, scores = np.asarray(labels, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape:
        raise InputError(f"labels {labels.shape} and scores {scores.shape} differ in shape")
    keep = np.isfinite(labels)
    return labels[keep], scores[keep], keep


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC; NaN when only one class is present (labels NaN = missing, skipped)."""
    y, s, _ = _valid(labels, scores)
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else math.nan


def gauc(labels: np.ndarray, scores: np.ndarray, users: np.ndarray) -> float:
    """User-grouped AUC, weighted by each user's number of impressions."""
    y, s, keep = _valid(labels, scores)
    frame = pd.DataFrame({"u": np.asarray(users)[keep], "y": y, "s": s})
    frame["rank"] = frame.groupby("u")["s"].rank(method="average")
    per_user = frame.assign(pos_rank=frame["rank"] * frame["y"]).groupby("u").agg(
        n=("y", "size"), pos=("y", "sum"), pos_rank=("pos_rank", "sum"))
    per_user = per_user[(per_user["pos"] > 0) & (per_user["pos"] < per_user["n"])]
    if per_user.empty:
        return math.nan
    neg = per_user["n"] - per_user["pos"]
    user_auc = (per_user["pos_rank"] - per_user["pos"] * (per_user["pos"] + 1) / 2) / (per_user["pos"] * neg)
    return float((user_auc * per_user["n"]).sum() / per_user["n"].sum())


def logloss(labels: np.ndarray, probabilities: np.ndarray, eps: float = 1e-7) -> float:
    y, p, _ = _valid(labels, probabilities)
    return float(log_loss(y, np.clip(p, eps, 1 - eps), labels=[0.0, 1.0])) if len(y) else math.nan


def rmse(labels: np.ndarray, predictions: np.ndarray) -> float:
    y, p, _ = _valid(labels, predictions)
    return float(np.sqrt(np.mean((y - p) ** 2))) if len(y) else math.nan


def task_metrics(labels: np.ndarray, outputs: np.ndarray, kinds: tuple[str, ...], names: tuple[str, ...],
                 users: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """``{task: {auc, gauc, logloss} | {rmse}}`` from labels and model outputs (probabilities / values)."""
    result: dict[str, dict[str, float]] = {}
    for k, (name, kind) in enumerate(zip(names, kinds)):
        y, p = labels[:, k], outputs[:, k]
        if kind == "binary":
            entry = {"auc": auc(y, p), "logloss": logloss(y, p)}
            if users is not None:
                entry["gauc"] = gauc(y, p, users)
        else:
            entry = {"rmse": rmse(y, p)}
        result[name] = entry
    return result


def mean_auc(metrics: dict[str, dict[str, float]]) -> float:
    """Mean AUC over the binary tasks (NaN when there are none)."""
    values = [m["auc"] for m in metrics.values() if "auc" in m and not math.isnan(m["auc"])]
    return float(np.mean(values)) if values else math.nan
