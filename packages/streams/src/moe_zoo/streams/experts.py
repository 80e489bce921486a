"""DriftMoE's two expert pools of incremental Hoeffding trees (river).

- :class:`DataExperts` (MoE-Data): ``E`` multi-class trees; the ``top_k`` experts with the
  highest gate weight learn each instance (paper: ``E = 12``, ``k = 3``).
- :class:`TaskExperts` (MoE-Task): one binary one-vs-rest tree per class, created when the
  class first appears; every tree learns every instance with the label ``1[y = c]``.

Both expose the same questions the classifier asks: each expert's class distribution
(for prediction), each expert's answer to its own task (for the correctness mask), and the
update. An expert that has not learned anything yet returns an empty distribution from river;
it *abstains*: it is skipped for prediction and never counted as correct.
"""

from __future__ import annotations

import numpy as np
from river import base


def _row(proba: dict, classes: list) -> np.ndarray:
    return np.array([proba.get(c, 0.0) for c in classes], dtype=np.float64)


class DataExperts:
    """``n_experts`` multi-class trees, top-k trained by the router's weights."""

    def __init__(self, template: base.Classifier, n_experts: int, top_k: int) -> None:
        self.experts: list[base.Classifier] = [template.clone() for _ in range(n_experts)]
        self.top_k = top_k

    @property
    def n_active(self) -> int:
        return len(self.experts)

    def add_class(self, template: base.Classifier) -> None:
        """Data experts are multi-class: a new class needs no new expert."""

    def distribution(self, e: int, x: dict, classes: list) -> np.ndarray | None:
        """Expert ``e``'s class distribution over ``classes`` (None: it abstains)."""
        proba = self.experts[e].predict_proba_one(x)
        if not proba:
            return None
        row = _row(proba, classes)
        total = row.sum()
        return row / total if total > 0 else None

    def distributions(self, x: dict, classes: list) -> tuple[np.ndarray, np.ndarray]:
        """``[E, C]`` class distributions (uniform where an expert abstains) and the abstain mask."""
        rows, abstain = [], []
        for e in range(len(self.experts)):
            row = self.distribution(e, x, classes)
            abstain.append(row is None)
            rows.append(np.full(len(classes), 1.0 / len(classes)) if row is None else row)
        return np.stack(rows), np.array(abstain)

    def own_tasks(self, x: dict, classes: list, y_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every expert's task is the class itself: ``P_e`` over the classes, ``t_e = y``."""
        probs, abstain = self.distributions(x, classes)
        return probs, np.full(len(self.experts), y_index), abstain

    def learn(self, x: dict, y: object, y_index: int, weights: np.ndarray) -> None:
        """The ``top_k`` experts by gate weight learn ``(x, y)`` (paper: top-3 of 12)."""
        k = min(self.top_k, len(self.experts))
        for e in np.argsort(-weights, kind="stable")[:k]:
            self.experts[int(e)].learn_one(x, y)


class TaskExperts:
    """One binary one-vs-rest tree per class (expert ``c`` answers "is it class c?")."""

    def __init__(self) -> None:
        self.experts: list[base.Classifier] = []

    @property
    def n_active(self) -> int:
        return len(self.experts)

    def add_class(self, template: base.Classifier) -> None:
        self.experts.append(template.clone())

    def scores(self, x: dict) -> tuple[np.ndarray, np.ndarray]:
        """``s_c = P_c(y = c | x)`` for every class and the abstain mask."""
        scores, abstain = np.zeros(len(self.experts)), np.zeros(len(self.experts), dtype=bool)
        for c, expert in enumerate(self.experts):
            proba = expert.predict_proba_one(x)
            abstain[c] = not proba
            scores[c] = proba.get(True, 0.0)
        return scores, abstain

    @staticmethod
    def class_distributions(scores: np.ndarray) -> np.ndarray:
        """Expert ``c`` as a class distribution: ``s_c`` on class ``c``, ``(1 - s_c)/(C - 1)`` on
        each other class (what a one-vs-rest "no" says about the rest)."""
        n = len(scores)
        if n == 1:
            return np.ones((1, 1))
        dist = np.repeat(((1.0 - scores) / (n - 1))[:, None], n, axis=1)
        dist[np.arange(n), np.arange(n)] = scores
        return dist

    def distribution(self, e: int, x: dict, classes: list) -> np.ndarray | None:
        """Expert ``e``'s class distribution; it needs every expert's score (``1 - s_c`` is
        spread over the other classes), so this costs as much as :meth:`distributions`."""
        dists, abstain = self.distributions(x, classes)
        return None if abstain[e] else dists[e]

    def distributions(self, x: dict, classes: list) -> tuple[np.ndarray, np.ndarray]:
        scores, abstain = self.scores(x)
        return self.class_distributions(scores), abstain

    def own_tasks(self, x: dict, classes: list, y_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Expert ``c``'s task is binary: ``P_c = (1 - s_c, s_c)``, ``t_c = 1[y = c]``."""
        scores, abstain = self.scores(x)
        targets = (np.arange(len(self.experts)) == y_index).astype(np.int64)
        return np.stack([1.0 - scores, scores], axis=1), targets, abstain

    def learn(self, x: dict, y: object, y_index: int, weights: np.ndarray) -> None:
        """Every one-vs-rest tree learns ``(x, 1[y = c])`` (paper: all task experts, every step)."""
        for c, expert in enumerate(self.experts):
            expert.learn_one(x, c == y_index)
