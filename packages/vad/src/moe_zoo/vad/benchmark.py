"""Benchmark: GS-MoE, its ablations and the MIL ranking baseline on the built-in data, side by
side on the same features, splits and seeds; prediction speed and memory on real video.

Writes ``BENCHMARKS.md`` (``BENCHMARKS.quick.md`` with ``--quick``) next to the package README
and score-over-time plots under ``benchmarks/figures/``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from moe_zoo.core import get_logger, setup_logging
from moe_zoo.core.reporting import (
    format_mean_std,
    markdown_table,
    replace_marked_block,
    write_benchmarks_md,
    write_text_atomic,
)
from moe_zoo.vad.builtin import BuiltinConfig, load_builtin
from moe_zoo.vad.evaluate import frame_scores
from moe_zoo.vad.metrics import frame_metrics
from moe_zoo.vad.plots import plot_scores
from moe_zoo.vad.synthesis import ANOMALY_CLASSES
from moe_zoo.vad.train import GATE_ONLY_VARIANTS, TrainConfig, train

_log = get_logger(__name__)
PACKAGE = Path(__file__).resolve().parents[3]
FIGURES = PACKAGE / "benchmarks" / "figures"
# row label -> (trained variant, scored variant); "urdmu" reads the task encoder of the GS-MoE run
METHODS = {
    "GS-MoE": ("gsmoe", "gsmoe"),
    "GS-MoE with UR-DMU's self-attention in the task encoder": ("gsmoe-attn", "gsmoe"),
    "GS-MoE with the paper's fusion gate": ("gsmoe-fusion", "gsmoe"),
    "GS-MoE, gate without the KL-to-uniform term": ("gsmoe-free-gate", "gsmoe"),
    "GS-MoE, class experts averaged (no gate)": ("gsmoe", "expert-mean"),
    "GS-MoE without TGS loss": ("gsmoe-no-tgs", "gsmoe"),
    "single model, no class experts": ("single", "gsmoe"),
    "task encoder only (UR-DMU)": ("gsmoe", "urdmu"),
    "MIL ranking (Sultani et al.)": ("mil", "mil"),
}
PLOTTED = ("GS-MoE with UR-DMU's self-attention in the task encoder", "single model, no class experts",
           "MIL ranking (Sultani et al.)")  # drawn next to GS-MoE in the score-over-time figures
VIDEO = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
SPEED_START, SPEED_END = "<!-- speed:start -->", "<!-- speed:end -->"   # --speed-only rewrites this block
SPEED_SCRIPT = """
import json, resource, sys, time
import torch
torch.set_num_threads(2)
from moe_zoo.vad.predict import load, predict
model = load(sys.argv[2] or None)
predict(sys.argv[1], model)  # warm-up (weights, allocator)
times = []
for _ in range(int(sys.argv[3]) if len(sys.argv) > 3 else 2):
    result = predict(sys.argv[1], model)
    times.append(result.seconds)
