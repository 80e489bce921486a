"""MIGA against its baselines on the built-in data, over seeds; writes BENCHMARKS.md, plots and
the README's summary.

Two experiments, each with the same features, split, loss and training protocol for every
neural model (``TrainConfig`` defaults: Adam 1e-3, ``-IC`` loss, at most 10 epochs, early stopping
on the valid IC with patience 3):

- ``sp500``: 524 S&P 500 stocks 2009-08..2010-08, Alpha158 (158 factors) x 20 days, the default
  split (130 train / 25 valid / the last 64 days test), one trading day per step, TopK-Dropout
  top 30 / drop 5;
- ``sp20``: 20 large caps, the last 3,000 days of 1990-2022 (2011-2022), close-only Alpha158 subset
  (75 factors) x 20 days, 60% train / 10% valid / the rest test, 32 days per step (20 stocks a day),
  TopK-Dropout top 5 / drop 1.

With ``--data <qlib_dir> --preset csi300`` (or ``csi500``) the same models run Qlib's China
benchmark protocol on a Qlib provider directory instead (:mod:`moe_zoo.finance.qlib_preset`: Qlib's
date segments, train-fitted normalisation, price limits, excess over the index, 238 days a year);
its report goes to ``--out`` (default ``./finance-bench-<preset>``).

Every run ``(experiment, model, seed)`` is one task, run in worker processes (one torch thread
each; in this process with ``--jobs 1``) and stored in
``<out>/benchmarks/results/<experiment>/<model>-s<seed>.json``; an interrupted benchmark resumes,
and a stored run whose protocol differs is run again.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from moe_zoo.core import create_model, get_logger, seed_everything, setup_logging
from moe_zoo.core.argtypes import positive_int
from moe_zoo.core.reporting import (
    format_mean_std,
    markdown_table,
    mean_std,
    replace_marked_block,
    write_benchmarks_md,
    write_text_atomic,
)
from moe_zoo.finance.backtest import BacktestConfig, backtest
from moe_zoo.finance.data import load_sp20_long, load_sp500_2009
from moe_zoo.finance.dataset import DataConfig, FeaturePanel, Split, build_feature_panel
from moe_zoo.finance.gbdt import fit_lightgbm, lightgbm_available
from moe_zoo.finance.metrics import signal_metrics
from moe_zoo.finance.plots import plot_cumulative_excess
from moe_zoo.finance.predict import score_days
from moe_zoo.finance.qlib_preset import PRESETS, QlibPreset, load_market, preset
from moe_zoo.finance.train import TrainConfig, default_split, fit

_log = get_logger(__name__)
PACKAGE_ROOT = Path(__file__).resolve().parents[3]
MODELS = ("miga-conv", "miga-conv-single", "finance-linear", "finance-mlp", "finance-gru", "finance-lstm",
          "finance-transformer", "lightgbm")
LABELS = {"miga-conv": "MIGA-Conv (MoE)", "miga-conv-single": "MIGA-Conv backbone, no MoE", "finance-linear": "Linear",
          "finance-mlp": "MLP", "finance-gru": "GRU", "finance-lstm": "LSTM", "finance-transformer": "Transformer",
          "lightgbm": "LightGBM"}
# Longest first, so that the worker pool ends evenly.
COST_ORDER = ("miga-conv", "finance-transformer", "finance-lstm", "finance-gru", "miga-conv-single", "lightgbm",
              "finance-mlp", "finance-linear")
README_START, README_END = "<!-- benchmark-summary:start -->", "<!-- benchmark-summary:end -->"


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    feature_set: str
    train: TrainConfig
    topk: int
    n_drop: int
    last_days: int | None = None         # keep only the latest days of the panel
    source: str | None = None            # a Qlib provider directory (presets); None: built-in data
    preset: str | None = None            # the Qlib preset's name (market, index, split, limits)

    def protocol(self) -> dict:
        """What a stored run must match to be reused."""
        return {"feature_set": self.feature_set, "train": self.train.to_dict(), "topk": self.topk,
                "n_drop": self.n_drop, "last_days": self.last_days, "source": self.source, "preset": self.preset}

    @property
    def market(self) -> QlibPreset | None:
        return preset(self.preset) if self.preset else None

    def backtest_config(self) -> BacktestConfig:
        market = self.market
        if market is None:
            return BacktestConfig(topk=self.topk, n_drop=self.n_drop)
        return BacktestConfig(topk=self.topk, n_drop=self.n_drop, limit_threshold=market.limit_threshold,
                              trading_days=market.trading_days)

    def describe(self) -> str:
        """The backtest protocol in words, for the report."""
        market = self.market
        against = (f"the index {market.benchmark}, China's price limit ±{market.limit_threshold:.1%} (no buying at "
                   f"limit-up, no selling at limit-down), annualised x{market.trading_days}; features normalised with "
                   f"the train segment's statistics (Qlib's RobustZScoreNorm)" if market else
                   "the equal-weight universe (Qlib-style additive annualisation x252)")
        return (f"TopK-Dropout top {self.topk} / drop {self.n_drop}, costs 5 bp open / 15 bp close, excess over "
                f"{against}.")


def preset_experiment(name: str, source: str, quick: bool) -> Experiment:
    """Qlib's China benchmark protocol on the Qlib provider directory ``source``."""
    market = preset(name)
    train = TrainConfig(epochs=2, patience=2) if quick else TrainConfig()
    return Experiment(name, f"{name.upper()} (Qlib data at {source}), Alpha158", "alpha158", train, market.topk,
                      market.n_drop, source=str(source), preset=name)


