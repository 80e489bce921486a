"""``moe-zoo vad predict|calibrate|train|eval|bench|demo``.

Arguments are checked (paths exist, numbers in range) before the heavy imports (torch, PyAV,
torchvision): a typo costs no model loading.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.resources import files

from moe_zoo.core.argtypes import non_negative_int, positive_float, positive_int
from moe_zoo.core.errors import InputError
from moe_zoo.core.runtime import set_threads
from moe_zoo.core.video import check_file
from moe_zoo.vad.presets import PRESETS, VARIANTS

SHIPPED = "weights/gsmoe_builtin.safetensors"


def _existing_file(path: str | None, what: str) -> None:
    """A clear error for a missing, non-file or empty path (before anything heavy is imported)."""
    if path is not None:
        check_file(path, what)


def _print_warnings(warnings) -> None:
    for warning in warnings:
        print(f"moe-zoo vad: warning: {warning}", file=sys.stderr)


def _features(args: argparse.Namespace, split: str):
    """The built-in split, or a UCF-Crime / XD-Violence feature list given on the command line."""
    if args.list is None:
        if split == "train" and getattr(args, "data", "vtest") == "cameras":
            from moe_zoo.vad.cameras import load_cameras

            return load_cameras()
        from moe_zoo.vad.builtin import load_builtin

        return load_builtin(split, progress=not getattr(args, "quiet", False))
    from moe_zoo.vad.data import load_features_list

    preset = PRESETS.get(getattr(args, "preset", None) or "", {})
    return load_features_list(args.list, dataset=preset.get("dataset", args.dataset), root=args.root,
                              snippet_len=preset.get("snippet_len", args.snippet_len),
                              gt=getattr(args, "gt", None), annotations=getattr(args, "annotations", None))


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def _predict(args: argparse.Namespace) -> int:
    _existing_file(args.video, "video file")
    _existing_file(args.model, "model checkpoint")
    _existing_file(args.calibration, "calibration file")
    if not 0.0 < args.threshold < 1.0:
        raise InputError(f"--threshold must be in (0, 1), got {args.threshold}")
    from moe_zoo.vad.predict import predict

    set_threads(args.threads)
    result = predict(args.video, args.model, threshold=args.threshold, plot=args.plot, fps=args.fps,
                     calibration=args.calibration)
    print("\n".join(line for line in result.summary().splitlines() if not line.startswith("warning: ")))
    _print_warnings(result.warnings)
    print(f"{result.n_frames} frames in {result.seconds:.1f} s ({result.n_frames / result.seconds:.1f} frames/s)")
    if args.plot:
        print(f"plot: {args.plot}")
    if args.json:
        from moe_zoo.core.reporting import write_text_atomic

        write_text_atomic(args.json, json.dumps(result.to_dict(), indent=1))
        print(f"scores: {args.json}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    _existing_file(args.video, "video file")
    _existing_file(args.model, "model checkpoint")
    from moe_zoo.vad.predict import calibrate

    set_threads(args.threads)
    calibration = calibrate(args.video, args.model, fps=args.fps, save=args.out)
    print(f"calibrated on {args.video} ({calibration.n_snippets} snippets of normal activity); "
          f"use: moe-zoo vad predict VIDEO --calibration {args.out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    _existing_file(args.list, "feature list")
    if args.preset and args.list is None:
        raise InputError(f"--preset {args.preset} is for the real benchmark's I3D features: give --list")
    from moe_zoo.vad.train import TrainConfig, train

    set_threads(args.threads)
    if args.ship:
        if args.variant != "gsmoe" or args.out or args.list or args.preset or args.steps_scale \
                or args.batch_size or args.data != "cameras":
            raise InputError("--ship writes the package's GS-MoE weights from the built-in multi-camera data; "
                             "it takes no --out, --list, --preset, --steps-scale, --batch-size, --data or other --variant")
        out = str(files("moe_zoo.vad").joinpath(SHIPPED))
    else:
        out = args.out or f"vad-{args.variant}.safetensors"
    data = _features(args, "train")
    source = str(args.list) if args.list else {
        "cameras": "every real camera found (cameras.py) + augmentation + injected anomalies and tampering",
        "vtest": "built-in (vtest.avi + injected anomalies)"}[args.data]
    train_config, model_config = TrainConfig(variant=args.variant, seed=args.seed), None
    if args.preset:
        from moe_zoo.vad.train import preset_configs

        train_config, model_config = preset_configs(args.preset, data, variant=args.variant, seed=args.seed)
    if args.steps_scale is not None:
        train_config = train_config.scaled(args.steps_scale)
    if args.batch_size is not None:
        train_config = train_config.replace(batch_size=args.batch_size)
    metadata = {"data": source, "preset": args.preset}
    if args.list is None and args.data == "cameras":
        from moe_zoo.vad.cameras import CameraDataConfig, camera_files

        metadata["cameras"] = {name: str(path) for name, path in camera_files().items()}
        metadata["camera_data_config"] = CameraDataConfig().to_dict()
    result = train(data, train_config, model_config, checkpoint=out, state_path=args.state, progress=not args.quiet,
                   metadata=metadata, force_restart=args.force_restart)
    print(f"trained {args.variant} on {len(data)} videos in {result.seconds:.0f} s; checkpoint: {out}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    _existing_file(args.model, "model checkpoint")
    _existing_file(args.list, "feature list")
    from moe_zoo.core import load_model
    from moe_zoo.vad.evaluate import evaluate
    from moe_zoo.vad.predict import load_default_model

    set_threads(args.threads)
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

    return main((["--quick"] if args.quick else []) + (["--speed-only"] if args.speed_only else []))


def _demo(args: argparse.Namespace) -> int:
    from moe_zoo.vad.demo import run_demo

    set_threads(args.threads)
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
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    pr = verbs.add_parser("predict", help="per-frame anomaly scores and segments of a video file")
    pr.add_argument("video")
    pr.add_argument("--model", help="checkpoint path (default: the shipped GS-MoE weights)")
    pr.add_argument("--plot", help="save the score-over-time plot to this PNG")
    pr.add_argument("--json", help="write frame scores, segments and gate evidence to this JSON file")
    pr.add_argument("--threshold", type=float, default=0.5)
    pr.add_argument("--calibration", help="this camera's calibration file (from `moe-zoo vad calibrate`)")
    pr.add_argument("--fps", type=positive_float, help="frame rate to assume instead of the file's")
    pr.add_argument("--threads", type=positive_int, help="torch CPU threads")
    pr.set_defaults(func=_predict)

    ca = verbs.add_parser("calibrate", help="fit one camera's normal baseline from a clip of ordinary activity")
    ca.add_argument("video", help="normal footage of the camera (30 s or more is best)")
    ca.add_argument("--out", required=True, help="calibration file to write (safetensors + JSON header)")
    ca.add_argument("--model", help="checkpoint path (default: the shipped GS-MoE weights)")
    ca.add_argument("--fps", type=positive_float, help="frame rate to assume instead of the file's")
    ca.add_argument("--threads", type=positive_int, help="torch CPU threads")
    ca.set_defaults(func=_calibrate)

    tr = verbs.add_parser("train", help="train GS-MoE (or a baseline) on the built-in data or a feature list")
    tr.add_argument("--variant", default="gsmoe", choices=VARIANTS)
    tr.add_argument("--out", help="checkpoint path (default: vad-<variant>.safetensors)")
    tr.add_argument("--ship", action="store_true", help="overwrite the package's shipped weights (how they are made)")
    tr.add_argument("--state", help="resumable training-state file")
    tr.add_argument("--force-restart", action="store_true",
                    help="discard a --state written with other settings instead of refusing it")
    tr.add_argument("--preset", choices=sorted(PRESETS),
                    help="the paper's settings for UCF-Crime / XD-Violence I3D features (with --list)")
    tr.add_argument("--data", default="cameras", choices=("cameras", "vtest"),
                    help="built-in data without --list: every real camera found (default) or vtest.avi alone")
    tr.add_argument("--steps-scale", type=positive_float, help="multiply every stage's step count (quick runs)")
    tr.add_argument("--batch-size", type=positive_int, help="videos per half-batch (normal and abnormal), overrides the preset")
    tr.add_argument("--seed", type=non_negative_int, default=0)
    tr.add_argument("--threads", type=positive_int, help="torch CPU threads")
    tr.add_argument("--quiet", action="store_true", help="no progress bars")
    _data_options(tr, test=False)
    tr.set_defaults(func=_train)

    ev = verbs.add_parser("eval", help="frame AUC, AP, AUC on anomalous videos and per-class AUC")
    ev.add_argument("--model", help="checkpoint path (default: the shipped GS-MoE weights)")
    ev.add_argument("--variant", default="gsmoe", choices=VARIANTS, help="'urdmu' scores with the task encoder")
    ev.add_argument("--threads", type=positive_int, help="torch CPU threads")
    _data_options(ev, test=True)
    ev.set_defaults(func=_eval)

    be = verbs.add_parser("bench", help="GS-MoE vs baselines over seeds; writes BENCHMARKS.md and plots")
    be.add_argument("--quick", action="store_true", help="one seed, short schedules (BENCHMARKS.quick.md)")
    be.add_argument("--speed-only", action="store_true",
                    help="only re-measure prediction speed with the shipped weights (BENCHMARKS.md's speed block)")
    be.set_defaults(func=_bench)

    de = verbs.add_parser("demo", help="injected anomalies in real surveillance footage, detected and classified")
    de.add_argument("--plot-dir", help="folder for the demo's plots (default: a temporary folder)")
    de.add_argument("--threads", type=positive_int, help="torch CPU threads")
    de.set_defaults(func=_demo)
