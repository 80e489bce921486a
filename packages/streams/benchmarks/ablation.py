"""Ablation of DriftMoE+ (the project's extension): each of its changes to MoE-Data switched off
in turn, on the same streams and seeds.

``python packages/streams/benchmarks/ablation.py`` runs, for every (stream, seed), all the
configurations side by side in one process (interleaved instance by instance, so their
throughputs are comparable) and writes the table into the README (between the ``ablation``
markers) and ``benchmarks/results/ablation.md``: accuracy over the stream, accuracy in the two
curve windows after each drift centre, and throughput relative to the full DriftMoE+.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from moe_zoo.core.reporting import (
    format_mean_std,
    hardware_summary,
    markdown_table,
    replace_marked_block,
    write_text_atomic,
)
from moe_zoo.streams import DriftMoEClassifier, get_stream_spec
from moe_zoo.streams.benchmark import post_drift_accuracy
from moe_zoo.streams.evaluate import prequential_side_by_side

PACKAGE = Path(__file__).resolve().parents[1]
START, END = "<!-- ablation:start -->", "<!-- ablation:end -->"
STREAMS = {"sea_a": 3_000, "led_a": 2_000}  # what fits a session on the shared 2-core machine
CONFIGS: dict[str, dict] = {
    "DriftMoE+ (all changes)": {"variant": "plus"},
    "6 experts (the previous default) instead of 10": {"variant": "plus", "n_experts": 6},
    "without Poisson(6) weights (weight 1)": {"variant": "plus", "lam": 0.0},
    "without split confidence 0.01 (paper: 1e-7)": {"variant": "plus", "delta": 1e-7},
    "without ADWIN drift detection / background trees": {"variant": "plus", "detect": False},
    "without mixture prediction (top-1 expert)": {"variant": "plus", "combine": "top1"},
    "raw router inputs (reference) instead of frozen standardisation": {"variant": "plus", "scaling": "none"},
    "running standardisation instead of frozen": {"variant": "plus", "scaling": "running"},
    "without warm start": {"variant": "plus", "warm_start": False},
    "river's Hoeffding trees instead of the vectorised ones (fast_tree.py)": {"variant": "plus", "tree": "river"},
    "paper MoE-Data (none of the changes)": {"variant": "data"},
}


def run(stream: str, n: int, seed: int) -> tuple[str, int, dict]:
    torch.set_num_threads(1)
    spec = get_stream_spec(stream)
    window = max(25, n // 40)
    models = {name: DriftMoEClassifier(seed=seed, **kwargs) for name, kwargs in CONFIGS.items()}
    results = prequential_side_by_side(models, spec.build(n, seed), window=window, total=n)
    drifts = spec.drift_positions(n)
    return stream, seed, {name: {"accuracy": r.accuracy, "post_drift": post_drift_accuracy(r.to_dict(), drifts),
                                 "throughput": r.throughput} for name, r in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    began = time.perf_counter()
    jobs = [(s, n, seed) for s, n in STREAMS.items() for seed in args.seeds]
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = {(s, seed): r for s, seed, r in pool.map(run, *zip(*jobs))}
    rows = []
    for name in CONFIGS:
        cells = []
        for stream in STREAMS:
            runs = [results[stream, seed][name] for seed in args.seeds]
            full = [results[stream, seed]["DriftMoE+ (all changes)"]["throughput"] for seed in args.seeds]
            cells.append(f"{format_mean_std([r['accuracy'] for r in runs], 1, 100.0)} / "
                         f"{format_mean_std([r['post_drift'] for r in runs], 1, 100.0)} / "
                         f"{sum(r['throughput'] for r in runs) / sum(full):.2f}x")
        rows.append([name, *cells])
    table = markdown_table(["configuration", *[f"{s} ({n:,})" for s, n in STREAMS.items()]], rows)
    text = (f"DriftMoE+ ablation: accuracy % / accuracy % in the two windows after each drift / throughput relative "
            f"to the full DriftMoE+ (all configurations side by side in one process), mean ± std over seeds "
            f"{', '.join(map(str, args.seeds))} (`python packages/streams/benchmarks/ablation.py`; {hardware_summary()}; "
            f"{time.perf_counter() - began:.0f} s wall, {args.workers} processes on a 2-core machine shared with "
            f"other jobs):\n\n{table}")
    write_text_atomic(PACKAGE / "benchmarks" / "results" / "ablation.md", text + "\n")
    replace_marked_block(PACKAGE / "README.md", START, END, text)
    logging.getLogger(__name__).info("%s", text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