def experiments(quick: bool) -> list[Experiment]:
    if quick:
        return [Experiment("sp500", "S&P 500 2009-10 (quick)", "alpha158-20", TrainConfig(epochs=2, patience=2), 30, 5),
                Experiment("sp20", "20 stocks (quick: last 1,500 days)", "alpha158-close",
                           TrainConfig(epochs=2, patience=2, days_per_batch=32), 5, 1, last_days=1500)]
    return [Experiment("sp500", "S&P 500 2009-08..2010-08, 524 stocks, Alpha158", "alpha158", TrainConfig(), 30, 5),
            Experiment("sp20", "20 US large caps 2011-2022, close-only Alpha158", "alpha158-close",
                       TrainConfig(days_per_batch=32), 5, 1, last_days=3000)]


@lru_cache(maxsize=2)
def experiment_data(exp: Experiment) -> tuple[FeaturePanel, Split, pd.Series | None]:
    """The experiment's features, split and index closes (presets only), once per worker process."""
    market = exp.market
    if market is not None:
        panel, index = load_market(exp.source, market)
        fp = build_feature_panel(panel, DataConfig(feature_set=exp.feature_set, norm="fit"),
                                 fit_period=market.split.train)
        return fp, market.split, index
    panel = load_sp500_2009() if exp.name == "sp500" else load_sp20_long()
    if exp.last_days:
        days = panel.index.get_level_values("datetime").unique().sort_values()[-exp.last_days:]
        panel = panel[panel.index.get_level_values("datetime") >= days[0]]
    fp = build_feature_panel(panel, DataConfig(feature_set=exp.feature_set))
    return fp, default_split(fp.dates), None


def run_one(exp: Experiment, name: str, seed: int) -> dict:
    """Train ``name`` with ``seed`` on ``exp``'s split; test-period signal metrics and backtest."""
    fp, split, index = experiment_data(exp)
    test_days = fp.date_index(split.dates("test", fp.dates))
    wall, cpu = time.perf_counter(), time.process_time()
    if name == "lightgbm":
        model = fit_lightgbm(fp, split, seed=seed, threads=torch.get_num_threads())
        scores, epochs, best_epoch = model.score(fp, test_days), None, None
    else:
        seed_everything(seed)
        net = create_model(name, data=fp.config.to_dict())
        result = fit(net, fp, split, exp.train, seed=seed, device="cpu")
        scores, epochs, best_epoch = score_days(result.model, fp, test_days), len(result.history), result.best_epoch
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    score_series = fp.frame(scores, "score", test_days).dropna()
    signal = signal_metrics(score_series, fp.frame(fp.label[test_days], "label", test_days))
    close = pd.DataFrame(fp.close, index=fp.dates, columns=fp.instruments)
    bt = backtest(score_series, close, exp.backtest_config(), benchmark=index)
    curve = bt.cumulative_excess()
    return {"model": name, "seed": seed, "protocol": exp.protocol(), **signal.as_dict(), **bt.summary,
            "train_seconds": wall, "train_cpu_seconds": cpu, "epochs": epochs, "best_epoch": best_epoch,
            "curve": {f"{d:%Y-%m-%d}": round(float(v), 6) for d, v in curve.items()}, "split": split.to_dict()}


def _worker_init() -> None:
    torch.set_num_threads(1)
    setup_logging("WARNING")


def _task(exp: Experiment, name: str, seed: int, path: str) -> str:
    write_text_atomic(path, json.dumps(run_one(exp, name, seed)))
    return path


def _result_path(root: Path, exp: Experiment, name: str, seed: int) -> Path:
    return root / exp.name / f"{name}-s{seed}.json"


