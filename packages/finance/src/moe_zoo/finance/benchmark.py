"""MIGA against its baselines on the built-in data, over seeds; writes BENCHMARKS.md and plots.

Two experiments on the same features, splits, loss and protocol for every neural model:

- ``sp500``: 524 S&P 500 stocks 2009-08..2010-08, Alpha158 (158 factors) x 20 days, the default
  split (130 train / 25 valid / the last 64 days test), TopK-Dropout top 30 / drop 5;
- ``sp20``: 20 large caps 1990-2022, close-only Alpha158 subset (75 factors) x 20 days,
  60% train / 10% valid / the last 30% test (2013-2022), TopK-Dropout top 5 / drop 1.

Finished runs are cached in ``benchmarks/results/*.json`` so an interrupted benchmark resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from moe_zoo.core import create_model, get_logger, seed_everything
from moe_zoo.core.reporting import (
    format_mean_std,
    markdown_table,
    write_benchmarks_md,
    write_text_atomic,
)
from moe_zoo.finance.backtest import BacktestConfig, backtest
from moe_zoo.finance.data import load_sp20_long, load_sp500_2009
from moe_zoo.finance.dataset import DataConfig, FeaturePanel, build_feature_panel
from moe_zoo.finance.gbdt import fit_lightgbm, lightgbm_available
from moe_zoo.finance.metrics import signal_metrics
from moe_zoo.finance.plots import plot_cumulative_excess
from moe_zoo.finance.predict import score_days
from moe_zoo.finance.train import TrainConfig, default_split, fit

_log = get_logger(__name__)
PACKAGE_ROOT = Path(__file__).resolve().parents[3]
MODELS = ("miga-conv", "miga-conv-single", "finance-linear", "finance-mlp", "finance-gru", "finance-lstm",
          "finance-transformer", "lightgbm")
LABELS = {"miga-conv": "MIGA-Conv (MoE)", "miga-conv-single": "MIGA-Conv backbone, no MoE", "finance-linear": "Linear",
          "finance-mlp": "MLP", "finance-gru": "GRU", "finance-lstm": "LSTM", "finance-transformer": "Transformer",
          "lightgbm": "LightGBM"}


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    feature_set: str
    train: TrainConfig
    topk: int
    n_drop: int
    last_days: int | None = None         # quick mode: keep only the latest days

    def panel(self) -> pd.DataFrame:
        panel = load_sp500_2009() if self.name == "sp500" else load_sp20_long()
        if self.last_days:
            days = panel.index.get_level_values("datetime").unique().sort_values()[-self.last_days:]
            panel = panel[panel.index.get_level_values("datetime") >= days[0]]
        return panel


def experiments(quick: bool) -> list[Experiment]:
    if quick:
        return [Experiment("sp500", "S&P 500 2009-10 (quick)", "alpha158-20", TrainConfig(epochs=2, patience=2), 30, 5),
                Experiment("sp20", "20 stocks (quick: last 1,500 days)", "alpha158-close",
                           TrainConfig(epochs=2, patience=2, days_per_batch=32), 5, 1, last_days=1500)]
    return [Experiment("sp500", "S&P 500 2009-08..2010-08, 524 stocks, Alpha158", "alpha158",
                       TrainConfig(epochs=30, patience=8), 30, 5),
            Experiment("sp20", "20 US large caps 1990-2022, close-only Alpha158", "alpha158-close",
                       TrainConfig(epochs=12, patience=4, days_per_batch=32), 5, 1)]


def _run(exp: Experiment, name: str, seed: int, fp: FeaturePanel) -> dict:
    split = default_split(fp.dates)
    test_days = fp.date_index(split.dates("test", fp.dates))
    if name == "lightgbm":
        model = fit_lightgbm(fp, split, seed=seed, threads=torch.get_num_threads())
        scores, seconds, epochs = model.score(fp, test_days), model.seconds, None
    else:
        seed_everything(seed)
        net = create_model(name, data=DataConfig(feature_set=exp.feature_set).to_dict())
        result = fit(net, fp, split, exp.train, seed=seed, device="cpu")
        scores, seconds, epochs = score_days(result.model, fp, test_days), result.seconds, len(result.history)
    score_series = fp.frame(scores, "score", test_days).dropna()
    signal = signal_metrics(score_series, fp.frame(fp.label[test_days], "label", test_days))
    close = pd.DataFrame(fp.close, index=fp.dates, columns=fp.instruments)
    bt = backtest(score_series, close, BacktestConfig(topk=exp.topk, n_drop=exp.n_drop))
    curve = bt.cumulative_excess()
    return {"model": name, "seed": seed, **signal.as_dict(), **bt.summary, "train_seconds": seconds,
            "epochs": epochs, "curve": {f"{d:%Y-%m-%d}": float(v) for d, v in curve.items()},
            "split": split.to_dict()}


def _cache(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def run_experiment(exp: Experiment, models: Sequence[str], seeds: Sequence[int], cache: Path) -> list[dict]:
    results = _cache(cache)
    fp = build_feature_panel(exp.panel(), DataConfig(feature_set=exp.feature_set))
    for name in models:
        for seed in seeds:
            key = f"{name}/{seed}"
            if key in results:
                continue
            began = time.perf_counter()
            results[key] = _run(exp, name, seed, fp)
            _log.info("%s %s seed %d: IC %.4f, excess %.3f (%.0f s)", exp.name, name, seed, results[key]["ic"],
                      results[key]["annualized_return_with_cost"], time.perf_counter() - began)
            write_text_atomic(cache, json.dumps(results, indent=1))
    return [results[f"{n}/{s}"] for n in models for s in seeds]


def _table(runs: list[dict], models: Sequence[str]) -> str:
    rows = []
    for name in models:
        mine = [r for r in runs if r["model"] == name]
        if not mine:
            continue

        def col(key: str, digits: int = 3, scale: float = 1.0, runs_: list[dict] = mine) -> str:
            return format_mean_std([r[key] for r in runs_], digits, scale)

        rows.append([LABELS[name], col("ic", 4), col("icir"), col("rank_ic", 4), col("rank_icir"),
                     col("annualized_return_with_cost", 1, 100), col("information_ratio_with_cost", 2),
                     col("max_drawdown_with_cost", 1, 100), col("turnover", 2), col("train_seconds", 0)])
    return markdown_table(["model", "IC", "ICIR", "Rank IC", "Rank ICIR", "excess return %/yr", "IR",
                           "max drawdown %", "daily turnover", "train s"], rows)


def _curves(runs: list[dict], models: Sequence[str]) -> dict[str, list[pd.Series]]:
    out = {}
    for name in models:
        series = [pd.Series(r["curve"]).rename(index=pd.Timestamp) for r in runs if r["model"] == name]
        if series:
            out[LABELS[name]] = series
    return out


def speed_section(models: Sequence[str], repeats: int = 3) -> tuple[str, dict]:
    """Feature computation (524 x 245) and one-day 500-stock scoring latency."""
    panel = load_sp500_2009()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fp = build_feature_panel(panel)
        times.append(time.perf_counter() - began)
    day = len(fp.dates) - 1
    stocks = fp.day_members(day, labelled=False)[:500]
    x = fp.windows(day, stocks)
    latency = {}
    for name in (m for m in models if m != "lightgbm"):
        net = create_model(name).eval()
        with torch.no_grad():
            for _ in range(3):
                net(x)
            samples = []
            for _ in range(30):
                began = time.perf_counter()
                net(x)
                samples.append(time.perf_counter() - began)
        latency[name] = float(np.median(samples) * 1000)
    rows = [["Alpha158 (158 factors) + normalisation + labels, 524 stocks x 245 days",
             f"{np.median(times):.2f} s (median of {repeats}; target < 30 s)"]]
    rows += [[f"score one day, {len(stocks)} stocks x 20 days x 158 factors: {LABELS[n]}",
              f"{ms:.1f} ms (median of 30; target < 100 ms)"] for n, ms in latency.items()]
    return markdown_table(["measurement", "time"], rows), {"features_s": times, "latency_ms": latency}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 2 epochs, small data")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--experiments", nargs="*", default=["sp500", "sp20"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: stable on a shared machine)")
    parser.add_argument("--fresh", action="store_true", help="ignore cached results")
    parser.add_argument("--out", default=str(PACKAGE_ROOT))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = list(range(2 if args.quick else args.seeds))
    models = [m for m in args.models if m != "lightgbm" or lightgbm_available()]
    if len(models) < len(args.models):
        _log.warning("lightgbm is not installed (pip install 'moe-zoo-finance[lightgbm]'); skipping it")
    out = Path(args.out)
    suffix = ".quick" if args.quick else ""
    sections = []
    for exp in (e for e in experiments(args.quick) if e.name in args.experiments):
        cache = out / "benchmarks" / "results" / f"{exp.name}{suffix}.json"
        if args.fresh and cache.exists():
            cache.unlink()
        runs = run_experiment(exp, models, seeds, cache)
        split = runs[0]["split"]
        figure = plot_cumulative_excess(_curves(runs, models), out / "benchmarks" / "figures" / f"{exp.name}{suffix}_excess.png",
                                        f"{exp.title}: test {split['test'][0]}..{split['test'][1]}")
        epochs = {m: np.mean([r["epochs"] for r in runs if r["model"] == m]) for m in models if m != "lightgbm"}
        body = (f"Split: train {split['train'][0]}..{split['train'][1]}, valid {split['valid'][0]}..{split['valid'][1]}, "
                f"test {split['test'][0]}..{split['test'][1]} ({runs[0]['days']} test days). TopK-Dropout top "
                f"{exp.topk} / drop {exp.n_drop}, costs 5 bp open / 15 bp close, excess over the equal-weight universe "
                f"(Qlib-style additive annualisation x252). Training: {exp.train.to_json(indent=None)}; mean epochs "
                f"run: {', '.join(f'{LABELS[m]} {e:.1f}' for m, e in epochs.items())}.\n\n"
                f"{_table(runs, models)}\n\n![cumulative excess return]({figure.relative_to(out).as_posix()})")
        sections.append((exp.title, body))
    if not args.quick:
        table, _ = speed_section(models)
        sections.append(("Speed", f"{torch.get_num_threads()} torch thread(s). {table}"))
    command = "python packages/finance/benchmarks/run.py" + (" --quick" if args.quick else "")
    notes = (f"Every neural model: same Alpha158 features, splits, -IC loss, Adam 1e-3, early stopping on valid IC; "
             f"mean ± std over seeds. The machine is shared with other jobs ({os.cpu_count()} cores, "
             f"{platform.machine()}): times are upper bounds.")
    path = write_benchmarks_md(out / f"BENCHMARKS{suffix}.md", "moe-zoo-finance benchmarks: MIGA vs baselines",
                               command=command, sections=sections, notes=notes, seeds=seeds)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
