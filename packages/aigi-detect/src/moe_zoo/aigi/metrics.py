"""The paper's detection metrics: accuracy at threshold 0.5, real accuracy, fake accuracy, average
precision (scikit-learn), overall and per generator / per semantic domain."""

from __future__ import annotations

import numpy as np


def detection_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """``acc`` (threshold 0.5), ``real_acc``, ``fake_acc``, ``ap`` (fake = positive class)."""
    from sklearn.metrics import (
        average_precision_score,  # imported here: sklearn takes seconds to import
    )

    labels, probs = np.asarray(labels), np.asarray(probs)
    pred = probs >= 0.5
    real, fake = labels == 0, labels == 1
    out = {"acc": float((pred == fake).mean()) if len(labels) else float("nan"),
           "real_acc": float((~pred[real]).mean()) if real.any() else float("nan"),
           "fake_acc": float(pred[fake].mean()) if fake.any() else float("nan"),
           "n": len(labels)}
    out["ap"] = float(average_precision_score(fake, probs)) if real.any() and fake.any() else float("nan")
    return out


def per_generator(labels: np.ndarray, probs: np.ndarray, generators: np.ndarray) -> dict[str, dict[str, float]]:
    """For each fake generator: the metrics on every real image plus that generator's fakes."""
    real = labels == 0
    return {str(g): detection_metrics(labels[real | (generators == g)], probs[real | (generators == g)])
            for g in sorted(set(generators[labels == 1].tolist()))}


def per_domain(labels: np.ndarray, probs: np.ndarray, domains: np.ndarray,
               names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """For each semantic domain: the metrics on that domain's real and fake images."""
    return {name: detection_metrics(labels[domains == i], probs[domains == i])
            for i, name in enumerate(names) if (domains == i).any()}