def _stored(path: Path, exp: Experiment) -> dict | None:
    if not path.exists():
        return None
    run = json.loads(path.read_text())
    return run if run.get("protocol") == exp.protocol() else None


def run_tasks(plan: Sequence[tuple[Experiment, str, int]], root: Path, jobs: int) -> None:
    """Run every task without a stored result (in ``jobs`` worker processes)."""
    todo = [(exp, name, seed) for exp, name, seed in plan if _stored(_result_path(root, exp, name, seed), exp) is None]
    todo.sort(key=lambda t: (COST_ORDER.index(t[1]) if t[1] in COST_ORDER else len(COST_ORDER), t[0].name, t[2]))
    _log.info("%d of %d runs to do, %d worker(s)", len(todo), len(plan), jobs)
    if not todo:
        return
    if jobs == 1:                              # in this process (no worker start-up)
        for exp, name, seed in tqdm(todo, desc="finance benchmark runs"):
            _task(exp, name, seed, str(_result_path(root, exp, name, seed)))
        return
    bar = tqdm(total=len(todo), desc="finance benchmark runs")
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init) as pool:
        futures = {pool.submit(_task, exp, name, seed, str(_result_path(root, exp, name, seed))): (exp.name, name, seed)
                   for exp, name, seed in todo}
        for future in as_completed(futures):
            future.result()
            bar.update()
            bar.set_postfix_str("/".join(map(str, futures[future])))
    bar.close()


# ----------------------------------------------------------------------------- report
def _rows(runs: list[dict], models: Sequence[str]) -> list[list[str]]:
    rows = []
    for name in models:
        mine = [r for r in runs if r["model"] == name]

        def col(key: str, digits: int = 3, scale: float = 1.0, runs_: list[dict] = mine) -> str:
            return format_mean_std([r[key] for r in runs_], digits, scale)

        epochs = "-" if name == "lightgbm" else f"{np.mean([r['epochs'] for r in mine]):.1f}"
        rows.append([LABELS[name], col("ic", 4), col("icir"), col("rank_ic", 4), col("rank_icir"),
                     col("annualized_return_with_cost", 1, 100), col("information_ratio_with_cost", 2),
                     col("max_drawdown_with_cost", 1, 100), col("annualized_return_without_cost", 1, 100),
                     col("turnover", 2), col("train_seconds", 0), epochs])
    return rows


HEADERS = ["model", "IC", "ICIR", "Rank IC", "Rank ICIR", "excess return %/yr", "IR", "max drawdown %",
           "excess w/o cost %/yr", "daily turnover", "train s (wall)", "epochs"]


def _rank(runs: list[dict], models: Sequence[str], key: str) -> tuple[int, str]:
    """Where MIGA-Conv's mean ``key`` ranks among the models (1 = best) and the best model."""
    means = {m: np.mean([r[key] for r in runs if r["model"] == m]) for m in models}
    order = sorted(means, key=means.get, reverse=True)
    return order.index("miga-conv") + 1, order[0]


def _verdict(runs: list[dict], models: Sequence[str]) -> str:
    """One sentence from the numbers: MIGA's rank by IC, Rank IC and excess return, vs the no-MoE backbone."""
    if "miga-conv" not in models:
        return ""
    parts = []
    for key, label in (("ic", "IC"), ("rank_ic", "Rank IC"), ("annualized_return_with_cost", "excess return")):
        rank, best = _rank(runs, models, key)
        parts.append(f"{label} {rank} of {len(models)}" + (f" (best: {LABELS[best]})" if rank > 1 else ""))
    text = "MIGA-Conv ranks " + ", ".join(parts) + "."
    if "miga-conv-single" in models:
        ic = {m: mean_std(r["ic"] for r in runs if r["model"] == m) for m in ("miga-conv", "miga-conv-single")}
        diff = ic["miga-conv"][0] - ic["miga-conv-single"][0]
        noise = max(ic["miga-conv"][1], ic["miga-conv-single"][1])
        text += (f" Against its own backbone without experts the mean IC differs by {diff:+.4f} "
                 f"({'within' if abs(diff) <= noise else 'beyond'} one seed std, {noise:.4f}).")
    return text


def _curves(runs: list[dict], models: Sequence[str]) -> dict[str, list[pd.Series]]:
    out = {}
    for name in models:
        series = [pd.Series(r["curve"]).rename(index=pd.Timestamp) for r in runs if r["model"] == name]
        if series:
            out[LABELS[name]] = series
    return out


