"""Experts that learn and forget like the members of the best adaptive ensembles (the project's
``plus`` variant of DriftMoE; not in the paper).

Each expert is a Hoeffding tree (with ``max_features``, ARF's tree: each leaf splits on a random
subset of the features, which also makes it cheaper) that, when it learns an instance, learns it with a
Poisson(``lam``) weight (online bagging, Oza and Russell; ``lam = 6`` as in Leveraging Bagging and
ARF), and carries two ADWIN detectors on its own 0/1 error, as an ARF member does (Gomes et al.,
2017): when the warning detector (``delta = 0.01``) fires, a background tree starts learning
beside the expert; when the drift detector (``delta = 0.001``) fires, the background tree
replaces the expert (a fresh tree if there is none) and both detectors restart. The error fed to
the detectors is the expert's answer from the pool's one evaluation of the instance, before it
learns it: no tree is asked twice.

Which experts learn an instance is the router's choice, as in MoE-Data (the ``top_k`` experts by
gate weight), except during the warm start (``warm``: before the router's first update every
expert learns every instance, so the pool does not start from whichever experts the untrained
router happens to prefer).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from river import base, drift

from moe_zoo.streams.experts import DataExperts

WARNING_DELTA = 0.01
DRIFT_DELTA = 0.001


class AdaptiveExperts(DataExperts):
    """``n_experts`` multi-class trees with Poisson weighting and ADWIN-driven background trees.

    ``lam``: Poisson rate of the instance weights (``0``: every learning expert learns with weight
    1); ``detect``: per-expert warning/drift detection with background trees; ``seed``: the
    Poisson draws. ``drifts`` counts the replacements so far (per expert).
    """

    def __init__(self, factory: Callable[[], base.Classifier], n_experts: int, top_k: int, combine: str, *,
                 lam: float, detect: bool, seed: int) -> None:
        super().__init__(factory, n_experts, top_k, combine)
        self.factory = factory
        self.lam = lam
        self.detect = detect
        self.warm = False
        self._rng = np.random.default_rng(seed)
        self.background: list[base.Classifier | None] = [None] * n_experts
        self.warnings = [drift.ADWIN(delta=WARNING_DELTA) for _ in range(n_experts)]
        self.detectors = [drift.ADWIN(delta=DRIFT_DELTA) for _ in range(n_experts)]
        self.drifts = np.zeros(n_experts, dtype=np.int64)

    def learners(self, weights: np.ndarray) -> np.ndarray:
        if self.warm:
            return np.arange(len(self.experts))
        return super().learners(weights)

    def learn(self, x: dict, y: object, y_index: int, weights: np.ndarray, rows: np.ndarray,
              abstain: np.ndarray) -> None:
        """The chosen experts learn ``(x, y)`` with their Poisson weights; their detectors see
        whether they were wrong (an abstaining expert counts as wrong)."""
        chosen = self.learners(weights)
        counts = self._rng.poisson(self.lam, size=len(chosen)) if self.lam > 0 else np.ones(len(chosen), np.int64)
        wrong = (rows.argmax(axis=1) != y_index) | abstain
        for e, k in zip(chosen.tolist(), counts.tolist()):
            if k == 0:
                continue
            self.experts[e].learn_one(x, y, w=k)
            if not self.detect:
                continue
            if self.background[e] is not None:
                self.background[e].learn_one(x, y, w=k)
            self._watch(e, float(wrong[e]))

    def _watch(self, e: int, error: float) -> None:
        """ARF's rule for one expert: warning -> start a background tree; drift -> swap it in."""
        warning = self.warnings[e]
        warning.update(error)
        if warning.drift_detected:
            self.background[e] = self.factory()
            self.warnings[e] = drift.ADWIN(delta=WARNING_DELTA)
        detector = self.detectors[e]
        detector.update(error)
        if detector.drift_detected:
            background = self.background[e]
            self.experts[e] = background if background is not None else self.factory()
            self.background[e] = None
            self.warnings[e] = drift.ADWIN(delta=WARNING_DELTA)
            self.detectors[e] = drift.ADWIN(delta=DRIFT_DELTA)
            self.drifts[e] += 1
