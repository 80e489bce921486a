"""DriftMoE (Aspis et al., 2025) as a river classifier, in its two variants.

Per instance (test-then-train, as in the paper's co-training loop):

1. the router scores the experts: ``g(x) = softmax(MLP(x) / 0.8)`` (moe-core ``SoftGate``,
   evaluated through a NumPy snapshot, :mod:`moe_zoo.streams.router`);
2. prediction: MoE-Data takes the class distribution of the highest-weight expert,
   ``p(y | x) = p_{e*}(y | x)``, ``e* = argmax_e g_e(x)`` (the paper's rule; ``combine="mixture"``
   gives ``sum_e g_e(x) p_e(y | x)``); MoE-Task weighs each one-vs-rest expert's belief in its own
   class by the router, ``p(y = c | x) = g_c(x) s_c(x) / sum_k g_k(x) s_k(x)``;
3. the router's target is the correctness mask of the experts' answers *before* they learn
   (MoE-Data: every expert whose argmax is ``y``, else the one with the highest ``P_e(y)``;
   MoE-Task: ``onehot(y)``, :mod:`moe_zoo.streams.losses`); every 256 instances the router takes
   one Adam step (lr 2e-3) on the mean BCE of its logits against the buffered masks;
4. the experts learn ``(x, y)``: MoE-Data's top-3 experts by ``g(x)``, all of MoE-Task's
   one-vs-rest trees (label ``1[y = c]``).

Experts are river Hoeffding trees with the paper's grace period 50 and split confidence 1e-7
(naive-Bayes-adaptive leaves, MOA's and river's default). See the README for every choice the
paper leaves open, and how MoE-Task here relates to the released code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from river import base, tree

from moe_zoo.core import Config, InputError, register_model, resolve_device
from moe_zoo.streams.experts import DataExperts, TaskExperts
from moe_zoo.streams.router import FeatureEncoder, OnlineRouter

VARIANTS = ("data", "task")
COMBINE_RULES = ("top1", "mixture")
LEAF_PREDICTIONS = ("mc", "nb", "nba")


@dataclass(frozen=True)
class DriftMoEConfig(Config):
    """Hyper-parameters of :class:`DriftMoEClassifier` (defaults: the paper's)."""

    variant: str = "data"
    n_experts: int = 12
    top_k: int = 3
    hidden: tuple[int, ...] = (256, 128)
    dropout: float = 0.2
    temperature: float = 0.8
    lr: float = 2e-3
    batch_size: int = 256
    grace_period: int = 50
    delta: float = 1e-7
    leaf_prediction: str = "nba"
    combine: str = "top1"
    max_classes: int = 32
    seed: int | None = None
    device: str = "cpu"


class DriftMoEClassifier(base.Classifier):
    """DriftMoE: a neural router co-trained online with a pool of Hoeffding-tree experts.

    Parameters
    ----------
    variant
        ``"data"`` (MoE-Data: ``n_experts`` multi-class trees that specialise on data regimes)
        or ``"task"`` (MoE-Task: one binary one-vs-rest tree per class).
    n_experts
        Number of MoE-Data experts (paper: 12). MoE-Task has one expert per class.
    top_k
        MoE-Data experts that learn each instance, by gate weight (paper: 3).
    hidden
        Router MLP hidden widths (paper: 256, 128).
    dropout
        Dropout after the router's first hidden layer (paper: 0.2).
    temperature
        Softmax temperature of the gate weights (paper: 0.8).
    lr
        Adam learning rate of the router (paper: 2e-3).
    batch_size
        Instances per router update (paper: 256).
    grace_period
        Hoeffding-tree grace period (paper: 50).
    delta
        Hoeffding-tree split confidence (paper: 1e-7).
    leaf_prediction
        Hoeffding-tree leaf predictor: ``"nba"`` (MOA's default, used by the paper), ``"nb"``, ``"mc"``.
    combine
        MoE-Data prediction: ``"top1"`` (the highest-weight expert, the paper's rule) or
        ``"mixture"`` (``sum_e g_e p_e``). MoE-Task always uses ``g_c s_c``.
    max_classes
        MoE-Task only: router outputs reserved for classes (experts appear with their class).
    seed
        Seed of the router's initialisation and dropout.
    device
        Torch device of the router's mini-batch steps (CPU: the batches are tiny).

    Examples
    --------
    >>> from river import evaluate, metrics
    >>> from moe_zoo.streams import DriftMoEClassifier, make_stream
    >>> stream = make_stream("sea_a", length=2000, seed=1)
    >>> model = DriftMoEClassifier(variant="data", seed=1)
    >>> evaluate.progressive_val_score(stream, model, metrics.Accuracy()).get() > 0.7
    True
    """

    def __init__(self, variant: str = "data", n_experts: int = 12, top_k: int = 3, hidden: tuple[int, ...] = (256, 128),
                 dropout: float = 0.2, temperature: float = 0.8, lr: float = 2e-3, batch_size: int = 256,
                 grace_period: int = 50, delta: float = 1e-7, leaf_prediction: str = "nba", combine: str = "top1",
                 max_classes: int = 32, seed: int | None = None, device: str = "cpu") -> None:
        self.variant = variant
        self.n_experts = n_experts
        self.top_k = top_k
        self.hidden = hidden
        self.dropout = dropout
        self.temperature = temperature
        self.lr = lr
        self.batch_size = batch_size
        self.grace_period = grace_period
        self.delta = delta
        self.leaf_prediction = leaf_prediction
        self.combine = combine
        self.max_classes = max_classes
        self.seed = seed
        self.device = device
        self._validate_params()
        self._rng = random.Random(seed)
        self._classes: list = []
        self._class_index: dict = {}
        self._pool: DataExperts | TaskExperts | None = None
        self._router: OnlineRouter | None = None
        self._cache: tuple | None = None

    # -- parameters ---------------------------------------------------------------------------
    def _validate_params(self) -> None:
        checks = [
            (self.variant in VARIANTS, f"variant must be one of {VARIANTS}, got {self.variant!r}"),
            (isinstance(self.n_experts, int) and self.n_experts >= 1, f"n_experts must be >= 1, got {self.n_experts!r}"),
            (isinstance(self.top_k, int) and 1 <= self.top_k <= self.n_experts,
             f"top_k must be in [1, n_experts={self.n_experts}], got {self.top_k!r}"),
            (len(tuple(self.hidden)) >= 1 and all(int(h) >= 1 for h in self.hidden),
             f"hidden must be positive widths, got {self.hidden!r}"),
            (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout!r}"),
            (self.temperature > 0, f"temperature must be > 0, got {self.temperature!r}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr!r}"),
            (isinstance(self.batch_size, int) and self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size!r}"),
            (self.leaf_prediction in LEAF_PREDICTIONS,
             f"leaf_prediction must be one of {LEAF_PREDICTIONS}, got {self.leaf_prediction!r}"),
            (self.combine in COMBINE_RULES, f"combine must be one of {COMBINE_RULES}, got {self.combine!r}"),
            (self.variant == "data" or self.combine == "top1",
             "combine applies to variant='data' only (MoE-Task combines g_c * s_c)"),
            (isinstance(self.max_classes, int) and self.max_classes >= 2, f"max_classes must be >= 2, got {self.max_classes!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"DriftMoEClassifier: {message}")
        resolve_device(self.device)

    @property
    def config(self) -> DriftMoEConfig:
        """The parameters as a frozen, JSON-serialisable :class:`DriftMoEConfig`."""
        return DriftMoEConfig(**self._get_params())

    @classmethod
    def from_config(cls, config: DriftMoEConfig) -> DriftMoEClassifier:
        return cls(**config.to_dict() | {"hidden": tuple(config.hidden)})

    @property
    def _multiclass(self) -> bool:
        return True

    # -- state --------------------------------------------------------------------------------
    @property
    def experts(self) -> list[base.Classifier]:
        """The expert trees (empty before the first :meth:`learn_one`)."""
        return [] if self._pool is None else self._pool.experts

    @property
    def classes(self) -> list:
        """Labels seen so far, in order of appearance (MoE-Task: expert ``c`` is class ``classes[c]``)."""
        return list(self._classes)

    @property
    def router(self) -> OnlineRouter | None:
        """The online router (``None`` before the first :meth:`learn_one`)."""
        return self._router

    def _expert_template(self) -> tree.HoeffdingTreeClassifier:
        return tree.HoeffdingTreeClassifier(grace_period=self.grace_period, delta=self.delta,
                                            leaf_prediction=self.leaf_prediction)

    def _initialise(self, x: dict) -> None:
        n_router_outputs = self.n_experts if self.variant == "data" else self.max_classes
        self._router = OnlineRouter(FeatureEncoder.from_example(x), n_router_outputs, hidden=tuple(self.hidden),
                                    dropout=self.dropout, temperature=self.temperature, lr=self.lr,
                                    batch_size=self.batch_size, seed=self._rng.getrandbits(63),
                                    device=resolve_device(self.device))
        if self.variant == "data":
            self._pool = DataExperts(self._expert_template(), self.n_experts, self.top_k, self.combine)
        else:
            self._pool = TaskExperts()

    def _n_active(self) -> int | None:
        return None if self.variant == "data" else self._pool.n_active

    def _routing(self, x: dict, *, learn: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(raw, g(x))`` for ``x``; reuses the last call's result when ``x`` is the instance just
        predicted (prequential evaluation predicts, then learns, the same ``x``, and nothing
        changes between), so an instance is encoded and routed once."""
        n_active = self._n_active()
        if self._cache is not None:
            cached_x, cached_active, raw, complete, weights = self._cache
            if cached_active == n_active and cached_x == x and (complete or not learn):
                return raw, weights
        raw, complete = self._router.encode(x, learn=learn)
        weights = self._router.route(raw, n_active)
        self._cache = (dict(x), n_active, raw, complete, weights)
        return raw, weights

    # -- river API ----------------------------------------------------------------------------
    def learn_one(self, x: dict, y: base.typing.ClfTarget) -> None:
        _check_instance(x)
        if y is None:
            raise InputError("DriftMoEClassifier.learn_one: y is None, expected a class label")
        if self._router is None:
            self._initialise(x)
        if y not in self._class_index:
            if self.variant == "task" and len(self._classes) >= self.max_classes:
                raise InputError(f"DriftMoEClassifier: class {y!r} would be class number {len(self._classes) + 1}, "
                                 f"but max_classes={self.max_classes}; raise max_classes")
            self._class_index[y] = len(self._classes)
            self._classes.append(y)
            self._pool.add_class(self._expert_template())
        y_index = self._class_index[y]
        raw, weights = self._routing(x, learn=True)
        mask = self._pool.router_target(x, self._classes, y_index)
        self._router.observe(raw, mask, self._n_active())
        self._pool.learn(x, y, y_index, weights)
        self._cache = None

    def predict_proba_one(self, x: dict) -> dict[base.typing.ClfTarget, float]:
        _check_instance(x)
        if not self._classes:
            return {}
        _, weights = self._routing(x)
        proba = self._pool.predict(x, self._classes, weights)
        return dict(zip(self._classes, proba.tolist()))

    def gate_weights_one(self, x: dict) -> dict[int, float]:
        """The router's weight of each expert for ``x`` (``{}`` before any learning)."""
        _check_instance(x)
        if self._router is None:
            return {}
        _, weights = self._routing(x)
        return dict(enumerate(weights.tolist()))

    @property
    def _raw_memory_usage(self) -> int:
        extra = 0 if self._router is None else self._router.tensor_bytes()
        return super()._raw_memory_usage + extra

    @classmethod
    def _unit_test_params(cls):
        yield {"variant": "data", "seed": 1}
        yield {"variant": "task", "seed": 1}


def _check_instance(x: object) -> None:
    if not isinstance(x, dict):
        raise InputError(f"x must be a dict of features, got {type(x).__name__}")


@register_model("driftmoe-data", config=DriftMoEConfig(variant="data"),
                summary="DriftMoE MoE-Data: 12 Hoeffding-tree experts + SoftGate router (river classifier)")
def driftmoe_data(config: DriftMoEConfig) -> DriftMoEClassifier:
    """DriftMoE MoE-Data: 12 multi-class Hoeffding-tree experts, top-3 trained, top-1 predicts."""
    return DriftMoEClassifier.from_config(config)


@register_model("driftmoe-task", config=DriftMoEConfig(variant="task"),
                summary="DriftMoE MoE-Task: one-vs-rest Hoeffding-tree experts + SoftGate router (river classifier)")
def driftmoe_task(config: DriftMoEConfig) -> DriftMoEClassifier:
    """DriftMoE MoE-Task: one binary one-vs-rest Hoeffding tree per class, router-weighted."""
    return DriftMoEClassifier.from_config(config)
