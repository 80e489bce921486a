"""Benchmark: HoME vs MMoE, PLE (CGC) and shared-bottom on the same data, features, epochs and
parameter budget; an ablation of HoME's three fixes; expert health; speed.

``python packages/recsys/benchmarks/run.py`` (= ``make bench-recsys``) writes ``BENCHMARKS.md``
next to the package README, PNG figures under ``benchmarks/figures/``, per-run numbers in
``benchmarks/results/records.json`` and a summary into the README (between the
``benchmark-summary`` markers). Runs are independent jobs over ``--workers`` processes (one torch
thread each; in this process with ``--workers 1``). ``--quick`` is a smoke run of the same code
(2 seeds, 1 epoch, 6,000 training rows) and writes under ``benchmarks/quick/`` only.
``--datasets movielens-mt`` reruns only those sets and keeps the other stored records.

``--data <kuairand_dir> --preset kuairand`` runs every model and ablation on a KuaiRand folder
instead and writes its report to ``--out`` (default ``./recsys-bench-kuairand``).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from moe_zoo.core import get_logger, seed_everything
from moe_zoo.core.argtypes import non_negative_int, positive_int
from moe_zoo.core.reporting import (
    format_mean_std,
    hardware_summary,
    markdown_table,
    mean_std,
    recorded_hardware,
    replace_marked_block,
    write_benchmarks_md,
    write_text_atomic,
)
from moe_zoo.recsys.data import WIDEDEEP, builtin_dir, fetch_builtin_data, load_dataset
from moe_zoo.recsys.dataset import Splits
from moe_zoo.recsys.diagnostics import expert_health
from moe_zoo.recsys.plots import plot_expert_health, plot_gate_shares
from moe_zoo.recsys.train import TrainConfig, build, evaluate, fit, predict_outputs

_log = get_logger(__name__)
PACKAGE = Path(__file__).resolve().parents[3]
REAL = ("movielens", "movielens-mt", "adult", "clothing")
CORRELATIONS = (1.0, 0.5, 0.0)
EPOCHS = {"movielens": 2, "movielens-mt": 2, "adult": 4, "clothing": 6, "synthetic": 16}
PRESET_EPOCHS = 2           # KuaiRand (--preset kuairand): Pure's ~1.4M standard-log rows per epoch
BATCH = {"synthetic": 256}  # 4,800 training rows: batch 1024 would give the models only ~5 steps an epoch
SYNTHETIC_ROWS = 6_000
MODELS = {"HoME": ("home", {}), "MMoE": ("mmoe", {}), "PLE": ("ple", {}), "shared-bottom": ("shared-bottom", {})}
ABLATIONS = {
    "HoME w/o norm+Swish (fix 1)": {"expert_norm": False, "swish": False},
    "HoME w/o hierarchy (fix 2)": {"hierarchy": False},
    "HoME w/o feature+self gates (fix 3)": {"feature_gate": False, "self_gate": False},
}
WIDTH_SEARCH = tuple(range(8, 1025, 4))


@dataclass(frozen=True)
class Job:
    dataset: str
    label: str
    kind: str
    overrides: dict
    seed: int
    epochs: int
    train_rows: int | None
    health: bool = False

    @property
    def size(self) -> float:  # schedule the largest jobs first
        return {"movielens": 8, "movielens-mt": 8, "clothing": 2, "adult": 2}.get(self.dataset.split(":")[0], 1) * \
            (2 if self.kind == "home" else 1)


@dataclass
class Record:
    dataset: str
    label: str
    seed: int
    params: int
    metrics: dict
    mean_auc: float
    mean_rmse: float
    best_epoch: int
    samples_per_s: float
    rows_per_s: float
    seconds_per_epoch: float
    cpu_seconds: float = math.nan          # CPU time of the whole job (load excluded)
    health: dict | None = field(default=None)
    epochs: int = 0                        # the epoch budget (0 in records written before it was stored)


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@lru_cache(maxsize=8)
def dataset(name: str, train_rows: int | None = None) -> Splits:
    splits = load_dataset(name, **({"n": SYNTHETIC_ROWS} if name.startswith("synthetic") else {}))
    if train_rows is not None and train_rows < len(splits.train):
        keep = np.random.default_rng(0).choice(len(splits.train), train_rows, replace=False)
        splits = Splits(splits.name, splits.train.subset(np.sort(keep)), splits.valid, splits.test,
                        splits.description + f" (training rows cut to {train_rows:,})")
    return splits


def budget_overrides(splits: Splits, kind: str, extra: dict, target: int) -> dict:
    """``expert_widths=(h, last)`` with the hidden width ``h`` that brings the model closest to ``target`` params."""
    if kind == "home":
        return dict(extra)
    last = 32
    best, best_gap = None, math.inf
    for hidden in WIDTH_SEARCH:
        overrides = {**extra, "expert_widths": (hidden, last)}
        gap = abs(_n_params(build(kind, splits, **overrides)) - target)
        if gap < best_gap:
            best, best_gap = overrides, gap
        elif best is not None and gap > best_gap:
            break  # the count grows with the width: past the minimum
    return best


def run_job(job: Job) -> Record:
    torch.set_num_threads(1)
    splits = dataset(job.dataset, job.train_rows)
    began_cpu = time.process_time()
    model = build(job.kind, splits, seed=job.seed, **job.overrides)
    seed_everything(job.seed)
    config = TrainConfig(epochs=job.epochs, patience=job.epochs, batch_size=BATCH.get(job.dataset.split(":")[0], 1024))
    result = fit(model, splits, config, seed=job.seed, device="cpu")
    test = evaluate(model, splits.test)
    began = time.process_time()
    predict_outputs(model, splits.test)
    rows_per_s = len(splits.test) / max(time.process_time() - began, 1e-9)
    rmses = [m["rmse"] for m in test.metrics.values() if "rmse" in m]
    health = None
    if job.health:
        h = expert_health(model, splits.test)
        health = {"experts": h.experts.to_dict("list"), "gates": h.gates.to_dict("list")}
    return Record(job.dataset, job.label, job.seed, _n_params(model), test.metrics, test.mean_auc,
                  float(np.mean(rmses)) if rmses else math.nan, result.best_epoch,
                  result.samples / max(result.train_cpu_seconds, 1e-9), rows_per_s, result.seconds_per_epoch,
                  time.process_time() - began_cpu, health, job.epochs)


def display(name: str) -> str:
    """A data set's name in reports (a KuaiRand folder is ``kuairand``)."""
    return "kuairand" if Path(name).is_dir() else name


