"""DriftMoE's expert pools of incremental Hoeffding trees (river).

- :class:`DataExperts` (MoE-Data): ``E`` multi-class trees; the ``top_k`` experts with the
  highest gate weight learn each instance (paper: ``E = 12``, ``k = 3``).
- :class:`TaskExperts` (MoE-Task): one binary one-vs-rest tree per class, created when the
  class first appears; every tree learns every instance with the label ``1[y = c]``.
- :class:`moe_zoo.streams.adaptive.AdaptiveExperts` (the project's ``plus`` variant).

One pass per instance: :meth:`evaluate` asks every expert once (``predict_proba_one``) and gives
the ``[E, C]`` class distributions with the abstain mask; the prediction (:meth:`predict`), the
router's target (:meth:`router_target`, the correctness mask of :mod:`moe_zoo.streams.losses`)
and the update (:meth:`learn`) all work from that one evaluation, never asking a tree again.
An expert that has not learned anything yet returns an empty distribution from river: it
*abstains*, is skipped for prediction and is never counted as correct.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from river import base

from moe_zoo.streams.losses import correctness_mask, task_mask


def class_rows(probas: list[dict], classes: list) -> tuple[np.ndarray, np.ndarray]:
    """``[E, C]`` class distributions over ``classes`` (rows renormalised; uniform where an
    expert abstains) and the ``[E]`` abstain mask, from river ``predict_proba_one`` dicts."""
    rows = np.array([[proba.get(c, 0.0) for c in classes] for proba in probas], dtype=np.float64)
    return normalise_rows(rows.reshape(len(probas), len(classes)))


def normalise_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` (``[E, C]`` class weights, in place) renormalised, uniform where a row sums to 0
    (the expert abstains), and the abstain mask."""
    totals = np.add.reduce(rows, axis=1)
    abstain = ~(totals > 0)
    rows /= np.where(abstain, 1.0, totals)[:, None]
    rows[abstain] = 1.0 / max(rows.shape[1], 1)
    return rows, abstain


def _uniform(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


def mixture(rows: np.ndarray, abstain: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_e g_e p_e`` over the experts that answer (weights renormalised over them)."""
    gate = np.where(abstain, 0.0, weights.astype(np.float64))
    total = gate.sum()
    if total <= 0:
        return _uniform(rows.shape[1])
    proba = np.clip((gate / total) @ rows, 0.0, 1.0)  # float32 gate weights: keep rounding inside [0, 1]
    return proba / proba.sum()


def top1(rows: np.ndarray, abstain: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``p_{e*}`` for ``e*`` the highest-weight expert that answers (ties: lowest index)."""
    gate = np.where(abstain, -np.inf, weights)
    best = int(np.argmax(gate))
    return _uniform(rows.shape[1]) if abstain[best] else rows[best]


class DataExperts:
    """``n_experts`` multi-class trees, top-k trained by the router's weights.

    Prediction (``combine="top1"``, the paper's rule): the class distribution of the
    highest-weight expert that can answer, ``p(y | x) = p_{e*}(y | x)``, ``e* = argmax_e g_e(x)``;
    ``combine="mixture"``: ``p(y | x) = sum_e g_e(x) p_e(y | x)`` over the experts that can answer
    (weights renormalised over them).
    """

    def __init__(self, factory: Callable[[], base.Classifier], n_experts: int, top_k: int, combine: str) -> None:
        self.experts: list[base.Classifier] = [factory() for _ in range(n_experts)]
        self.top_k = top_k
        self.combine = combine

    @property
    def n_active(self) -> int:
        return len(self.experts)

    def add_class(self, template: base.Classifier) -> None:
        """Data experts are multi-class: a new class needs no new expert."""

    def evaluate(self, x: dict, classes: list) -> tuple[np.ndarray, np.ndarray]:
        """One pass: ``[E, C]`` class distributions (uniform where an expert abstains) and the
        abstain mask, one ``predict_proba_one`` per expert."""
        return class_rows([expert.predict_proba_one(x) for expert in self.experts], classes)

    def predict(self, rows: np.ndarray, abstain: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """``p(y | x)`` over the classes under the gate weights (see the class docstring)."""
        rule = top1 if self.combine == "top1" else mixture
        return rule(rows, abstain, weights)

    def router_target(self, rows: np.ndarray, abstain: np.ndarray, y_index: int) -> np.ndarray:
        """The multi-hot correctness mask of the experts' answers before they learn ``(x, y)``."""
        return correctness_mask(rows, y_index, abstain)

    def learners(self, weights: np.ndarray) -> np.ndarray:
        """Indices of the ``top_k`` experts by gate weight (ties: lowest index first)."""
        return np.argsort(-weights, kind="stable")[: self.top_k]

    def learn(self, x: dict, y: object, y_index: int, weights: np.ndarray, rows: np.ndarray,
              abstain: np.ndarray) -> None:
        """The ``top_k`` experts by gate weight learn ``(x, y)`` (paper: top-3 of 12)."""
        for e in self.learners(weights):
            self.experts[int(e)].learn_one(x, y)


class TaskExperts:
    """One binary one-vs-rest tree per class (expert ``c`` answers "is it class ``c``?").

    Prediction (``combine="router"``, the reference code's rule): the router alone,
    ``p(y = c | x) = g_c(x)``; ``combine="gated"`` (opt-in): ``g_c(x) s_c(x) / sum_k g_k(x) s_k(x)``
    with ``s_c = P_c(y = c | x)``, the router's weight of expert ``c`` times that expert's own
    belief in its class.
    """

    def __init__(self, combine: str) -> None:
        self.experts: list[base.Classifier] = []
        self.combine = combine

    @property
    def n_active(self) -> int:
        return len(self.experts)

    def add_class(self, template: base.Classifier) -> None:
        self.experts.append(template.clone())

    def evaluate(self, x: dict, classes: list) -> tuple[np.ndarray, np.ndarray]:
        """``[E, 2]`` one-vs-rest distributions over ``(no, yes)`` and the abstain mask. With the
        reference's rule the trees never influence a prediction or the target, so none is asked."""
        if self.combine == "router":
            n = len(self.experts)
            return np.full((n, 2), 0.5), np.ones(n, dtype=bool)
        return class_rows([expert.predict_proba_one(x) for expert in self.experts], [False, True])

    def predict(self, rows: np.ndarray, abstain: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """See the class docstring. A tree that has learned nothing counts ``s = 1/2``; if every
        ``s_c`` is 0, the gate weights alone."""
        if self.combine == "router":
            weights = weights.astype(np.float64)  # the float32 softmax may miss a sum of 1 by 1e-7
            return weights / weights.sum()
        joint = weights * rows[:, 1]
        total = joint.sum()
        return joint / total if total > 0 else weights

    def router_target(self, rows: np.ndarray, abstain: np.ndarray, y_index: int) -> np.ndarray:
        """``m = onehot(y)``: only the label's own expert can be right (:func:`task_mask`)."""
        return task_mask(len(self.experts), y_index)

    def learn(self, x: dict, y: object, y_index: int, weights: np.ndarray, rows: np.ndarray,
              abstain: np.ndarray) -> None:
        """Every one-vs-rest tree learns ``(x, 1[y = c])`` (paper: all task experts, every step)."""
        for c, expert in enumerate(self.experts):
            expert.learn_one(x, c == y_index)
