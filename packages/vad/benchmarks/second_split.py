"""A check on other footage: the built-in data cut the other way round (train clips from frames
235-795 of vtest.avi, test clips from frames 0-235, never seen in training), GS-MoE against the
MIL baseline on the same seeds. Prints per-seed frame ROC-AUC and the paired difference.

``uv run --locked --no-sync python packages/vad/benchmarks/second_split.py [--seeds 0 1 2 3 4]``
(about 1 minute per seed on 2 free cores; the features of this split are cached like the default's)
"""

import argparse

import numpy as np
import torch

from moe_zoo.core.reporting import format_mean_std
from moe_zoo.vad.builtin import BuiltinConfig, load_builtin
from moe_zoo.vad.evaluate import frame_scores
from moe_zoo.vad.metrics import frame_metrics
from moe_zoo.vad.train import TrainConfig, train

SPLIT = BuiltinConfig(train_frames=(235, 795), test_frames=(0, 235))
METHODS = {"GS-MoE": ("gsmoe", "gsmoe"), "task encoder only (UR-DMU)": ("gsmoe", "urdmu"),
           "MIL ranking (Sultani et al.)": ("mil", "mil")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    torch.set_num_threads(1)
    train_set, test = load_builtin("train", SPLIT), load_builtin("test", SPLIT, progress=False)
    auc: dict[str, list[float]] = {label: [] for label in METHODS}
    for seed in args.seeds:
        models = {v: train(train_set, TrainConfig(variant=v, seed=seed), progress=False).model for v in ("gsmoe", "mil")}
        for label, (variant, scored) in METHODS.items():
            auc[label].append(frame_metrics(frame_scores(models[variant], test, variant=scored, device="cpu"),
                                            test.videos)["auc"])
        print(f"seed {seed}: " + ", ".join(f"{label} {values[-1]:.4f}" for label, values in auc.items()), flush=True)
    for label, values in auc.items():
        print(f"{label}: frame ROC-AUC {format_mean_std(values, 4)}")
    delta = np.subtract(auc["GS-MoE"], auc["MIL ranking (Sultani et al.)"])
    print(f"GS-MoE - MIL (paired): {format_mean_std(delta, 4)}, GS-MoE ahead on {int((delta > 0).sum())} / {len(delta)} seeds")


if __name__ == "__main__":
    main()