def ranking(name: str) -> bool:
    """A data set of binary ranking tasks (AUC, ablation): the real ones and KuaiRand folders."""
    return not name.startswith("synthetic")


def epochs_for(name: str, quick: bool) -> int:
    return 1 if quick else EPOCHS.get(name.split(":")[0], PRESET_EPOCHS)


def plan(seeds: tuple[int, ...], quick: bool, names: list[str] | None = None, epochs: int | None = None) -> list[Job]:
    """Every (data set, model or ablation, seed) job; ``names`` defaults to all built-in sets."""
    train_rows = 6_000 if quick else None
    names = names or [*REAL, *(f"synthetic:{p:g}" for p in (CORRELATIONS[::2] if quick else CORRELATIONS))]
    jobs = []
    for name in names:
        splits = dataset(name, train_rows)
        epochs_here = epochs or epochs_for(name, quick)
        target = _n_params(build("home", splits))
        variants = dict(MODELS)
        if ranking(name):
            variants.update({label: ("home", o) for label, o in ABLATIONS.items()})
        for label, (kind, extra) in variants.items():
            overrides = budget_overrides(splits, kind, extra, target)
            jobs += [Job(name, label, kind, overrides, seed, epochs_here, train_rows, health=(seed == seeds[0]))
                     for seed in seeds]
    return sorted(jobs, key=lambda j: -j.size)


def epoch_time_ratio(repeats: int, rows: int, quick: bool) -> dict:
    """Seconds per training epoch of HoME and MMoE at equal expert widths (64, 32), one thread."""
    torch.set_num_threads(1)
    splits = dataset("movielens", rows)
    times = {"HoME": [], "MMoE": []}
    for repeat in range(repeats):
        for label, kind in (("HoME", "home"), ("MMoE", "mmoe")):
            model = build(kind, splits, seed=repeat)
            result = fit(model, splits, TrainConfig(epochs=1, patience=1), seed=repeat, device="cpu")
            times[label].append(result.train_cpu_seconds)
    home, mmoe = statistics.median(times["HoME"]), statistics.median(times["MMoE"])
    return {"rows": len(splits.train), "home_s": home, "mmoe_s": mmoe, "ratio": home / mmoe,
            "params": {k: _n_params(build(m, splits)) for k, m in (("HoME", "home"), ("MMoE", "mmoe"))},
            "repeats": repeats}


