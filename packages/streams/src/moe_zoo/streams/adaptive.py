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

:class:`VectorAdaptiveExperts` is the same pool on :mod:`moe_zoo.streams.fast_tree`'s trees, whose
leaves share one table: all experts answer in one vectorised evaluation and all learning trees
(background trees included) learn in one vectorised step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from river import base, drift

from moe_zoo.streams.experts import DataExperts, normalise_rows
from moe_zoo.streams.fast_tree import (
    FastHoeffdingTreeClassifier,
    LeafTable,
    learn_together,
    predict_together,
)

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
        learning = [(e, k) for e, k in zip(chosen.tolist(), counts.tolist()) if k > 0]
        trees = [(self.experts[e], k) for e, k in learning]
        if self.detect:
            trees += [(self.background[e], k) for e, k in learning if self.background[e] is not None]
        self._teach(trees, x, y)
        if self.detect:
            wrong = (rows.argmax(axis=1) != y_index) | abstain
            for e, _ in learning:
                self._watch(e, float(wrong[e]))

    def _teach(self, trees: list[tuple[base.Classifier, int]], x: dict, y: object) -> None:
        """Each tree learns ``(x, y)`` with its weight (trees learn independently: one loop)."""
        for tree, k in trees:
            tree.learn_one(x, y, w=k)

    def _discard(self, tree: base.Classifier | None) -> None:
        """A tree leaves the pool (river's trees need nothing)."""

    def _watch(self, e: int, error: float) -> None:
        """ARF's rule for one expert: warning -> start a background tree; drift -> swap it in."""
        warning = self.warnings[e]
        warning.update(error)
        if warning.drift_detected:
            self._discard(self.background[e])
            self.background[e] = self.factory()
            self.warnings[e] = drift.ADWIN(delta=WARNING_DELTA)
        detector = self.detectors[e]
        detector.update(error)
        if detector.drift_detected:
            background = self.background[e]
            self._discard(self.experts[e])
            self.experts[e] = background if background is not None else self.factory()
            self.background[e] = None
            self.warnings[e] = drift.ADWIN(delta=WARNING_DELTA)
            self.detectors[e] = drift.ADWIN(delta=DRIFT_DELTA)
            self.drifts[e] += 1


class VectorAdaptiveExperts(AdaptiveExperts):
    """:class:`AdaptiveExperts` whose trees are :class:`~moe_zoo.streams.fast_tree.FastHoeffdingTreeClassifier`
    sharing one :class:`~moe_zoo.streams.fast_tree.LeafTable`: an instance is encoded once for the
    pool, the experts answer in one vectorised evaluation, and the learning trees (experts and
    background trees) update their leaves in one vectorised step."""

    def __init__(self, factory: Callable[[], FastHoeffdingTreeClassifier], table: LeafTable, n_experts: int,
                 top_k: int, combine: str, *, lam: float, detect: bool, seed: int) -> None:
        super().__init__(factory, n_experts, top_k, combine, lam=lam, detect=detect, seed=seed)
        self.table = table

    def evaluate(self, x: dict, classes: list) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.experts)
        trees = self.experts + [b for b in self.background if b is not None]  # background leaves: memoised for learn
        proba, _ = predict_together(trees, self.table.space.encode(x), matrix=True)
        rows = np.zeros((n, len(classes)))
        width = min(proba.shape[1], len(classes))
        rows[:, :width] = proba[:n, :width]  # trees that have not learned: zeros, i.e. abstain
        return normalise_rows(rows)

    def learn(self, x: dict, y: object, y_index: int, weights: np.ndarray, rows: np.ndarray,
              abstain: np.ndarray) -> None:
        self.table.space.class_id(y)  # the space lists the classes in the model's order of appearance
        super().learn(x, y, y_index, weights, rows, abstain)

    def _teach(self, trees: list[tuple[FastHoeffdingTreeClassifier, int]], x: dict, y: object) -> None:
        if trees:
            space = self.table.space
            learn_together([t for t, _ in trees], space.encode(x), space.class_index[y], [k for _, k in trees])

    def _discard(self, tree: FastHoeffdingTreeClassifier | None) -> None:
        if tree is not None:
            tree.release()
