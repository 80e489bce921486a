"""HoME: hierarchy of multi-gate experts for multi-task recommendation, with MMoE/PLE baselines.

    from moe_zoo import recsys
    result = recsys.train(dataset="movielens", model="home")        # fit + test metrics
    recsys.evaluate(result.model, result.splits.test).metrics        # per-task AUC / GAUC / logloss
    recsys.predict("home", rows)                                      # shipped weights, per-task probabilities
"""

from moe_zoo.recsys.data import (
    adult,
    clothing,
    fetch_builtin_data,
    load_dataset,
    movielens,
    movielens_multitask,
    read_kuairand,
    synthetic_mmoe,
)
from moe_zoo.recsys.dataset import MultiTaskData, Splits, TaskSpec
from moe_zoo.recsys.diagnostics import ExpertHealth, expert_health
from moe_zoo.recsys.model import (
    PLE,
    HoME,
    HoMEConfig,
    MMoE,
    MMoEConfig,
    PLEConfig,
    RecsysConfig,
    SharedBottom,
    SharedBottomConfig,
)
from moe_zoo.recsys.predict import load, predict
from moe_zoo.recsys.schema import FeatureSchema
from moe_zoo.recsys.train import TrainConfig, evaluate, fit, train

__all__ = [
    "PLE", "ExpertHealth", "FeatureSchema", "HoME", "HoMEConfig", "MMoE", "MMoEConfig", "MultiTaskData", "PLEConfig",
    "RecsysConfig", "SharedBottom", "SharedBottomConfig", "Splits", "TaskSpec", "TrainConfig", "adult", "clothing",
    "evaluate", "expert_health", "fetch_builtin_data", "fit", "load", "load_dataset", "movielens", "movielens_multitask", "predict",
    "read_kuairand", "synthetic_mmoe", "train",
]
