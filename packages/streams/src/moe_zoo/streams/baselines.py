"""The models of the benchmark, by name: DriftMoE's two paper variants and the project's ``plus``
variant, and river's adaptive learners.

Baselines (river 0.26, its defaults unless stated): ``arf`` Adaptive Random Forest, ``srp``
Streaming Random Patches, ``levbag`` Leveraging Bagging, each with 10 members (the issue's
ARF(10); the paper's ensembles had 100) whose trees are river's ensemble default
``HoeffdingTree(grace_period=50, delta=0.01)``; ``hat`` Hoeffding Adaptive Tree and ``ht`` a plain
Hoeffding tree with the paper's expert settings (grace period 50, split confidence 1e-7), i.e.
one DriftMoE expert on its own.
"""

from __future__ import annotations

from collections.abc import Callable

from river import base, ensemble, forest, tree

from moe_zoo.core import InputError
from moe_zoo.streams.model import DriftMoEClassifier

ENSEMBLE_SIZE = 10


def _member_tree() -> tree.HoeffdingTreeClassifier:
    return tree.HoeffdingTreeClassifier(grace_period=50, delta=0.01)


MODELS: dict[str, tuple[str, Callable[[int], base.Classifier]]] = {
    "driftmoe-plus": ("DriftMoE+ (project extension: 10 adaptive HT experts, Poisson(6), ADWIN, router-weighted mixture)",
                      lambda seed: DriftMoEClassifier(variant="plus", seed=seed)),
    "driftmoe-data": ("DriftMoE MoE-Data (12 HT experts, top-3 learn)",
                      lambda seed: DriftMoEClassifier(variant="data", seed=seed)),
    "driftmoe-task": ("DriftMoE MoE-Task (one-vs-rest HT per class, router predicts)",
                      lambda seed: DriftMoEClassifier(variant="task", seed=seed)),
    "arf": (f"Adaptive Random Forest ({ENSEMBLE_SIZE} trees)",
            lambda seed: forest.ARFClassifier(n_models=ENSEMBLE_SIZE, seed=seed)),
    "srp": (f"Streaming Random Patches ({ENSEMBLE_SIZE} trees)",
            lambda seed: ensemble.SRPClassifier(model=_member_tree(), n_models=ENSEMBLE_SIZE, seed=seed)),
    "levbag": (f"Leveraging Bagging ({ENSEMBLE_SIZE} trees)",
               lambda seed: ensemble.LeveragingBaggingClassifier(model=_member_tree(), n_models=ENSEMBLE_SIZE,
                                                                 seed=seed)),
    "hat": ("Hoeffding Adaptive Tree", lambda seed: tree.HoeffdingAdaptiveTreeClassifier(
        grace_period=50, delta=1e-7, seed=seed)),
    "ht": ("Hoeffding tree (one expert's settings)", lambda seed: tree.HoeffdingTreeClassifier(
        grace_period=50, delta=1e-7)),
}


def list_benchmark_models() -> list[str]:
    return list(MODELS)


def make_model(name: str, seed: int) -> base.Classifier:
    """A fresh model of the benchmark by name (``driftmoe-data``, ``arf``, ...)."""
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name][1](seed)


def describe(name: str) -> str:
    return MODELS[name][0]