print(json.dumps({"frames": result.n_frames, "fps": result.fps, "seconds": times, "timings": result.timings,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def _one_seed(seed: int, quick: bool, threads: int) -> tuple[int, dict, dict, dict]:
    """Train every method with one seed and score the test split (runs in a worker process)."""
    torch.set_num_threads(threads)
    setup_logging("INFO")
    train_data, test_data = load_builtin("train", progress=False), load_builtin("test", progress=False)
    short = {"encoder_steps": 150, "expert_steps": 120, "gate_steps": 80, "mil_steps": 300} if quick else {}
    models, seconds, metrics, curves = {}, {}, {}, {}
    for variant in dict.fromkeys(v for v, _ in METHODS.values()):
        config = TrainConfig(variant=variant, seed=seed, **short)
        reuse = (*GATE_ONLY_VARIANTS, "single", *(() if config.encoder_has_tgs else ("gsmoe-no-tgs",)))
        shared = models.get("gsmoe") if variant in reuse else None  # with encoder TGS, no-tgs trains its own
        result = train(train_data, config, progress=False, encoder_from=shared)
        models[variant], seconds[variant] = result.model, result.seconds
        _log.info("seed %d %s trained in %.0f s", seed, variant, result.seconds)
    for label, (variant, scored) in METHODS.items():
        curves[label] = frame_scores(models[variant], test_data, variant=scored, device="cpu")
        metrics[label] = frame_metrics(curves[label], test_data.videos)
        _log.info("seed %d %s: AUC %.4f", seed, label, metrics[label]["auc"])
    return seed, metrics, seconds, curves


def _train_all(seeds: list[int], quick: bool, jobs: int, threads: int) -> tuple[dict, dict, dict]:
    """All seeds, ``jobs`` worker processes at a time with ``threads`` torch threads each."""
    load_builtin("train"), load_builtin("test")            # build the feature cache once, up front
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            runs = list(pool.map(_one_seed, seeds, [quick] * len(seeds), [threads] * len(seeds)))
    else:
        runs = [_one_seed(seed, quick, threads) for seed in seeds]
    runs.sort(key=lambda run: run[0])
    metrics = {label: [run[1][label] for run in runs] for label in METHODS}
    seconds = {variant: [run[2][variant] for run in runs] for variant in runs[0][2]}
    return metrics, seconds, {"curves": runs[0][3], "test": load_builtin("test", progress=False)}


def _paired_versus(metrics: dict, baseline: str) -> str:
    """Per-seed differences of frame ROC-AUC against ``baseline`` (same seed, same data)."""
    reference = [m["auc"] for m in metrics[baseline]]
    rows = []
    for label, runs in metrics.items():
        if label == baseline:
            continue
        delta = [m["auc"] - r for m, r in zip(runs, reference)]
        rows.append([f"{label} − {baseline}", format_mean_std(delta, 4), f"{sum(d > 0 for d in delta)} / {len(delta)}"])
    return markdown_table(["comparison", "Δ frame ROC-AUC (mean ± std over seeds)", "seeds ahead"], rows)


def _quality_section(metrics: dict) -> str:
    keys = ["auc", "ap", "auc_abnormal", "auc_vs_normal_videos"]
    rows = [[label, *(format_mean_std([m[k] for m in runs], 4) for k in keys)] for label, runs in metrics.items()]
    main = markdown_table(["method", "frame ROC-AUC", "frame AP", "AUC on anomalous videos",
                           "AUC vs normal videos"], rows)
    main += ("\n\n'AUC on anomalous videos' ranks the anomalous frames against the normal frames around them; "
             "'AUC vs normal videos' against the frames of the normal videos (false alarms on normal footage).")
    main += "\n\nPaired per-seed differences:\n\n" + _paired_versus(metrics, "MIL ranking (Sultani et al.)")
    class_rows = [[label, *(format_mean_std([m[f"auc_{c}"] for m in runs], 3) for c in sorted(ANOMALY_CLASSES))]
                  for label, runs in metrics.items()]
    per_class = markdown_table(["method", *sorted(ANOMALY_CLASSES)], class_rows)
    return (f"{main}\n\nPer-class frame ROC-AUC (that class's test clips + all normal test clips):\n\n{per_class}")


def _plots(extra: dict) -> str:
    FIGURES.mkdir(parents=True, exist_ok=True)
    test, curves = extra["test"], extra["curves"]
    fps = 10.0
    names = []
    for kind in sorted(ANOMALY_CLASSES):
        index = next(i for i, v in enumerate(test.videos) if kind in v.classes)
        video = test.videos[index]
        path = FIGURES / f"scores_{kind}.png"
        others = {label: curves[label][index] for label in PLOTTED}
        plot_scores(path, curves["GS-MoE"][index], fps, ground_truth=video.frame_labels, curves=others,
                    title=f"{video.name} (test clip, seed 0)")
        names.append(f"![{kind}](benchmarks/figures/{path.name})")
    return "\n".join(names)


def _speed(quick: bool) -> tuple[str, dict]:
    """Prediction on the full real video in a fresh process (peak RSS is the whole process)."""
    repeats = "1" if quick else "3"
    # OpenMP's pool must match the 2 torch threads: with OMP_NUM_THREADS=1 inherited from the caller,
    # torch.set_num_threads(2) made decoding + features 5x slower on a 2-core EPYC
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", SPEED_SCRIPT, VIDEO, "", repeats], capture_output=True,
                         text=True, check=True, env=env)
    record = json.loads(out.stdout.strip().splitlines()[-1])
    seconds = record["seconds"]
    rates = [record["frames"] / s for s in seconds]
    video_seconds = record["frames"] / record["fps"]
    table = markdown_table(
        ["video", "frames", "frames/s (mean ± std)", "x real time", "peak memory (RSS)"],
        [["vtest.avi 768x576 10 fps (real)", record["frames"], format_mean_std(rates, 1),
          f"{video_seconds / np.mean(seconds):.2f}", f"{record['peak_rss_gb']:.2f} GB"]])
    split = ", ".join(f"{k} {v:.2f} s" for k, v in record["timings"].items())
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{table}\n\n`vad.predict(path)` with the shipped weights, 2 torch threads, {len(seconds)} timed runs "
            f"after a warm-up (load average {load} when it ended, {time.strftime('%Y-%m-%d', time.gmtime())}); "
            f"one run's split: {split}."), record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one seed, short schedules (BENCHMARKS.quick.md)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=2, help="seeds trained in parallel worker processes")
    parser.add_argument("--threads", type=int, help="torch threads per worker (default 2 // jobs, at least 1)")
    parser.add_argument("--speed-only", action="store_true",
                        help="only re-measure prediction speed with the shipped weights (BENCHMARKS.md's speed block)")
    args = parser.parse_args(argv)
    setup_logging("INFO")
    if args.speed_only:
        speed_text, _ = _speed(False)
        if not replace_marked_block(PACKAGE / "BENCHMARKS.md", SPEED_START, SPEED_END, speed_text):
            raise SystemExit(f"BENCHMARKS.md has no {SPEED_START} block: run the full benchmark once")
        print(speed_text)
        return 0
    torch.set_num_threads(2)
    seeds = args.seeds[:1] if args.quick else args.seeds
    started = time.perf_counter()
    jobs = min(args.jobs, len(seeds))
    threads = args.threads or max(1, 2 // jobs)
    metrics, seconds, extra = _train_all(seeds, args.quick, jobs, threads)
    results = PACKAGE / "benchmarks" / "results" / f"{'quick' if args.quick else 'full'}.json"
    write_text_atomic(results, json.dumps({"metrics": metrics, "train_seconds": seconds}, indent=1))
    speed_text, speed = _speed(args.quick)
    config = BuiltinConfig()
    reused = {**{v: " (stage 3; encoder and experts of the GS-MoE run)" for v in GATE_ONLY_VARIANTS},
              "single": " (stages 2-3; stage-1 encoder of the GS-MoE run)"}
    if not TrainConfig().encoder_has_tgs:   # no TGS on the encoder: gsmoe-no-tgs reuses it
        reused["gsmoe-no-tgs"] = " (stages 2-3; stage-1 encoder of the GS-MoE run)"
    train_rows = [[variant + reused.get(variant, ""),
                   format_mean_std(values, 0)] for variant, values in seconds.items()]
    sections = [
        ("Detection quality (built-in test split)", _quality_section(metrics)),
        ("Score over time (one test clip per class, ground truth shaded)", _plots(extra)),
        ("Prediction speed and memory", f"{SPEED_START}\n{speed_text}\n{SPEED_END}"),
        (f"Training time (seconds, built-in training split, {threads} torch thread(s), {jobs} seed(s) "
         "trained in parallel)",
         markdown_table(["variant", "seconds"], train_rows)),
    ]
    notes = (f"Built-in data: real vtest.avi footage (opencv-doc), {config.clip_len}-frame clips, train frames "
             f"{config.train_frames}, test frames {config.test_frames} (never seen in training); "
             f"{config.train_per_class} train / {config.test_per_class} test clips per anomaly class "
             f"({', '.join(ANOMALY_CLASSES)}), {config.train_normal} / {config.test_normal} normal clips. "
             "Every method trains on the same cached MobileNetV2 + motion snippet features with the same seeds; "
             "'task encoder only' is the coarse UR-DMU score of the GS-MoE run (its stage 1). "
             "Timings are on a shared 2-core machine with other jobs running: treat them as upper bounds. "
             f"Total benchmark time {time.perf_counter() - started:.0f} s.")
    name = "BENCHMARKS.quick.md" if args.quick else "BENCHMARKS.md"
    write_benchmarks_md(PACKAGE / name, "vad benchmarks: GS-MoE on the built-in data",
                        command="make bench-vad" + (" (moe-zoo vad bench --quick)" if args.quick else ""),
                        sections=sections, notes=notes, seeds=seeds)
    held_out = PACKAGE / "benchmarks" / "results" / "held_out_cameras.md"
    if not args.quick and held_out.is_file():  # written by benchmarks/held_out_cameras.py --report; kept
        text = (PACKAGE / name).read_text().rstrip()
        block = held_out.read_text().strip()
        write_text_atomic(PACKAGE / name, f"{text}\n\n<!-- held-out-cameras:start -->\n{block}\n"
                                          f"<!-- held-out-cameras:end -->\n")
    write_text_atomic(results, json.dumps({"metrics": metrics, "train_seconds": seconds, "speed": speed}, indent=1))
    print(f"wrote {PACKAGE / name}")
    return 0
