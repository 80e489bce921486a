"""``moe-zoo flidar simulate|train|eval|predict|bench|demo``."""

from __future__ import annotations

import argparse
import csv
import time
from importlib.resources import files
from pathlib import Path

from moe_zoo.core.argtypes import non_negative_int, positive_float, positive_int

SHIPPED_WEIGHTS = {"evidence-moe": "weights/evidence_moe.safetensors", "cnn": "weights/cnn.safetensors"}


def _writable(path: str, option: str) -> None:
    from moe_zoo.core import InputError

    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise InputError(f"{option} {path}: folder {folder} does not exist")


def _simulate(args: argparse.Namespace) -> int:
    from moe_zoo.flidar.data import write_tcspc
    from moe_zoo.flidar.simulator import simulate

    _writable(args.out, "--out")
    started = time.perf_counter()
    data = simulate(args.n, seed=args.seed)
    path = write_tcspc(args.out, data)
    print(f"wrote {len(data)} simulated histograms ({data.histograms.shape[1]} bins of {data.bin_ps:.2f} ps) "
          f"with ground truth to {path} in {time.perf_counter() - started:.1f} s")
    return 0


def _train(args: argparse.Namespace) -> int:
    from moe_zoo.core import InputError
    from moe_zoo.flidar.train import TrainConfig, train

    overrides = {k: v for k, v in {"n_train": args.n_train, "expert_steps": args.expert_steps, "lr": args.lr,
                                   "critic_steps": args.critic_steps, "joint_steps": args.joint_steps}.items()
                 if v is not None}
    config = TrainConfig(kind=args.kind, seed=args.seed).replace(**overrides)  # validates the combination
    if args.ship:
        if args.kind not in SHIPPED_WEIGHTS or args.out:
            raise InputError(f"--ship writes the package's weights for {sorted(SHIPPED_WEIGHTS)} and takes no --out")
        out = str(files("moe_zoo.flidar").joinpath(SHIPPED_WEIGHTS[args.kind]))
    else:
        out = args.out or f"flidar-{args.kind}.safetensors"
    _writable(out, "--out")
    if args.state:
        _writable(args.state, "--state")
    result = train(config, checkpoint=out, state_path=args.state, threads=args.threads, progress=not args.quiet,
                   force_restart=args.force_restart)
    print(f"trained {args.kind} in {result.seconds:.0f} s; validation: "
          + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()))
    print(f"checkpoint: {out}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import torch

    from moe_zoo.flidar.metrics import calibration, summarise
    from moe_zoo.flidar.predict import predict
    from moe_zoo.flidar.simulator import simulate

    data = simulate(args.n, seed=args.seed)
    result = predict(data.histograms, args.model)
    truth = data.targets()
    estimate = torch.stack([result.depth_mm, result.lifetime_ns], -1)
    metrics = summarise(estimate, truth)
    print(f"EvidenceMoE on {args.n} simulated histograms (seed {args.seed}):")
    print(f"  depth:    NRMSE {metrics['nrmse_depth']:.4f}  RMSE {metrics['rmse_depth_mm']:.3f} mm")
    print(f"  lifetime: NRMSE {metrics['nrmse_lifetime']:.4f}  RMSE {metrics['rmse_lifetime_ns']:.4f} ns")
    errors = (estimate - truth).abs()
    for j, (name, unc) in enumerate((("depth", result.depth_error_mm), ("lifetime", result.lifetime_error_ns))):
        print(f"  {name} critic calibration: Spearman(expected error, |error|) = "
              f"{calibration(unc, errors[:, j]).spearman:.3f}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from moe_zoo.flidar.predict import predict

    if args.csv:
        _writable(args.csv, "--csv")
    result = predict(args.file, args.model)
    rows = result.rows()
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {len(rows)} predictions to {args.csv}")
        return 0
    print("  #   depth (mm)        lifetime (ns)      u(depth) u(lifetime)")
    for i, row in enumerate(rows[: args.limit]):
        print(f"{i:>3}   {row['depth_mm']:6.2f} ± {row['depth_error_mm']:4.2f}   {row['lifetime_ns']:6.3f} ± "
              f"{row['lifetime_error_ns']:5.3f}    {row['depth_uncertainty']:.3f}    {row['lifetime_uncertainty']:.3f}")
    if len(rows) > args.limit:
        print(f"... {len(rows) - args.limit} more (use --csv)")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from moe_zoo.flidar.benchmark import main

    return main(["--quick"] if args.quick else [])


def _demo(args: argparse.Namespace) -> int:
    from moe_zoo.flidar.demo import run_demo

    print(run_demo(n=args.n, seed=args.seed))
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    sim = verbs.add_parser("simulate", help="write simulated FLiDAR histograms with ground truth (.npz or .h5)")
    sim.add_argument("--n", type=positive_int, default=1000)
    sim.add_argument("--seed", type=non_negative_int, default=0)
    sim.add_argument("--out", required=True, help="output file, .npz or .h5")
    sim.set_defaults(func=_simulate)

    tr = verbs.add_parser("train", help="train EvidenceMoE (or a baseline) on simulated data")
    tr.add_argument("--kind", default="evidence-moe", choices=("evidence-moe", "plain-moe", "cnn"))
    tr.add_argument("--out", help="checkpoint path (default: flidar-<kind>.safetensors)")
    tr.add_argument("--ship", action="store_true",
                    help="overwrite the package's shipped weights (evidence-moe or cnn; how they were made)")
    tr.add_argument("--state", help="resumable training-state file (resumed only with the same settings)")
    tr.add_argument("--force-restart", action="store_true",
                    help="overwrite a --state written with other settings instead of refusing")
    tr.add_argument("--n-train", type=positive_int)
    tr.add_argument("--expert-steps", type=non_negative_int)
    tr.add_argument("--critic-steps", type=non_negative_int)
    tr.add_argument("--joint-steps", type=non_negative_int)
    tr.add_argument("--lr", type=positive_float, help="AdamW learning rate (default 2e-3)")
    tr.add_argument("--seed", type=non_negative_int, default=0)
    tr.add_argument("--threads", type=positive_int, help="torch CPU threads (1 is often fastest on a busy machine)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=_train)

    ev = verbs.add_parser("eval", help="NRMSE and critic calibration on a fresh simulated set")
    ev.add_argument("--model", help="checkpoint path (default: shipped weights)")
    ev.add_argument("--n", type=positive_int, default=4096)
    ev.add_argument("--seed", type=non_negative_int, default=1234)
    ev.set_defaults(func=_eval)

    pr = verbs.add_parser("predict", help="depth, lifetime and uncertainty for a TCSPC file (.npz/.h5)")
    pr.add_argument("file")
    pr.add_argument("--model", help="checkpoint path (default: shipped weights)")
    pr.add_argument("--csv", help="write all predictions to this CSV file")
    pr.add_argument("--limit", type=positive_int, default=20, help="rows to print")
    pr.set_defaults(func=_predict)

    be = verbs.add_parser("bench", help="EvidenceMoE vs baselines over seeds; writes BENCHMARKS.md and figures")
    be.add_argument("--quick", action="store_true", help="small smoke run (writes under benchmarks/quick/, not committed)")
    be.set_defaults(func=_bench)

    de = verbs.add_parser("demo", help="simulate tissue histograms and recover depth and lifetime")
    de.add_argument("--n", type=positive_int, default=2048)
    de.add_argument("--seed", type=non_negative_int, default=7)
    de.set_defaults(func=_demo)

