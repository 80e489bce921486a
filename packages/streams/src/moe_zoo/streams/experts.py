"""DriftMoE's two expert pools of incremental Hoeffding trees (river).

- :class:`DataExperts` (MoE-Data): ``E`` multi-class trees; the ``top_k`` experts with the
  highest gate weight learn each instance (paper: ``E = 12``, ``k = 3``).
- :class:`TaskExperts` (MoE-Task): one binary one-vs-rest tree per class, created when the
  class first appears; every tree learns every instance with the label ``1[y = c]``.

Both answer the questions the classifier asks: the router's target for an instance (the
correctness mask, :mod:`moe_zoo.streams.losses`), the pool's class distribution under the gate
weights (for prediction), and the update. An expert that has not
learned anything yet returns an empty distribution from river: it *abstains*, is skipped for
prediction and is never counted as correct.
"""

from __future__ import annotations

import numpy as np
from river import base

from moe_zoo.streams.losses import correctness_mask, task_mask


def class_rows(probas: list[dict], classes: list) -> tuple[np.ndarray, np.ndarray]:
    """``[E, C]`` class distributions over ``classes`` (rows renormalised; uniform where an
    expert abstains) and the ``[E]`` abstain mask, from river ``predict_proba_one`` dicts."""
    rows = np.array([[proba.get(c, 0.0) for c in classes] for proba in probas], dtype=np.float64)
    rows = rows.reshape(len(probas), len(classes))
    totals = rows.sum(axis=1)
    abstain = ~(totals > 0)
    rows /= np.where(abstain, 1.0, totals)[:, None]
    rows[abstain] = 1.0 / max(len(classes), 1)
    return rows, abstain


def _uniform(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


class DataExperts:
    """``n_experts`` multi-class trees, top-k trained by the router's weights.

    Prediction (``combine="top1"``, the paper's rule): the class distribution of the
    highest-weight expert that can answer, ``p(y | x) = p_{e*}(y | x)``, ``e* = argmax_e g_e(x)``;
    ``combine="mixture"``: ``p(y | x) = sum_e g_e(x) p_e(y | x)`` over the experts that can answer
    (weights renormalised over them).
    """

    def __init__(self, template: base.Classifier, n_experts: int, top_k: int, combine: str) -> None:
        self.experts: list[base.Classifier] = [template.clone() for _ in range(n_experts)]
        self.top_k = top_k
        self.combine = combine

    @property
    def n_active(self) -> int:
        return len(self.experts)

    def add_class(self, template: base.Classifier) -> None:
        """Data experts are multi-class: a new class needs no new expert."""

    def distributions(self, x: dict, classes: list) -> tuple[np.ndarray, np.ndarray]:
        """``[E, C]`` class distributions (uniform where an expert abstains) and the abstain mask."""
        return class_rows([expert.predict_proba_one(x) for expert in self.experts], classes)

    def predict(self, x: dict, classes: list, weights: np.ndarray) -> np.ndarray:
        """``p(y | x)`` over ``classes`` under the gate weights (see the class docstring)."""
        if self.combine == "top1":
            for e in np.argsort(-weights, kind="stable"):
                proba = self.experts[int(e)].predict_proba_one(x)
                row = [proba.get(c, 0.0) for c in classes]
                total = sum(row)
                if total > 0:
                    return np.array(row) / total
            return _uniform(len(classes))
        rows, abstain = self.distributions(x, classes)
        gate = np.where(abstain, 0.0, weights)
        if gate.sum() <= 0:
            return _uniform(len(classes))
        return (gate / gate.sum()) @ rows

    def router_target(self, x: dict, classes: list, y_index: int) -> np.ndarray:
        """The multi-hot correctness mask of the experts' answers before they learn ``(x, y)``."""
        probs, abstain = self.distributions(x, classes)
        return correctness_mask(probs, y_index, abstain)

    def learn(self, x: dict, y: object, y_index: int, weights: np.ndarray) -> None:
        """The ``top_k`` experts by gate weight learn ``(x, y)`` (paper: top-3 of 12)."""
        for e in np.argsort(-weights, kind="stable")[: self.top_k]:
            self.experts[int(e)].learn_one(x, y)


class TaskExperts:
    """One binary one-vs-rest tree per class (expert ``c`` answers "is it class ``c``?")."""

    def __init__(self) -> None:
        self.experts: list[base.Classifier] = []

    @property
    def n_active(self) -> int:
        return len(self.experts)

    def add_class(self, template: base.Classifier) -> None:
        self.experts.append(template.clone())

    def scores(self, x: dict) -> tuple[np.ndarray, np.ndarray]:
        """``s_c = P_c(y = c | x)`` for every class and the abstain mask."""
        rows, abstain = class_rows([expert.predict_proba_one(x) for expert in self.experts], [False, True])
        return rows[:, 1], abstain

    def predict(self, x: dict, classes: list, weights: np.ndarray) -> np.ndarray:
        """``p(y = c | x) = g_c(x) s_c(x) / sum_k g_k(x) s_k(x)``: the router's weight of expert
        ``c`` times that expert's own belief in its class. A tree that has learned nothing counts
        ``s = 1/2``; if every ``s_c`` is 0, the gate weights alone."""
        scores, _ = self.scores(x)
        joint = weights * scores
        total = joint.sum()
        return joint / total if total > 0 else weights

    def router_target(self, x: dict, classes: list, y_index: int) -> np.ndarray:
        """``m = onehot(y)``: only the label's own expert can be right (:func:`task_mask`)."""
        return task_mask(len(self.experts), y_index)

    def learn(self, x: dict, y: object, y_index: int, weights: np.ndarray) -> None:
        """Every one-vs-rest tree learns ``(x, 1[y = c])`` (paper: all task experts, every step)."""
        for c, expert in enumerate(self.experts):
            expert.learn_one(x, c == y_index)
