"""``moe-zoo vad predict|train|eval|bench|demo``."""

from __future__ import annotations

import argparse
import json
from importlib.resources import files

SHIPPED = "weights/gsmoe_builtin.safetensors"


def _features(args: argparse.Namespace, split: str):
    """The built-in split, or a UCF-Crime / XD-Violence feature list given on the command line."""
    if args.list is None:
        from moe_zoo.vad.builtin import load_builtin

        return load_builtin(split, progress=not getattr(args, "quiet", False))
    from moe_zoo.vad.data import load_features_list

    return load_features_list(args.list, dataset=args.dataset, root=args.root, snippet_len=args.snippet_len,
                              gt=getattr(args, "gt", None), annotations=getattr(args, "annotations", None))


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def _predict(args: argparse.Namespace) -> int:
    from moe_zoo.vad.predict import predict

    _threads(args.threads)
    result = predict(args.video, args.model, threshold=args.threshold, plot=args.plot)
    print(result.summary())
    print(f"{result.n_frames} frames in {result.seconds:.1f} s ({result.n_frames / result.seconds:.1f} frames/s)")
    if args.plot:
        print(f"plot: {args.plot}")
    if args.json:
        from moe_zoo.core.reporting import write_text_atomic

        write_text_atomic(args.json, json.dumps(result.to_dict(), indent=1))
        print(f"scores: {args.json}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from moe_zoo.core import InputError
    from moe_zoo.vad.train import TrainConfig, train

    _threads(args.threads)
    if args.ship:
        if args.variant != "gsmoe" or args.out or args.list:
            raise InputError("--ship writes the package's GS-MoE weights from the built-in data; "
                             "it takes no --out, --list or other --variant")
        out = str(files("moe_zoo.vad").joinpath(SHIPPED))
    else:
        out = args.out or f"vad-{args.variant}.safetensors"
    data = _features(args, "train")
    source = "built-in (vtest.avi + injected anomalies)" if args.list is None else str(args.list)
    result = train(data, TrainConfig(variant=args.variant, seed=args.seed), checkpoint=out, state_path=args.state,
                   progress=not args.quiet, metadata={"data": source})
    print(f"trained {args.variant} on {len(data)} videos in {result.seconds:.0f} s; checkpoint: {out}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from moe_zoo.core import load_model
    from moe_zoo.vad.evaluate import evaluate
    from moe_zoo.vad.predict import load_default_model

    _threads(args.threads)
    model = load_model(args.model) if args.model else load_default_model("cpu")
    data = _features(args, "test")
    metrics = evaluate(model, data, variant=args.variant)
    name = "built-in test split" if args.list is None else str(args.list)
    print(f"{type(model).__name__} on {name} ({len(data)} videos):")
    for key, value in metrics.items():
        print(f"  {key:<24} {value:.4f}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from moe_zoo.vad.benchmark import main

    return main(["--quick"] if args.quick else [])


def _demo(args: argparse.Namespace) -> int:
    from moe_zoo.vad.demo import run_demo

    _threads(args.threads)
    print(run_demo(plot_dir=args.plot_dir))
    return 0


def _data_options(parser: argparse.ArgumentParser, *, test: bool) -> None:
    group = parser.add_argument_group("real benchmark features (default: the built-in data)")
    group.add_argument("--list", help="feature list file (UCF-Crime / XD-Violence, RTFM or UR-DMU layout)")
    group.add_argument("--dataset", default="ucf", choices=("ucf", "xd"))
    group.add_argument("--root", help="folder the list's paths are relative to (default: the list's folder)")
    group.add_argument("--snippet-len", type=int, default=16, help="frames per feature snippet (I3D: 16)")
    if test:
        group.add_argument("--gt", help="concatenated frame labels (gt-ucf.npy / gt.npy)")
        group.add_argument("--annotations", help="Temporal_Anomaly_Annotation*.txt or XD_Annotation.txt")


def configure(parser: argparse.ArgumentParser) -> None:
    from moe_zoo.vad.train import VARIANTS

    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    pr = verbs.add_parser("predict", help="per-frame anomaly scores and segments of a video file")
    pr.add_argument("video")
    pr.add_argument("--model", help="checkpoint path (default: the shipped GS-MoE weights)")
    pr.add_argument("--plot", help="save the score-over-time plot to this PNG")
    pr.add_argument("--json", help="write frame scores, segments and gate evidence to this JSON file")
    pr.add_argument("--threshold", type=float, default=0.5)
    pr.add_argument("--threads", type=int, help="torch CPU threads")
    pr.set_defaults(func=_predict)

    tr = verbs.add_parser("train", help="train GS-MoE (or a baseline) on the built-in data or a feature list")
    tr.add_argument("--variant", default="gsmoe", choices=VARIANTS)
    tr.add_argument("--out", help="checkpoint path (default: vad-<variant>.safetensors)")
    tr.add_argument("--ship", action="store_true", help="overwrite the package's shipped weights (how they are made)")
    tr.add_argument("--state", help="resumable training-state file")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--threads", type=int, help="torch CPU threads")
    tr.add_argument("--quiet", action="store_true", help="no progress bars")
    _data_options(tr, test=False)
    tr.set_defaults(func=_train)

    ev = verbs.add_parser("eval", help="frame AUC, AP, AUC on anomalous videos and per-class AUC")
    ev.add_argument("--model", help="checkpoint path (default: the shipped GS-MoE weights)")
    ev.add_argument("--variant", default="gsmoe", choices=VARIANTS, help="'urdmu' scores with the task encoder")
    ev.add_argument("--threads", type=int, help="torch CPU threads")
    _data_options(ev, test=True)
    ev.set_defaults(func=_eval)

    be = verbs.add_parser("bench", help="GS-MoE vs baselines over seeds; writes BENCHMARKS.md and plots")
    be.add_argument("--quick", action="store_true", help="one seed, short schedules (BENCHMARKS.quick.md)")
    be.set_defaults(func=_bench)

    de = verbs.add_parser("demo", help="injected anomalies in real surveillance footage, detected and classified")
    de.add_argument("--plot-dir", help="folder for the demo's plots (default: a temporary folder)")
    de.add_argument("--threads", type=int, help="torch CPU threads")
    de.set_defaults(func=_demo)