def _latency(net: torch.nn.Module, fp: FeaturePanel, day: int, stocks: np.ndarray, threads: int) -> float:
    """Median ms to build one day's windows and score them (30 timed calls after 3 warm-ups)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    samples = []
    with torch.no_grad():
        for k in range(33):
            began = time.perf_counter()
            net(fp.windows(day, stocks))
            if k >= 3:
                samples.append(time.perf_counter() - began)
    torch.set_num_threads(previous)
    return float(np.median(samples) * 1000)


def speed_section(models: Sequence[str], sp500_runs: list[dict], repeats: int = 3) -> tuple[str, dict]:
    """Alpha158 on 524 x 245, MIGA training time (from the benchmark's runs), one-day scoring latency."""
    panel = load_sp500_2009()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fp = build_feature_panel(panel)
        times.append(time.perf_counter() - began)
    day = len(fp.dates) - 1
    stocks = fp.day_members(day, labelled=False)[:500]
    rows = [[f"Alpha158 (158 factors) + normalisation + labels, {len(fp.instruments)} stocks x {len(fp.dates)} days",
             f"{np.median(times):.2f} s wall (median of {repeats})", "< 30 s"]]
    miga = [r for r in sp500_runs if r["model"] == "miga-conv"]
    if miga:
        rows.append(["train MIGA-Conv on the built-in S&P data (`TrainConfig` defaults = `moe-zoo finance train`), "
                     f"1 thread per run, {np.mean([r['epochs'] for r in miga]):.1f} epochs on average",
                     f"{format_mean_std([r['train_seconds'] for r in miga], 0)} s wall, "
                     f"{format_mean_std([r['train_cpu_seconds'] for r in miga], 0)} s CPU ({len(miga)} seeds)",
                     "< 600 s on 2 cores"])
    latency = {}
    for name in (m for m in models if m != "lightgbm"):
        net = create_model(name).eval()
        latency[name] = {t: _latency(net, fp, day, stocks, t) for t in (1, 2)}
        rows.append([f"score one day: windows + forward, {len(stocks)} stocks x 20 days x 158 factors, {LABELS[name]}",
                     f"{latency[name][1]:.1f} ms (1 thread), {latency[name][2]:.1f} ms (2 threads); median of 30",
                     "< 100 ms" if name == "miga-conv" else ""])
    return markdown_table(["measurement", "time", "target"], rows), {"features_s": times, "latency_ms": latency}


def _readme_summary(sections: list[tuple[str, list[dict], Experiment]], models: Sequence[str], speed: dict,
                    command: str, n_seeds: int) -> str:
    lines = [f"Measured by `{command}` ({n_seeds} seeds each, mean ± std; details, costs, turnover and plots in "
             "[BENCHMARKS.md](BENCHMARKS.md)). Test periods only; excess return is annualised over the "
             "equal-weight universe, with costs.", ""]
    for title, runs, _exp in sections:
        rows = [[LABELS[m], format_mean_std([r["ic"] for r in runs if r["model"] == m], 4),
                 format_mean_std([r["rank_ic"] for r in runs if r["model"] == m], 4),
                 format_mean_std([r["icir"] for r in runs if r["model"] == m], 3),
                 format_mean_std([r["annualized_return_with_cost"] for r in runs if r["model"] == m], 1, 100),
                 format_mean_std([r["information_ratio_with_cost"] for r in runs if r["model"] == m], 2)]
                for m in models]
        lines += [f"**{title}** ({runs[0]['days']} test days). {_verdict(runs, models)}", "",
                  markdown_table(["model", "IC", "Rank IC", "ICIR", "excess %/yr", "IR"], rows), ""]
    if speed:
        miga_ms = speed["latency_ms"].get("miga-conv", {})
        lines.append(f"Speed (shared 2-core CPU): Alpha158 for 524 x 245 in {np.median(speed['features_s']):.1f} s; "
                     + (f"one day's 500 stocks scored by MIGA-Conv in {miga_ms[1]:.0f} ms (1 thread) / "
                        f"{miga_ms[2]:.0f} ms (2 threads); " if miga_ms else "")
                     + "training time in BENCHMARKS.md.")
    return "\n".join(lines).strip()


def write_readme_summary(readme: Path, summary: str) -> bool:
    """Replace the text between the summary markers of ``readme``; False when it has no markers."""
    return replace_marked_block(readme, README_START, README_END, summary)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 2 epochs, small data")
    parser.add_argument("--seeds", type=positive_int, default=5, help="number of seeds (0, 1, ...)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--experiments", nargs="+", default=["sp500", "sp20"], choices=("sp500", "sp20"))
    parser.add_argument("--data", default=None, help="a Qlib provider directory (with --preset)")
    parser.add_argument("--preset", default=None, choices=sorted(PRESETS),
                        help="Qlib's China benchmark protocol on --data (instead of the built-in experiments)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="override the epoch budget (and patience)")
    parser.add_argument("--jobs", type=positive_int, default=min(2, os.cpu_count() or 1),
                        help="worker processes, one torch thread each (default: 2; 1 runs in this process)")
    parser.add_argument("--fresh", action="store_true", help="ignore stored results")
    parser.add_argument("--out", default=None, help="report folder (default: the package; presets: ./finance-bench-<preset>)")
    args = parser.parse_args(argv)
    if bool(args.data) != bool(args.preset):
        parser.error("--data and --preset go together (the built-in experiments need neither)")
    setup_logging("INFO")
    seeds = list(range(2 if args.quick else args.seeds))
    models = [m for m in args.models if m != "lightgbm" or lightgbm_available()]
    if len(models) < len(args.models):
        _log.warning("lightgbm is not installed (pip install 'moe-zoo-finance[lightgbm]'); skipping it")
    out = Path(args.out or (Path.cwd() / f"finance-bench-{args.preset}" if args.preset else PACKAGE_ROOT))
    base = out / "benchmarks" / ("quick" if args.quick else "")
    exps = ([preset_experiment(args.preset, str(Path(args.data).expanduser().resolve()), args.quick)] if args.preset
            else [e for e in experiments(args.quick) if e.name in args.experiments])
    if args.epochs:
        exps = [replace(e, train=replace(e.train, epochs=args.epochs, patience=min(e.train.patience, args.epochs)))
                for e in exps]
    plan = [(exp, name, seed) for exp in exps for name in models for seed in seeds]
    if args.fresh:
        for exp, name, seed in plan:
            _result_path(base / "results", exp, name, seed).unlink(missing_ok=True)
    began = time.perf_counter()
    run_tasks(plan, base / "results", max(1, args.jobs))
    sections, done = [], []
    for exp in exps:
        runs = [json.loads(_result_path(base / "results", exp, n, s).read_text()) for n in models for s in seeds]
        split = runs[0]["split"]
        figure = plot_cumulative_excess(_curves(runs, models), base / "figures" / f"{exp.name}_excess.png",
                                        f"{exp.title}: test {split['test'][0]}..{split['test'][1]}")
        body = (f"Split: train {split['train'][0]}..{split['train'][1]}, valid {split['valid'][0]}..{split['valid'][1]}, "
                f"test {split['test'][0]}..{split['test'][1]} ({runs[0]['days']} test days). {exp.describe()} "
                f"Features: `{exp.feature_set}` x 20 days. Training: "
                f"`{exp.train.to_json(indent=None)}`.\n\n{_verdict(runs, models)}\n\n"
                f"{markdown_table(HEADERS, _rows(runs, models))}\n\n"
                f"![cumulative excess return]({figure.relative_to(out).as_posix()})")
        sections.append((exp.title, body))
        done.append((exp.title, runs, exp))
    speed: dict = {}
    if not args.quick and any(e.name == "sp500" for e in exps):
        table, speed = speed_section(models, next(runs for _, runs, e in done if e.name == "sp500"))
        sections.append(("Speed", f"Wall-clock times on the shared machine (other jobs were running: upper "
                                  f"bounds).\n\n{table}"))
    command = "python packages/finance/benchmarks/run.py" + (" --quick" if args.quick else "") + (
        f" --data {args.data} --preset {args.preset}" if args.preset else "")
    notes = (f"Every neural model: same features, split, CSRankNorm target, -IC loss, Adam 1e-3, at most "
             f"{exps[0].train.epochs} epochs with early stopping on the valid period's IC (patience "
             f"{exps[0].train.patience}, best epoch kept); LightGBM: Qlib's Alpha158 parameters, early stopping on "
             f"valid l2. {len(models)} models x {len(seeds)} seeds per experiment, {max(1, args.jobs)} worker process(es) "
             f"with one torch thread each; this invocation took {(time.perf_counter() - began) / 60:.0f} min "
             f"(stored runs are reused). The machine was shared with other jobs, so times are upper bounds.")
    path = write_benchmarks_md(out / ("benchmarks/quick/BENCHMARKS.md" if args.quick else "BENCHMARKS.md"),
                               "moe-zoo-finance benchmarks: MIGA vs baselines", command=command, sections=sections,
                               notes=notes, seeds=seeds)
    _log.info("wrote %s", path)
    complete = not args.quick and len(exps) == 2 and len(models) == len(MODELS)
    if complete and write_readme_summary(out / "README.md", _readme_summary(done, models, speed, command, len(seeds))):
        _log.info("updated the summary in %s", out / "README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