# ----------------------------------------------------------------------------- report
def _task_cells(records: list[Record], tasks: list[str]) -> list[str]:
    cells = []
    for task in tasks:
        metric = "auc" if "auc" in records[0].metrics[task] else "rmse"
        cells.append(format_mean_std([r.metrics[task][metric] for r in records], 4) + (" (RMSE)" if metric == "rmse" else ""))
    return cells


def _table(records: list[Record], labels: list[str], with_speed: bool = True) -> str:
    tasks = list(records[0].metrics)
    has_auc = not math.isnan(records[0].mean_auc)
    has_gauc = any("gauc" in m for m in records[0].metrics.values())
    headers = ["model", "params", *tasks, "mean AUC" if has_auc else "mean RMSE"]
    if has_gauc:
        headers.append("mean GAUC")
    if with_speed:
        headers += ["train samples / CPU-s", "inference rows / CPU-s"]
    rows = []
    for label in labels:
        group = [r for r in records if r.label == label]
        if not group:
            continue
        row = [label, f"{group[0].params:,}", *_task_cells(group, tasks),
               format_mean_std([r.mean_auc if has_auc else r.mean_rmse for r in group], 4)]
        if has_gauc:
            row.append(format_mean_std([np.nanmean([m["gauc"] for m in r.metrics.values() if "gauc" in m])
                                        for r in group], 4))
        if with_speed:
            row += [f"{np.mean([r.samples_per_s for r in group]):,.0f}", f"{np.mean([r.rows_per_s for r in group]):,.0f}"]
        rows.append(row)
    return markdown_table(headers, rows)


def _health_table(records: list[Record], labels: list[str]) -> str:
    rows = []
    for label in labels:
        rec = next((r for r in records if r.label == label and r.health), None)
        if rec is None:
            continue
        experts = pd.DataFrame(rec.health["experts"])
        gates = pd.DataFrame(rec.health["gates"])
        last = gates[gates["level"] == gates["level"].iloc[-1]] if len(gates) else gates
        own = last[last["group"] == last["gate"]]["weight"]
        shared = last[last["group"].str.startswith("shared")].groupby("gate")["weight"].sum() if len(last) else []
        rows.append([label, len(experts), f"{experts['zero_fraction'].mean():.3f}", f"{experts['zero_fraction'].max():.3f}",
                     f"{experts['rms'].min():.3f}..{experts['rms'].max():.3f}",
                     f"{np.mean(shared):.2f}" if len(shared) else "-", f"{own.mean():.2f}" if len(own) else "-"])
    return markdown_table(["model", "experts", "mean zero fraction", "max zero fraction", "output RMS range",
                           "task-gate weight on shared", "task-gate weight on own"], rows)


def _figures(records: list[Record], out: Path, labels: list[str]) -> list[str]:
    lines = []
    for name in sorted({r.dataset for r in records if r.health}):
        health = {r.label: pd.DataFrame(r.health["experts"]) for r in records
                  if r.dataset == name and r.health and r.label in labels}
        gates = {r.label: pd.DataFrame(r.health["gates"]) for r in records
                 if r.dataset == name and r.health and r.label in labels and r.health["gates"]["gate"]}
        safe = display(name).replace(":", "-")
        p1 = plot_expert_health(health, out / f"health-{safe}.png", f"{name}: expert health (test split, seed 0)")
        p2 = plot_gate_shares(gates, out / f"gates-{safe}.png", f"{name}: mean task-gate weight by expert group")
        lines.append(f"![{name} expert health](benchmarks/figures/{p1.name}) ![{name} gates](benchmarks/figures/{p2.name})")
    return lines


