"""DriftMoE (Aspis et al., 2025) as a river classifier: the paper's two variants and the project's
extension.

Per instance (test-then-train, as in the paper's co-training loop):

1. the router scores the experts: ``g(x) = softmax(MLP(x) / 0.8)`` (moe-core ``SoftGate``,
   evaluated through a NumPy snapshot, :mod:`moe_zoo.streams.router`);
2. every expert is asked once (:meth:`~moe_zoo.streams.experts.DataExperts.evaluate`); that one
   evaluation serves the prediction, the router's target and the experts' drift detectors;
3. prediction: MoE-Data takes the class distribution of the highest-weight expert,
   ``p(y | x) = p_{e*}(y | x)``, ``e* = argmax_e g_e(x)`` (the paper's rule; ``combine="mixture"``
   gives ``sum_e g_e(x) p_e(y | x)``); MoE-Task predicts with the router alone, ``p(y = c) = g_c(x)``
   (the reference code's rule; ``combine="gated"`` gives ``g_c s_c / sum_k g_k s_k``);
4. the router's target is the correctness mask of the experts' answers *before* they learn
   (MoE-Data: every expert whose argmax is ``y``, else the one with the highest ``P_e(y)``;
   MoE-Task: ``onehot(y)``, :mod:`moe_zoo.streams.losses`); every ``batch_size`` instances (MoE-Data
   256, MoE-Task 1, as the reference code) the router takes one Adam step (lr 2e-3) on the mean BCE
   of its logits against the buffered masks;
5. the experts learn ``(x, y)``: MoE-Data's top-3 experts by ``g(x)``, all of MoE-Task's
   one-vs-rest trees (label ``1[y = c]``).

Experts are river Hoeffding trees with the paper's grace period 50 and split confidence 1e-7
(naive-Bayes-adaptive leaves, MOA's and river's default).

``variant="plus"`` is this project's extension, not the paper's: MoE-Data's structure with 10
experts (not 12; as many as ARF(10)'s members), each learning every instance, that learn and forget like the members of
Leveraging Bagging and ARF (Poisson(6) instance weights, split confidence 0.01, all features,
per-expert ADWIN warning/drift detection with background trees, :mod:`moe_zoo.streams.adaptive`)
on river's Hoeffding tree with vectorised leaves (:mod:`moe_zoo.streams.fast_tree`, ``tree="fast"``),
mixture prediction, router inputs standardised once with the first mini-batch's statistics, and
a warm start (uniform gate, every expert learns until the router's first update). Each change is
a parameter, so any of them can be switched on or off in any variant (``None`` = the variant's
default, :data:`VARIANT_DEFAULTS`). See the README for every choice the paper leaves open.
"""

from __future__ import annotations

import functools
import math
import numbers
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from river import base, tree
from river.forest.adaptive_random_forest import BaseTreeClassifier as ARFTree

from moe_zoo.core import Config, InputError, register_model, resolve_device
from moe_zoo.streams.adaptive import AdaptiveExperts, VectorAdaptiveExperts
from moe_zoo.streams.experts import DataExperts, TaskExperts
from moe_zoo.streams.fast_tree import GRACE_UNITS, FastHoeffdingTreeClassifier, LeafTable
from moe_zoo.streams.router import FeatureEncoder, OnlineRouter
from moe_zoo.streams.splitter import FastGaussianSplitter

VARIANTS = ("data", "task", "plus")
COMBINE_RULES = {"data": ("top1", "mixture"), "plus": ("top1", "mixture"), "task": ("router", "gated")}
LEAF_PREDICTIONS = ("mc", "nb", "nba")
SCALINGS = ("none", "running", "frozen")
TREES = ("river", "fast")
_PAPER = {"n_experts": 12, "batch_size": 256, "delta": 1e-7, "scaling": "none", "lam": 0.0, "detect": False, "warm_start": False,
          "max_features": "all", "tree": "river", "grace_unit": "weight"}
