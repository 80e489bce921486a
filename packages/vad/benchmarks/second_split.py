"""A check on other footage: the built-in data cut the other way round (train clips from frames
235-795 of vtest.avi, test clips from frames 0-235, never seen in training), GS-MoE against the
MIL baseline (and the single-expert ablation on GS-MoE's encoder) on the same seeds. Prints
per-seed frame ROC-AUC and the paired difference.

``uv run --locked --no-sync python packages/vad/benchmarks/second_split.py [--seeds 0 1 2 3 4]
[--encoder-ema 0.99] [--encoder-lr 3e-4] [--encoder-steps 1000] [--encoder-layers 0] [--default-split]`` (about 1.5
minutes per seed on 2 free cores; the features of this split are cached like the default's). The
encoder options change stage 1 (``--encoder-ema 0``: no weight average; ``--encoder-layers 2``:
UR-DMU's self-attention layers in the task encoder); ``--default-split`` runs
the same comparison on the default split.
"""

import argparse

import numpy as np
import torch

from moe_zoo.core.reporting import format_mean_std
from moe_zoo.vad.builtin import SECOND_SPLIT, BuiltinConfig, load_builtin
from moe_zoo.vad.evaluate import evaluate
from moe_zoo.vad.model import GSMoEConfig
from moe_zoo.vad.train import TrainConfig, model_config_for, train

METHODS = {"GS-MoE": ("gsmoe", "gsmoe"), "single model, no class experts": ("single", "gsmoe"),
           "task encoder only (UR-DMU)": ("gsmoe", "urdmu"), "MIL ranking (Sultani et al.)": ("mil", "mil")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--encoder-ema", type=float, default=TrainConfig().encoder_ema)
    parser.add_argument("--encoder-lr", type=float, default=TrainConfig().encoder_lr)
    parser.add_argument("--encoder-steps", type=int, default=TrainConfig().encoder_steps)
    parser.add_argument("--encoder-layers", type=int, default=GSMoEConfig().encoder_layers)
    parser.add_argument("--default-split", action="store_true", help="the default split instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    split = BuiltinConfig() if args.default_split else SECOND_SPLIT
    train_set, test = load_builtin("train", split), load_builtin("test", split, progress=False)
    auc: dict[str, list[float]] = {label: [] for label in METHODS}
    architecture = model_config_for(train_set, encoder_layers=args.encoder_layers)
    for seed in args.seeds:
        config = TrainConfig(seed=seed, encoder_ema=args.encoder_ema, encoder_lr=args.encoder_lr,
                             encoder_steps=args.encoder_steps)
        models = {"gsmoe": train(train_set, config, architecture, progress=False).model,
                  "mil": train(train_set, config.replace(variant="mil"), progress=False).model}
        models["single"] = train(train_set, config.replace(variant="single"), architecture, progress=False,
                                 encoder_from=models["gsmoe"]).model  # same stage-1 encoder
        for label, (variant, scored) in METHODS.items():
            auc[label].append(evaluate(models[variant], test, variant=scored, device="cpu")["auc"])
        print(f"seed {seed}: " + ", ".join(f"{label} {values[-1]:.4f}" for label, values in auc.items()), flush=True)
    for label, values in auc.items():
        print(f"{label}: frame ROC-AUC {format_mean_std(values, 4)}")
    delta = np.subtract(auc["GS-MoE"], auc["MIL ranking (Sultani et al.)"])
    print(f"GS-MoE - MIL (paired): {format_mean_std(delta, 4)}, GS-MoE ahead on {int((delta > 0).sum())} / {len(delta)} seeds")


if __name__ == "__main__":
    main()