def report(records: list[Record], timing: dict | None, seeds: tuple[int, ...], seconds: float, out_dir: Path,
           quick: bool, hardware: str | None = None, command: str | None = None) -> str:
    figures = out_dir / "figures"
    sections = []
    model_labels = list(MODELS)
    summary_rows = []
    for name in dict.fromkeys(r.dataset for r in records):
        group = [r for r in records if r.dataset == name]
        sections.append((f"{display(name)}: {dataset(name, 6_000 if quick else None).description}",
                         _table(group, model_labels) + f"\n\nEpochs: {group[0].epochs or epochs_for(name, quick)} "
                         "for every model (the parameters of the epoch with the lowest validation loss are kept)."))
        if ranking(name):
            labels = ["HoME", *ABLATIONS]
            sections.append((f"{display(name)}: ablation of HoME's fixes", _table(group, labels)))
        sections.append((f"{display(name)}: expert health (test split, seed {seeds[0]})",
                         _health_table(group, model_labels)))
        score = {lab: mean_std([r.mean_auc if ranking(name) else r.mean_rmse for r in group if r.label == lab])[0]
                 for lab in model_labels}
        summary_rows.append([display(name), "mean AUC" if ranking(name) else "mean RMSE",
                             *(f"{score[lab]:.4f}" for lab in model_labels)])
    summary = markdown_table(["data", "metric", *model_labels], summary_rows)
    sections.insert(0, ("Summary (mean over seeds; higher AUC / lower RMSE is better)", summary))
    if timing:
        sections.append(("Speed: HoME vs MMoE at equal expert widths (64, 32)", markdown_table(
            ["model", "params", "CPU seconds / epoch", "ratio (HoME / MMoE)"],
            [["HoME", f"{timing['params']['HoME']:,}", f"{timing['home_s']:.2f}", f"{timing['ratio']:.2f}"],
             ["MMoE (8 experts)", f"{timing['params']['MMoE']:,}", f"{timing['mmoe_s']:.2f}", "1.00"]])
            + f"\n\nMovieLens training rows ({timing['rows']:,}), batch 1024, one torch thread, CPU time of the "
              f"training steps (not wall time: the machine is shared), median of {timing['repeats']} runs."))
    sections.append(("Figures", "\n\n".join(_figures(records, figures, model_labels))))
    notes = (f"Every model gets the same data, features, epochs and optimiser (Adam, lr 2e-3, batch 1024 (synthetic: "
             f"256), summed task losses); baselines' expert hidden width is chosen so their parameter count is the closest to "
             f"HoME's (column `params`). AUC / RMSE on the test split, mean ± std over seeds {list(seeds)}. Speeds "
             f"are per CPU-second of the job's own process (one torch thread per run) because the 2-core machine "
             f"({multiprocessing.cpu_count()} cores visible) was shared with other engineers' jobs; compare them "
             f"within a table. Wall time of the invocation(s) that produced these records: {seconds / 60:.1f} min (under "
             f"that contention); CPU time "
             f"of all training jobs together: {sum(r.cpu_seconds for r in records) / 60:.1f} min, i.e. "
             f"{sum(r.cpu_seconds for r in records) / 120:.1f} min on 2 free cores plus data loading.")
    if any(r.dataset == "movielens-mt" for r in records):
        notes += (" The `movielens-mt` records were added later by the same script with `--datasets movielens-mt` "
                  "(same seeds); such a run replaces only that set's records.")
    command = command or "python packages/recsys/benchmarks/run.py" + (" --quick" if quick else "")
    write_benchmarks_md(out_dir / ("BENCHMARKS.md" if quick else "../BENCHMARKS.md"), "recsys benchmarks",
                        command=command, sections=sections, notes=notes, seeds=seeds, hardware=hardware)
    return summary


def _update_readme(summary: str, timing: dict) -> None:
    body = f"{summary}\n\nHoME epoch time / MMoE's at equal expert widths: {timing['ratio']:.2f} (see BENCHMARKS.md)"
    replace_marked_block(PACKAGE / "README.md", "<!-- benchmark-summary:start -->", "<!-- benchmark-summary:end -->",
                         body)


def run_jobs(jobs: list[Job], workers: int) -> list[Record]:
    """Every job's record, in ``workers`` processes (one torch thread each; in this process with 1)."""
    if workers == 1:
        return [run_job(job) for job in tqdm(jobs, desc="recsys bench")]
    records: list[Record] = []
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        for future in tqdm(as_completed(futures), total=len(futures), desc="recsys bench"):
            records.append(future.result())
    return records