VARIANT_DEFAULTS: dict[str, dict] = {
    "data": _PAPER | {"top_k": 3, "combine": "top1"},
    "task": _PAPER | {"top_k": None, "combine": "router", "batch_size": 1},
    "plus": {"n_experts": 10, "top_k": None, "combine": "mixture", "batch_size": 256, "delta": 0.01, "scaling": "frozen",
             "lam": 6.0, "detect": True, "warm_start": True, "max_features": "all", "tree": "fast",
             "grace_unit": "weight"},
}
DEFAULT_SEED = 0


@dataclass(frozen=True)
class DriftMoEConfig(Config):
    """Hyper-parameters of :class:`DriftMoEClassifier` (``None``: the variant's default)."""

    variant: str = "data"
    n_experts: int | None = None
    top_k: int | None = None
    hidden: tuple[int, ...] = (256, 128)
    dropout: float = 0.2
    temperature: float = 0.8
    lr: float = 2e-3
    batch_size: int | None = None
    grace_period: int = 50
    delta: float | None = None
    leaf_prediction: str = "nba"
    combine: str | None = None
    scaling: str | None = None
    lam: float | None = None
    detect: bool | None = None
    warm_start: bool | None = None
    max_features: str | int | None = None
    tree: str | None = None
    grace_unit: str | None = None
    max_classes: int = 32
    seed: int = DEFAULT_SEED
    device: str = "cpu"


