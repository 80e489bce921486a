"""How often stage 1 (the UR-DMU task encoder) fails: its coarse-score frame ROC-AUC on the
built-in test split over many seeds, for a given learning rate, number of steps and weight average.

``uv run --locked --no-sync python packages/vad/benchmarks/encoder_stability.py [--seeds 10]
[--lr 3e-4] [--steps 1000] [--encoder-ema 0.99] [--encoder-layers 0] [--second-split]`` (about 35 s
per seed at 1000 steps with UR-DMU's two self-attention layers, ``--encoder-layers 2``, on a free
core). Prints one line per seed, then mean ± std, the minimum and the number of seeds below 0.8.
"""

import argparse

import numpy as np
import torch

from moe_zoo.core.reporting import format_mean_std
from moe_zoo.vad.builtin import SECOND_SPLIT, BuiltinConfig, load_builtin
from moe_zoo.vad.evaluate import evaluate
from moe_zoo.vad.model import GSMoEConfig
from moe_zoo.vad.train import TrainConfig, model_config_for, train


def main() -> None:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1")
    parser.add_argument("--lr", type=float, default=defaults.encoder_lr)
    parser.add_argument("--steps", type=int, default=defaults.encoder_steps)
    parser.add_argument("--encoder-ema", type=float, default=defaults.encoder_ema)
    parser.add_argument("--encoder-layers", type=int, default=GSMoEConfig().encoder_layers)
    parser.add_argument("--second-split", action="store_true", help="train 235-795, test 0-235")
    args = parser.parse_args()
    torch.set_num_threads(1)
    split = SECOND_SPLIT if args.second_split else BuiltinConfig()
    train_set, test = load_builtin("train", split), load_builtin("test", split, progress=False)
    aucs = []
    for seed in range(args.seeds):
        config = TrainConfig(variant="urdmu", seed=seed, encoder_lr=args.lr, encoder_steps=args.steps,
                             encoder_ema=args.encoder_ema)
        model = train(train_set, config, model_config_for(train_set, encoder_layers=args.encoder_layers),
                      progress=False).model
        aucs.append(evaluate(model, test, variant="urdmu", device="cpu")["auc"])
        print(f"seed {seed}: task encoder frame ROC-AUC {aucs[-1]:.4f}", flush=True)
    print(f"lr {args.lr:g}, {args.steps} steps, encoder_ema {args.encoder_ema:g}, "
          f"{args.encoder_layers} self-attention layers: {format_mean_std(aucs, 4)}, "
          f"min {min(aucs):.4f}, {int((np.array(aucs) < 0.8).sum())} / {len(aucs)} seeds below 0.8")


if __name__ == "__main__":
    main()