def _store(results: Path, records: list[Record], timing: dict | None, seeds: tuple[int, ...], seconds: float,
           hardware: str) -> None:
    results.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(results, json.dumps({"records": [r.__dict__ for r in records], "timing": timing,
                                           "seeds": list(seeds), "seconds": seconds, "hardware": hardware},
                                          indent=1, default=float, allow_nan=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=positive_int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=None)
    parser.add_argument("--datasets", nargs="+", default=None,
                        help="run only these built-in sets and keep the other stored records (same seeds)")
    parser.add_argument("--data", default=None, help="a KuaiRand data folder (with --preset kuairand)")
    parser.add_argument("--preset", default=None, choices=("kuairand",),
                        help="HoME vs MMoE / PLE / shared-bottom and the ablation on --data")
    parser.add_argument("--epochs", type=positive_int, default=None, help="override the epoch budget")
    parser.add_argument("--out", default=None, help="report folder of a preset (default ./recsys-bench-kuairand)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from results/records.json")
    args = parser.parse_args(argv)
    if bool(args.data) != bool(args.preset):
        parser.error("--data and --preset go together")
    seeds = tuple(args.seeds or ((0, 1) if args.quick else (0, 1, 2)))
    if args.preset:
        return _run_preset(args, seeds)
    out_dir = PACKAGE / "benchmarks" / ("quick" if args.quick else "")
    results = out_dir / "results" / "records.json"
    if args.report_only:
        saved = json.loads(results.read_text())
        records = [Record(**r) for r in saved["records"]]
        summary = report(records, saved["timing"], tuple(saved["seeds"]), saved["seconds"], out_dir, args.quick,
                         recorded_hardware(saved))
        if not args.quick:
            _update_readme(summary, saved["timing"])
        return 0
    if builtin_dir(WIDEDEEP) is None:
        fetch_builtin_data()
    began = time.perf_counter()
    kept, timing, before, hardware = [], None, 0.0, hardware_summary()
    if args.datasets:                          # the stored records are checked before any training
        saved = json.loads(results.read_text())
        if tuple(saved["seeds"]) != seeds:
            raise SystemExit(f"stored records use seeds {saved['seeds']}, not {list(seeds)}")
        kept = [Record(**r) for r in saved["records"] if r["dataset"] not in args.datasets]
        timing, before = saved["timing"], saved["seconds"]
        if recorded_hardware(saved) not in (None, hardware):     # say which machine measured which records
            hardware = f"{recorded_hardware(saved)}; {', '.join(args.datasets)}: {hardware}"
    jobs = plan(seeds, args.quick, args.datasets)
    records = run_jobs(jobs, args.workers)
    if not args.datasets:
        timing = epoch_time_ratio(1 if args.quick else 3, 6_000 if args.quick else 40_000, args.quick)
    names = list(dict.fromkeys([*(r.dataset for r in kept), *(j.dataset for j in jobs)]))
    records = kept + sorted(records, key=lambda r: (r.dataset, r.seed, list(MODELS | ABLATIONS).index(r.label)))
    records.sort(key=lambda r: names.index(r.dataset))
    seconds = before + time.perf_counter() - began
    _store(results, records, timing, seeds, seconds, hardware)
    summary = report(records, timing, seeds, seconds, out_dir, args.quick, hardware)
    if not args.quick:
        _update_readme(summary, timing)
    _log.info("done in %.1f min\n%s", (time.perf_counter() - began) / 60, summary)
    return 0


def _run_preset(args: argparse.Namespace, seeds: tuple[int, ...]) -> int:
    """``--data <kuairand_dir> --preset kuairand``: every model and ablation on KuaiRand, report in ``--out``."""
    began = time.perf_counter()
    folder = str(Path(args.data).expanduser().resolve())
    out = Path(args.out or Path.cwd() / "recsys-bench-kuairand")
    jobs = plan(seeds, args.quick, [folder], args.epochs)   # reads the folder here: errors before any worker starts
    records = run_jobs(jobs, args.workers)
    records.sort(key=lambda r: (r.seed, list(MODELS | ABLATIONS).index(r.label)))
    seconds = time.perf_counter() - began
    _store(out / "benchmarks" / "results" / "records.json", records, None, seeds, seconds, hardware_summary())
    command = (f"moe-zoo recsys bench --data {args.data} --preset kuairand" + (" --quick" if args.quick else "")
               + (f" --epochs {args.epochs}" if args.epochs else "") + f" --seeds {' '.join(map(str, seeds))}")
    summary = report(records, None, seeds, seconds, out / "benchmarks", args.quick, command=command)
    _log.info("wrote %s\n%s", out / "BENCHMARKS.md", summary)
    return 0
