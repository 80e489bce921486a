"""Qlib's LightGBM baseline on the last day's normalised factors (optional: ``[lightgbm]`` extra)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from moe_zoo.finance.dataset import FeaturePanel, Split

# Qlib's examples/benchmarks/LightGBM/workflow_config_lightgbm_Alpha158.yaml
QLIB_PARAMS = {"objective": "regression", "learning_rate": 0.2, "colsample_bytree": 0.8879, "subsample": 0.8789,
               "lambda_l1": 205.6999, "lambda_l2": 580.9768, "max_depth": 8, "num_leaves": 210,
               "subsample_freq": 1, "verbosity": -1}


def lightgbm_available() -> bool:
    try:
        import lightgbm  # noqa: F401
    except (ImportError, OSError):     # OSError: libgomp missing
        return False
    return True


def _rows(panel: FeaturePanel, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mask = panel.exists[days] & np.isfinite(panel.label[days])
    t, i = np.nonzero(mask)
    return panel.features[days[t], i], panel.target[days[t], i]


@dataclass
class LightGBMModel:
    """A fitted booster; ``score(panel, days)`` gives ``[len(days), N]`` like ``score_days``."""

    booster: object
    seconds: float

    def score(self, panel: FeaturePanel, days: np.ndarray) -> np.ndarray:
        out = np.full((len(days), len(panel.instruments)), np.nan)
        t, i = np.nonzero(panel.exists[days])
        out[t, i] = self.booster.predict(panel.features[days[t], i])
        return out


def fit_lightgbm(panel: FeaturePanel, split: Split, *, seed: int = 0, threads: int = 1,
                 rounds: int = 1000, early_stopping: int = 50) -> LightGBMModel:
    """Train on the train days' rows (target: CSRankNorm label), early-stop on the valid days' l2."""
    import lightgbm as lgb

    began = time.perf_counter()
    x_train, y_train = _rows(panel, panel.date_index(split.dates("train", panel.dates)))
    x_valid, y_valid = _rows(panel, panel.date_index(split.dates("valid", panel.dates)))
    params = {**QLIB_PARAMS, "seed": seed, "num_threads": threads, "deterministic": True}
    train_set = lgb.Dataset(x_train, y_train)
    booster = lgb.train(params, train_set, num_boost_round=rounds,
                        valid_sets=[lgb.Dataset(x_valid, y_valid, reference=train_set)],
                        callbacks=[lgb.early_stopping(early_stopping, verbose=False)])
    return LightGBMModel(booster, time.perf_counter() - began)