class DriftMoEClassifier(base.Classifier):
    """DriftMoE: a neural router co-trained online with a pool of Hoeffding-tree experts.

    Parameters (``None``: the variant's default, :data:`VARIANT_DEFAULTS`)
    ----------
    variant
        ``"data"`` (MoE-Data: ``n_experts`` multi-class trees that specialise on data regimes),
        ``"task"`` (MoE-Task: one binary one-vs-rest tree per class), both as published, or
        ``"plus"`` (the project's extension of MoE-Data, see the module docstring).
    n_experts
        Number of MoE-Data / plus experts (paper: 12; plus: 10). MoE-Task has one expert per class.
    top_k
        Experts that learn each instance, by gate weight (MoE-Data: 3; plus: all ``n_experts``).
    hidden
        Router MLP hidden widths (paper: 256, 128).
    dropout
        Dropout after the router's first hidden layer (paper: 0.2).
    temperature
        Softmax temperature of the gate weights (paper: 0.8).
    lr
        Adam learning rate of the router (paper: 2e-3).
    batch_size
        Instances per router update (reference code: MoE-Data 256, MoE-Task 1; plus: 256).
    grace_period
        Hoeffding-tree grace period (paper: 50).
    delta
        Hoeffding-tree split confidence (paper: 1e-7; plus: 0.01, as ARF's members).
    leaf_prediction
        Hoeffding-tree leaf predictor: ``"nba"`` (MOA's default, used by the paper), ``"nb"``, ``"mc"``.
    combine
        MoE-Data / plus: ``"top1"`` (the highest-weight expert, the paper's rule) or ``"mixture"``
        (``sum_e g_e p_e``, plus). MoE-Task: ``"router"`` (the router alone, the reference code) or
        ``"gated"`` (``g_c s_c``, normalised).
    scaling
        Router inputs: ``"none"`` (raw, the reference), ``"running"`` (running standardisation),
        ``"frozen"`` (standardised with the first mini-batch's statistics, plus).
    lam
        Poisson rate of the learning experts' instance weights (``0``: weight 1, the paper; plus: 6).
    detect
        Per-expert ADWIN warning/drift detection with background trees (plus). Not for MoE-Task.
    warm_start
        Uniform initial gate and every expert learning until the router's first update (plus).
    max_features
        Features each tree leaf may split on: ``"all"`` (the paper's Hoeffding trees), ``"sqrt"``
        (a random ``round(sqrt(d))`` per leaf, ARF's trees) or a count (plus: ``"all"``). Not for MoE-Task.
    tree
        The experts' Hoeffding tree: ``"river"`` (river's ``HoeffdingTreeClassifier``, the paper
        variants) or ``"fast"`` (:class:`~moe_zoo.streams.fast_tree.FastHoeffdingTreeClassifier`, the
        same tree with vectorised leaves, plus; streams with non-numeric features fall back to
        river's). Not for MoE-Task.
    grace_unit
        When a leaf tries to split: ``"weight"`` (river's rule: its weight has grown by
        ``grace_period``) or ``"instances"`` (it has learned ``grace_period`` instances, whatever
        their Poisson weights; fewer split attempts). ``"instances"`` needs ``tree="fast"``; where
        ``"fast"`` falls back to river's trees (non-numeric features), the grace period counts weight.
    max_classes
        MoE-Task only: router outputs reserved for classes (experts appear with their class).
    seed
        Seed of the router's initialisation and dropout and of the Poisson weights (default 0:
        the same seed gives the same predictions).
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

    def __init__(self, variant: str = "data", n_experts: int | None = None, top_k: int | None = None,
                 hidden: tuple[int, ...] = (256, 128), dropout: float = 0.2, temperature: float = 0.8, lr: float = 2e-3,
                 batch_size: int | None = None, grace_period: int = 50, delta: float | None = None,
                 leaf_prediction: str = "nba", combine: str | None = None, scaling: str | None = None,
                 lam: float | None = None, detect: bool | None = None, warm_start: bool | None = None,
                 max_features: str | int | None = None, tree: str | None = None, grace_unit: str | None = None,
                 max_classes: int = 32,
                 seed: int = DEFAULT_SEED, device: str = "cpu") -> None:
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
        self.scaling = scaling
        self.lam = lam
        self.detect = detect
        self.warm_start = warm_start
        self.max_features = max_features
        self.tree = tree
        self.grace_unit = grace_unit
        self.max_classes = max_classes
        self.seed = seed
        self.device = device
        if variant not in VARIANTS:
            raise InputError(f"DriftMoEClassifier: variant must be one of {VARIANTS}, got {variant!r}")
        self.settings = self._resolve()
        self._validate_params()
        self._rng = random.Random(seed)
        self._classes: list = []
        self._class_index: dict = {}
        self._pool: DataExperts | TaskExperts | None = None
        self._router: OnlineRouter | None = None
        self._cache: tuple | None = None

    # -- parameters ---------------------------------------------------------------------------
    def _resolve(self) -> dict:
        """The effective settings: each ``None`` parameter replaced by the variant's default."""
        defaults = VARIANT_DEFAULTS[self.variant]
        settings = {k: defaults[k] if getattr(self, k) is None else getattr(self, k) for k in defaults}
        if self.variant == "plus" and settings["top_k"] is None:  # plus: every expert learns every instance
            settings["top_k"] = settings["n_experts"]
        return settings

    def _validate_params(self) -> None:
        s = self.settings
        task = self.variant == "task"
        checks = [
            (isinstance(s["n_experts"], int) and s["n_experts"] >= 1, f"n_experts must be >= 1, got {s['n_experts']!r}"),
            (task or (isinstance(s["top_k"], int) and 1 <= s["top_k"] <= s["n_experts"]),
             f"top_k must be in [1, n_experts={s['n_experts']}], got {s['top_k']!r}"),
            (len(tuple(self.hidden)) >= 1 and all(int(h) >= 1 for h in self.hidden),
             f"hidden must be positive widths, got {self.hidden!r}"),
            (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout!r}"),
            (self.temperature > 0, f"temperature must be > 0, got {self.temperature!r}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr!r}"),
            (isinstance(s["batch_size"], int) and s["batch_size"] >= 1, f"batch_size must be >= 1, got {s['batch_size']!r}"),
            (isinstance(self.grace_period, int) and self.grace_period >= 1,
             f"grace_period must be >= 1, got {self.grace_period!r}"),
            (0 < s["delta"] < 1, f"delta must be in (0, 1), got {s['delta']!r}"),
            (self.leaf_prediction in LEAF_PREDICTIONS,
             f"leaf_prediction must be one of {LEAF_PREDICTIONS}, got {self.leaf_prediction!r}"),
            (s["combine"] in COMBINE_RULES[self.variant],
             f"combine must be one of {COMBINE_RULES[self.variant]} for variant={self.variant!r}, got {s['combine']!r}"),
            (s["scaling"] in SCALINGS, f"scaling must be one of {SCALINGS}, got {s['scaling']!r}"),
            (s["lam"] >= 0, f"lam must be >= 0, got {s['lam']!r}"),
            (not task or (s["lam"] == 0 and not s["detect"] and not s["warm_start"] and s["max_features"] == "all"
                          and s["tree"] == "river"),
             "lam, detect, warm_start, max_features and tree='fast' apply to variants 'data' and 'plus' only"),
            (s["tree"] in TREES, f"tree must be one of {TREES}, got {s['tree']!r}"),
            (s["grace_unit"] in GRACE_UNITS, f"grace_unit must be one of {GRACE_UNITS}, got {s['grace_unit']!r}"),
            (s["grace_unit"] == "weight" or s["tree"] == "fast", "grace_unit='instances' needs tree='fast'"),
            (s["max_features"] in ("all", "sqrt") or (isinstance(s["max_features"], int) and s["max_features"] >= 1),
             f"max_features must be 'all', 'sqrt' or a count >= 1, got {s['max_features']!r}"),
            (isinstance(self.max_classes, int) and self.max_classes >= 2, f"max_classes must be >= 2, got {self.max_classes!r}"),
            (isinstance(self.seed, int) and self.seed >= 0, f"seed must be an integer >= 0, got {self.seed!r}"),
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
        return tree.HoeffdingTreeClassifier(grace_period=self.grace_period, delta=self.settings["delta"],
                                            leaf_prediction=self.leaf_prediction, splitter=FastGaussianSplitter())

    def _subspace_size(self, n_features: int) -> int | None:
        m = self.settings["max_features"]
        if m == "all":
            return None
        return min(max(1, round(math.sqrt(n_features))) if m == "sqrt" else m, max(n_features, 1))

    def _expert_factory(self, n_features: int) -> Callable[[], base.Classifier]:
        """New MoE-Data / plus experts: the template's clones, or ARF's random-subspace trees
        (``max_features``), which share one seeded random source as ARF's members do."""
        m = self._subspace_size(n_features)
        if m is None:
            return self._expert_template().clone
        rng = random.Random(self._rng.getrandbits(63))
        return functools.partial(ARFTree, max_features=m, grace_period=self.grace_period,
                                 delta=self.settings["delta"], leaf_prediction=self.leaf_prediction, rng=rng,
                                 splitter=FastGaussianSplitter())

    def _initialise(self, x: dict) -> None:
        s = self.settings
        n_router_outputs = self.max_classes if self.variant == "task" else s["n_experts"]
        self._router = OnlineRouter(FeatureEncoder.from_example(x), n_router_outputs, hidden=tuple(self.hidden),
                                    dropout=self.dropout, temperature=self.temperature, lr=self.lr,
                                    batch_size=s["batch_size"], seed=self._rng.getrandbits(63),
                                    device=resolve_device(self.device), scaling=s["scaling"],
                                    uniform_start=s["warm_start"])
        if self.variant == "task":
            self._pool = TaskExperts(s["combine"])
        elif s["tree"] == "fast" and all(isinstance(v, numbers.Number) for v in x.values()):
            self._pool = self._fast_pool(len(x))
        elif s["lam"] > 0 or s["detect"] or s["warm_start"] or s["max_features"] != "all":
            self._pool = AdaptiveExperts(self._expert_factory(len(x)), s["n_experts"], s["top_k"], s["combine"],
                                         lam=s["lam"], detect=s["detect"], seed=self._rng.getrandbits(63))
        else:
            self._pool = DataExperts(self._expert_factory(len(x)), s["n_experts"], s["top_k"], s["combine"])

    def _fast_pool(self, n_features: int) -> VectorAdaptiveExperts:
        """The experts as :class:`FastHoeffdingTreeClassifier` trees sharing one leaf table (each
        new tree, background trees included, draws its subspace seed from one seeded source)."""
        s, table = self.settings, LeafTable(self.leaf_prediction)
        factory = _FastTreeFactory(table, self.grace_period, s["delta"], self.leaf_prediction,
                                   self._subspace_size(n_features), random.Random(self._rng.getrandbits(63)),
                                   s["grace_unit"])
        return VectorAdaptiveExperts(factory, table, s["n_experts"], s["top_k"], s["combine"], lam=s["lam"],
                                     detect=s["detect"], seed=self._rng.getrandbits(63))

    def _n_active(self) -> int | None:
        return self._pool.n_active if self.variant == "task" else None

    def _evaluation(self, x: dict, *, learn: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(raw, g(x), rows, abstain)`` for ``x``: its encoding, gate weights and the experts'
        one evaluation. Reuses the last call's result when ``x`` is the instance just predicted
        (prequential evaluation predicts, then learns, the same ``x``, and nothing changes
        between), so an instance is encoded, routed and shown to each expert once."""
        n_active, n_classes = self._n_active(), len(self._classes)
        if self._cache is not None:
            cached_x, key, complete, result = self._cache
            if key == (n_active, n_classes) and cached_x == x and (complete or not learn):
                return result
        raw, complete = self._router.encode(x, learn=learn)
        weights = self._router.route(raw, n_active)
        rows, abstain = self._pool.evaluate(x, self._classes)
        result = (raw, weights, rows, abstain)
        self._cache = (dict(x), (n_active, n_classes), complete, result)
        return result

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
        raw, weights, rows, abstain = self._evaluation(x, learn=True)
        if isinstance(self._pool, AdaptiveExperts):  # warm start: the first mini-batch trains every expert
            self._pool.warm = self.settings["warm_start"] and self._router.steps == 0
        self._router.observe(raw, self._pool.router_target(rows, abstain, y_index), self._n_active())
        self._pool.learn(x, y, y_index, weights, rows, abstain)
        self._cache = None

    def predict_proba_one(self, x: dict) -> dict[base.typing.ClfTarget, float]:
        _check_instance(x)
        if not self._classes:
            return {}
        _, weights, rows, abstain = self._evaluation(x)
        proba = self._pool.predict(rows, abstain, weights)
        return dict(zip(self._classes, proba.tolist()))

    def gate_weights_one(self, x: dict) -> dict[int, float]:
        """The router's weight of each expert for ``x`` (``{}`` before any learning)."""
        _check_instance(x)
        if self._router is None:
            return {}
        return dict(enumerate(self._evaluation(x)[1].tolist()))

    @property
    def _raw_memory_usage(self) -> int:
        extra = 0 if self._router is None else self._router.tensor_bytes()
        return super()._raw_memory_usage + extra

    @classmethod
    def _unit_test_params(cls):
        # river's check_estimator runs each on many small data sets: fewer experts keep it fast
        yield {"variant": "data", "n_experts": 4, "seed": 1}
        yield {"variant": "task", "seed": 1}
        yield {"variant": "plus", "n_experts": 3, "seed": 1}


@dataclass
class _FastTreeFactory:
    """New vectorised experts sharing ``table``, each drawing its subspace seed from ``rng`` (a
    picklable callable: the model must pickle, as river's estimators do)."""

    table: LeafTable
    grace_period: int
    delta: float
    leaf_prediction: str
    max_features: int | None
    rng: random.Random
    grace_unit: str = "weight"

    def __call__(self) -> FastHoeffdingTreeClassifier:
        return FastHoeffdingTreeClassifier(grace_period=self.grace_period, delta=self.delta,
                                           leaf_prediction=self.leaf_prediction, max_features=self.max_features,
                                           seed=self.rng.getrandbits(63), table=self.table, grace_unit=self.grace_unit)


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


@register_model("driftmoe-plus", config=DriftMoEConfig(variant="plus"),
                summary="DriftMoE+ (project extension): adaptive Poisson-weighted HT experts, ADWIN, mixture (river)")
def driftmoe_plus(config: DriftMoEConfig) -> DriftMoEClassifier:
    """DriftMoE+ (this project's extension, not the paper's): MoE-Data with ARF-like adaptive experts."""
    return DriftMoEClassifier.from_config(config)
