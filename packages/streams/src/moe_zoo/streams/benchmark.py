"""Benchmark: DriftMoE (both variants) against river's ARF, SRP, Leveraging Bagging, Hoeffding
Adaptive Tree and a plain Hoeffding tree, prequentially, on the same streams and seeds.

``python packages/streams/benchmarks/run.py`` (= ``make bench-streams``) writes ``BENCHMARKS.md``
next to the package README, the accuracy-over-time figures under ``benchmarks/figures/``, the
per-run numbers in ``benchmarks/results/records.json`` and the summary table into the README
(between the ``benchmark-summary`` markers). Every (stream, model, seed) run is an independent
job; jobs are spread over ``--workers`` processes (one torch thread each). ``--quick`` is a smoke
run of the same code on short streams; it writes under ``benchmarks/quick/`` (not committed).
``--report-only`` re-renders the report from the saved records.

Stream lengths are scaled down from the paper's 1M instances (see ``FULL_LENGTHS``): drift
centres keep their fractions of the stream and gradual widths scale with it
(:mod:`moe_zoo.streams.data`), so the full run fits in about an hour of two cores.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import json
import multiprocessing
import pstats
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from moe_zoo.core import get_logger, setup_logging
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
from moe_zoo.streams.baselines import describe, list_benchmark_models, make_model
from moe_zoo.streams.data import PAPER_LENGTH, get_stream_spec
from moe_zoo.streams.evaluate import prequential_side_by_side
from moe_zoo.streams.plots import plot_accuracy_over_time
from moe_zoo.streams.router import warm_up

_log = get_logger(__name__)
PACKAGE = Path(__file__).resolve().parents[3]
SUMMARY_START, SUMMARY_END = "<!-- benchmark-summary:start -->", "<!-- benchmark-summary:end -->"
# instances per stream in the full run (None: the whole real stream); the paper used 1M
# (LED costs ~65 ms of CPU per instance for the seven models together, LevBag and SRP most of it;
# SEA ~12 ms; see the throughput table): about 100 CPU minutes in all
FULL_LENGTHS: dict[str, int | None] = {
    "led_a": 5_000, "led_g": 5_000, "sea_a": 15_000, "sea_g": 15_000, "rbf_m": 10_000, "rbf_f": 10_000,
    "agr_a": 10_000, "phishing": None, "image_segments": None, "bananas": None, "noaa": None,
}
QUICK_LENGTHS: dict[str, int | None] = {"sea_a": 1_500, "led_g": 600, "phishing": None}
PROFILE_STREAMS = ("sea_a", "led_a")


@dataclass(frozen=True)
class Plan:
    """What one benchmark run does (the full run or the ``--quick`` smoke run)."""

    quick: bool
    lengths: dict[str, int | None]
    seeds: tuple[int, ...]
    models: tuple[str, ...]
    profile_n: int

    @property
    def out(self) -> Path:
        return PACKAGE / "benchmarks" / "quick" if self.quick else PACKAGE

    @property
    def figures(self) -> Path:
        return self.out / "figures" if self.quick else PACKAGE / "benchmarks" / "figures"

    @property
    def records_path(self) -> Path:
        return PACKAGE / "benchmarks" / ("quick" if self.quick else "results") / "records.json"

    def length(self, stream: str) -> int:
        return self.lengths[stream] or get_stream_spec(stream).default_length


def make_plan(quick: bool, seeds: list[int] | None = None, models: list[str] | None = None) -> Plan:
    return Plan(quick=quick, lengths=dict(QUICK_LENGTHS if quick else FULL_LENGTHS),
                seeds=tuple(seeds if seeds is not None else ((0, 1) if quick else (0, 1, 2))),
                models=tuple(models or list_benchmark_models()), profile_n=1_000 if quick else 2_000)


def _window(n: int) -> int:
    return max(25, n // 40)


# run interleaved in one process, so their throughput ratios to the last one (ARF) are fair
SIDE_BY_SIDE = ("driftmoe-plus", "arf")


def run_job(stream: str, n: int, models: tuple[str, ...], seed: int) -> list[dict]:
    """One prequential run of ``models`` (several: side by side, interleaved in this process);
    returns one JSON-ready record per model."""
    torch.set_num_threads(1)
    results = prequential_side_by_side({m: make_model(m, seed) for m in models},
                                       get_stream_spec(stream).build(n, seed), window=_window(n), total=n)
    together = list(models) if len(models) > 1 else None
    return [{"stream": stream, "model": m, "seed": seed, "side_by_side": together, **r.to_dict()}
            for m, r in results.items()]


def _init_worker() -> None:
    torch.set_num_threads(1)
    setup_logging("WARNING")


def make_jobs(plan: Plan, models: tuple[str, ...]) -> list[tuple]:
    """``(stream, n, models, seed)`` jobs: the :data:`SIDE_BY_SIDE` models that run together (when
    ARF and at least one other run), every other model alone; the most expensive first."""
    pair = tuple(m for m in SIDE_BY_SIDE if m in models)
    pair = pair if len(pair) > 1 and SIDE_BY_SIDE[-1] in pair else ()
    groups = ([pair] if pair else []) + [(m,) for m in models if m not in pair]
    cost = {"led": 4.0, "rbf": 2.0, "agr": 1.5}
    jobs = [(s, plan.length(s), g, seed) for s in plan.lengths for g in groups for seed in plan.seeds]
    heavy = ("srp", "levbag", "arf")
    jobs.sort(key=lambda j: (j[3], -j[1] * cost.get(j[0][:3], 1.0) * (3.0 if any(m in heavy for m in j[2]) else 1.0)))
    return jobs  # seed by seed, so a run stopped early has whole seeds


def run_jobs(plan: Plan, workers: int, models: tuple[str, ...] | None = None,
             on_records: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """Every job of ``models`` (default: the plan's) over ``workers`` processes; ``on_records``
    receives the records so far after each job (to save them as they come)."""
    jobs = make_jobs(plan, models or plan.models)
    context = multiprocessing.get_context("spawn")
    records = []
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
        futures = [pool.submit(run_job, *job) for job in jobs]
        for future in tqdm(as_completed(futures), total=len(futures), desc="benchmark runs", mininterval=5.0):
            records.extend(future.result())
            if on_records is not None:
                on_records(records)
    return records


PROFILE_MODELS = ("driftmoe-plus", "arf")
# (file suffix, function) whose cumulative cProfile time makes each part; parts may nest (the split
# search and the naive-Bayes term run inside the trees' learn_one / predict_proba_one). river's
# trees (ARF) and the vectorised trees of moe_zoo.streams.fast_tree (DriftMoE+: one call per
# instance for all experts' predictions, one for all learning trees)
PROFILE_GROUPS = {
    "DriftMoE's router (encode, route, buffer, Adam step)": [("streams/router.py", "encode"),
                                                           ("streams/router.py", "route"),
                                                           ("streams/router.py", "observe")],
    "trees' predictions (river `predict_proba_one`, ARF's members also in learn_one; fast trees `predict_together`)": [
        ("hoeffding_tree_classifier.py", "predict_proba_one"), ("streams/fast_tree.py", "predict_together")],
    "trees' learning (river `learn_one`; fast trees `learn_together`)": [
        ("hoeffding_tree_classifier.py", "learn_one"), ("streams/fast_tree.py", "learn_together")],
    "... of which the split search": [("hoeffding_tree_classifier.py", "_attempt_to_split"),
                                      ("streams/fast_tree.py", "_attempt_splits")],
    "naive-Bayes leaf term (in predictions and learning)": [("tree/utils.py", "do_naive_bayes_prediction"),
                                                            ("streams/fast_tree.py", "naive_bayes")],
    "ADWIN drift detectors": [("drift/adwin.py", "update")],
}
TREE_CALLS = {"predict_proba_one": ("predict_proba_one", "predict_together"), "learn_one": ("learn_one", "learn_together")}


def profile_models(plan: Plan, models: tuple[str, ...] = PROFILE_MODELS) -> list[dict]:
    """Where DriftMoE+'s and ARF's time goes, side by side (cProfile over the same short streams,
    seed 0): each part's cumulative seconds (:data:`PROFILE_GROUPS`), the total, and the tree calls
    per instance."""
    warm_up()  # torch's lazy imports on DriftMoE's first Adam step are not its per-instance cost
    rows = []
    for stream in PROFILE_STREAMS:
        data = list(get_stream_spec(stream).build(plan.profile_n, 0))
        for model_name in models:
            torch.set_num_threads(1)
            model = make_model(model_name, 0)
            profiler = cProfile.Profile()
            profiler.enable()
            for x, y in data:
                model.predict_one(x)
                model.learn_one(x, y)
            profiler.disable()
            stats = pstats.Stats(profiler)
            row = {"stream": stream, "n": plan.profile_n, "model": model_name, "total": stats.total_tt}
            for label, keys in PROFILE_GROUPS.items():
                row[label] = sum(ct for (file, _, name), (_, _, _, ct, _) in stats.stats.items()
                                 if any(file.endswith(f) and name == n for f, n in keys))
            for name, (river_name, fast_name) in TREE_CALLS.items():
                row[f"tree {name} calls per instance"] = sum(
                    nc for (file, _, fn), (_, nc, _, _, _) in stats.stats.items()
                    if (file.endswith("hoeffding_tree_classifier.py") and fn == river_name)
                    or (file.endswith("streams/fast_tree.py") and fn == fast_name)) / plan.profile_n
            rows.append(row)
    return rows


def _profile_table(rows: list[dict]) -> str:
    if not rows or "DriftMoE's router (encode, route, buffer, Adam step)" not in rows[0]:
        return "(not run with this version of the benchmark)"
    table = [["total (cProfile seconds per 1,000 instances)", *[f"{1000 * r['total'] / r['n']:.1f}" for r in rows]]]
    table += [[label, *[f"{100 * r.get(label, 0.0) / r['total']:.1f} %" for r in rows]] for label in PROFILE_GROUPS]
    table += [[f"tree `{name}` calls per instance (fast trees: `{fast}`, all trees in one call)",
               *[f"{r[f'tree {name} calls per instance']:.1f}" for r in rows]] for name, (_, fast) in TREE_CALLS.items()]
    return markdown_table(["part", *[f"{r['model']}, {r['stream']} ({r['n']:,} inst.)" for r in rows]], table)


def _cell(values: list[float], digits: int, scale: float = 1.0) -> str:
    """``mean ± std`` of ``values``, or ``-`` where the run did not finish (a run stopped early)."""
    values = list(values)
    return format_mean_std(values, digits, scale) if values else "-"


def _mean(values) -> float:
    values = list(values)
    return mean_std(values)[0] if values else float("nan")


def _pick(records: list[dict], **match) -> list[dict]:
    return [r for r in records if all(r[k] == v for k, v in match.items())]


def _metric_table(plan: Plan, records: list[dict], key: str, scale: float, digits: int) -> str:
    headers = ["stream", *plan.models]
    rows = []
    for stream in plan.lengths:
        means = {m: _mean(r[key] * scale for r in _pick(records, stream=stream, model=m)) for m in plan.models}
        best = max(v for v in means.values() if v == v)
        cells = []
        for m in plan.models:
            cell = _cell([r[key] for r in _pick(records, stream=stream, model=m)], digits, scale)
            cells.append(f"**{cell}**" if means[m] == best else cell)
        rows.append([stream, *cells])
    return markdown_table(headers, rows)


def _speed_table(plan: Plan, records: list[dict]) -> str:
    headers = ["stream", *[f"{m} (inst/s)" for m in plan.models]]
    rows = []
    for stream in plan.lengths:
        rows.append([stream, *[_cell([r["throughput"] for r in _pick(records, stream=stream, model=m)], 0)
                               for m in plan.models]])
    return markdown_table(headers, rows)


def _memory_table(plan: Plan, records: list[dict]) -> str:
    headers = ["stream", *[f"{m} (KiB)" for m in plan.models]]
    rows = [[stream, *[f"{_mean(r['peak_memory_bytes'] / 1024 for r in _pick(records, stream=stream, model=m)):,.0f}"
                       for m in plan.models]] for stream in plan.lengths]
    return markdown_table(headers, rows)


def _router_table(plan: Plan, records: list[dict]) -> str:
    """Router share of each DriftMoE variant's time, per stream."""
    variants = [m for m in plan.models if m.startswith("driftmoe")]
    rows = []
    for stream in plan.lengths:
        row = [stream]
        for m in variants:
            share = [r["router_share"] for r in _pick(records, stream=stream, model=m)]
            row.append(_cell(share, 1, 100.0) + (" %" if share else ""))
        rows.append(row)
    return markdown_table(["stream", *[f"{m}: router share" for m in variants]], rows)


def post_drift_accuracy(record: dict, drifts: list[int], windows: int = 2) -> float:
    """Accuracy over the ``windows`` curve windows that start at or after each drift centre."""
    w, curve = record["window"], record["curve"]
    values = [v for p in drifts for v in curve[-(-p // w):-(-p // w) + windows]]
    return float(np.mean(values)) if values else float("nan")


def _post_drift_table(plan: Plan, records: list[dict]) -> str:
    """Accuracy right after the drifts of the synthetic streams that have drift centres."""
    rows = []
    for stream in plan.lengths:
        spec, n = get_stream_spec(stream), plan.length(stream)
        drifts = spec.drift_positions(n)
        if not drifts:
            continue
        cells = {m: [post_drift_accuracy(r, drifts) for r in _pick(records, stream=stream, model=m)] for m in plan.models}
        best = max(_mean(v) for v in cells.values() if v)
        rows.append([stream, *[f"**{_cell(cells[m], 2, 100.0)}**" if cells[m] and _mean(cells[m]) == best
                               else _cell(cells[m], 2, 100.0) for m in plan.models]])
    return markdown_table(["stream", *plan.models], rows)


def _side_by_side_table(plan: Plan, records: list[dict]) -> tuple[str, dict]:
    """Throughput of each :data:`SIDE_BY_SIDE` DriftMoE+ setting and of ARF, measured interleaved in
    one process, with their ratio; ``facts`` per setting (streams with a ratio >= 2, the smallest)."""
    *firsts, second = SIDE_BY_SIDE
    firsts = [m for m in firsts if m in plan.models]
    rows, facts = [], {m: {"at_least_2x": 0, "streams": 0, "min_ratio": float("inf"), "max_ratio": 0.0} for m in firsts}
    for stream in plan.lengths:
        theirs = {r["seed"]: r["throughput"] for r in _pick(records, stream=stream, model=second) if r.get("side_by_side")}
        row = [stream]
        for first in firsts:
            ours = {r["seed"]: r["throughput"] for r in _pick(records, stream=stream, model=first) if r.get("side_by_side")}
            seeds = sorted(set(ours) & set(theirs))
            if not seeds:
                row += ["-", "-"]
                continue
            ratios = [ours[s] / theirs[s] for s in seeds]
            fact = facts[first]
            fact["streams"] += 1
            fact["at_least_2x"] += mean_std(ratios)[0] >= 2.0
            fact["min_ratio"] = min(fact["min_ratio"], mean_std(ratios)[0])
            fact["max_ratio"] = max(fact["max_ratio"], mean_std(ratios)[0])
            row += [format_mean_std([ours[s] for s in seeds], 0), format_mean_std(ratios, 2) + "x"]
        if len(row) > 1 and theirs:
            rows.append([*row, format_mean_std(list(theirs.values()), 0)])
    header = ["stream", *[c for m in firsts for c in (f"{m} (inst/s)", "ratio to arf")], f"{second} (inst/s)"]
    return markdown_table(header, rows), facts


def _versus_best(plan: Plan, records: list[dict], references: tuple[str, ...] = ("arf", "srp")) -> tuple[str, dict]:
    """Accuracy difference of each DriftMoE variant to the best of ``references`` per stream, the
    means taken over the seeds that the variant and every reference finished (a stopped run may
    hold different seeds per model; ``partial`` marks a comparison on fewer seeds than the plan's)."""
    lines, facts = [], {}
    if not all(m in plan.models for m in references):
        return "", facts

    def accuracy(stream: str, model: str) -> dict[int, float]:
        return {r["seed"]: r["accuracy"] for r in _pick(records, stream=stream, model=model)}

    for m in [m for m in plan.models if m.startswith("driftmoe")]:
        close, diffs, streams = 0, [], 0
        for stream in plan.lengths:
            runs = [accuracy(stream, model) for model in (m, *references)]
            seeds = sorted(set.intersection(*(set(r) for r in runs)))
            if not seeds:
                continue
            ours, *theirs = [_mean(r[s] for s in seeds) for r in runs]
            best = max(theirs)
            few = f" ({len(seeds)} seed{'s' * (len(seeds) > 1)})" if len(seeds) < len(plan.seeds) else ""
            diffs.append(f"{stream} {100 * (ours - best):+.1f}{few}")
            close += ours >= best - 0.01
            streams += 1
        facts[m] = (close, streams)
        lines.append(f"- **{m}** vs the best of {'/'.join(references).upper()} (accuracy points, over the seeds all "
                     f"three finished): {', '.join(diffs)}; within 1 point or better on {close} of the {streams} "
                     "streams it finished.")
    return "\n".join(lines), facts


def _figures(plan: Plan, records: list[dict]) -> list[Path]:
    paths = []
    for kind in ("synthetic", "real"):
        panels = []
        for stream in [s for s in plan.lengths if get_stream_spec(s).kind == kind]:
            spec, n = get_stream_spec(stream), plan.length(stream)
            curves = {m: np.mean([r["curve"] for r in _pick(records, stream=stream, model=m)], axis=0)
                      for m in plan.models if _pick(records, stream=stream, model=m)}
            panels.append({"title": f"{stream} ({n:,} instances)", "curves": curves, "window": _window(n),
                           "drifts": spec.drift_positions(n), "drift_width": spec.drift_width(n) if spec.gradual else 0})
        if panels:
            paths.append(plot_accuracy_over_time(panels, plan.figures / f"accuracy_over_time_{kind}.png"))
    return paths


def _streams_section(plan: Plan) -> str:
    rows = []
    for stream in plan.lengths:
        spec, n = get_stream_spec(stream), plan.length(stream)
        drifts = ", ".join(f"{p:,}" for p in spec.drift_positions(n)) or "-"
        width = spec.drift_width(n) if spec.drift_positions(n) and spec.kind == "synthetic" else "-"
        paper = f"{PAPER_LENGTH:,}" if spec.kind == "synthetic" else "same"
        rows.append([stream, spec.description, f"{n:,}", paper, drifts, width])
    return markdown_table(["stream", "what", "instances here", "paper", "drift centres", "drift width"], rows)


def _summary(plan: Plan, records: list[dict], facts: dict, speed: dict) -> str:
    table = _metric_table(plan, records, "accuracy", 100.0, 2)
    n = len(plan.lengths)
    ratio = "".join(f"; {m} runs at {s['min_ratio']:.2f}-{s['max_ratio']:.2f}x ARF(10)'s throughput (measured side by "
                    f"side), at least 2x on {s['at_least_2x']} of {s['streams']} streams" for m, s in speed.items()
                    if s["streams"])
    return (f"Prequential accuracy (%), mean ± std over seeds {', '.join(map(str, plan.seeds))} "
            f"(`make bench-streams`; best per stream in bold; streams scaled down from the paper's 1M instances, "
            f"see [BENCHMARKS.md](BENCHMARKS.md)):\n\n{table}\n\n"
            f"DriftMoE+ within 1 point of the best of ARF(10)/SRP(10) or better on {_of(facts, 'driftmoe-plus', n)}"
            f"{ratio}. The paper's variants: MoE-Data {_of(facts, 'driftmoe-data', n)}, "
            f"MoE-Task {_of(facts, 'driftmoe-task', n)}.")


def _of(facts: dict, model: str, n: int) -> str:
    close, done = facts.get(model, (0, 0))
    return f"{close} of {done} streams" + ("" if done == n else f" (of the {n}, {n - done} did not finish)")


def _update_readme(summary: str) -> None:
    if not replace_marked_block(PACKAGE / "README.md", SUMMARY_START, SUMMARY_END, summary):
        _log.warning("README has no %s ... %s markers; summary not written", SUMMARY_START, SUMMARY_END)


def report(plan: Plan, records: list[dict], profile: list[dict], workers: int, seconds: float | None,
           hardware: str | None = None, command: str | None = None) -> Path:
    """BENCHMARKS.md, figures and (full run) the README summary from the job records (``hardware``:
    the machine they were measured on, default this one)."""
    figures = _figures(plan, records)
    router_table = _router_table(plan, records)
    versus, facts = _versus_best(plan, records)
    speed_table, speed = _side_by_side_table(plan, records)
    figure_lines = "\n\n".join(f"![{p.stem}]({p.relative_to(plan.out).as_posix()})" for p in figures)
    models = "\n".join(f"- `{m}`: {describe(m)}" for m in plan.models)
    coverage = []
    for m in plan.models:
        runs = len(_pick(records, model=m))
        if runs < len(plan.lengths) * len(plan.seeds):
            coverage.append(f"`{m}` {runs} of {len(plan.lengths) * len(plan.seeds)} runs")
    if coverage:
        models += ("\n\n**This run was stopped early** (time budget on the shared machine; jobs run seed by seed, "
                   "most expensive first): " + ", ".join(coverage) + ". A cell is the mean ± std over the seeds that "
                   "finished (± 0.00: one seed); `-`: no run finished.")
    reused = sorted({r["model"] for r in records if r.get("reused")})
    if reused:
        models += (f"\n\nRows of {', '.join(reused)}: records of the run of {records_date(records)} (same code, "
                   "streams and seeds; their accuracy is deterministic), not rerun; their throughput is from that run.")
    sections = [
        ("Streams", _streams_section(plan)),
        ("Models", models),
        ("Accuracy (%)", _metric_table(plan, records, "accuracy", 100.0, 2) + "\n\n" + versus),
        ("Accuracy after the drifts (%)", "Accuracy over the two curve windows (5 % of the stream) that start at each "
         "drift centre, averaged over the drifts:\n\n" + _post_drift_table(plan, records)),
        ("Cohen's kappa (%)", _metric_table(plan, records, "kappa", 100.0, 2)),
        ("kappa_m (%)", _metric_table(plan, records, "kappa_m", 100.0, 2)),
        ("kappa_t (%)", _metric_table(plan, records, "kappa_t", 100.0, 2)),
        ("Throughput side by side: DriftMoE+ and ARF(10) interleaved in one process",
         "The models test-then-train on the same instances in turn, in one process, so the other jobs on the "
         "machine slow them alike; instances per CPU second of each model's own calls, mean ± std over seeds:\n\n"
         + speed_table),
        ("Throughput (instances per CPU second of predict + learn)", _speed_table(plan, records)),
        ("Peak model memory (river's deep sizeof, + router tensors for DriftMoE)", _memory_table(plan, records)),
        ("DriftMoE's router: share of its time", router_table + "\n\n" +
         "Where DriftMoE+'s and ARF(10)'s time goes, side by side (cProfile over the same instances, seed 0; share "
         "of each model's total of each part's cumulative time; parts nest: the split search is inside `learn_one`, "
         "the naive-Bayes term inside both tree calls; the profiler inflates Python-call-heavy parts, so the router "
         "share above, timed with `perf_counter` without a profiler, is the figure to quote for the router):\n\n"
         + _profile_table(profile)),
        ("Accuracy over time (mean over seeds; dashed: drift centres, shaded: gradual drift width)", figure_lines),
    ]
    paper = paper_scale_section()
    if paper:
        sections.insert(4, ("Paper scale (1M instances)", paper))
    cpu = sum(r["cpu_seconds"] for r in records if not r.get("reused")) / 60
    elapsed = f"; {cpu:.0f} CPU minutes of model time in the models run, wall time {seconds / 60:.0f} min" if seconds else ""
    notes = (f"Prequential (test-then-train) evaluation, every model on the same instances and seeds; {workers} worker "
             f"processes with one torch thread each, on a 2-core machine shared with other jobs{elapsed}. "
             "Throughput counts process CPU time, which the other jobs on the machine disturb far less than wall "
             "time; the router share is measured on wall time (see the harness). Synthetic streams are scaled down "
             "from the paper's 1M instances to fit the time budget: drift centres keep their fractions of the stream "
             "and gradual widths scale with it, so trees see 1-2 % of the paper's data and ensembles with faster "
             "early learning are favoured. The seed changes the generator and the models on synthetic streams, "
             "only the models on real ones. kappa_m and kappa_t are cumulative, as the paper's capymoa evaluator.")
    command = command or "python packages/streams/benchmarks/run.py" + (" --quick" if plan.quick else "")
    path = write_benchmarks_md(plan.out / "BENCHMARKS.md", "moe-zoo-streams benchmarks", command=command,
                               sections=sections, notes=notes, seeds=list(plan.seeds), hardware=hardware)
    summary = _summary(plan, records, facts, speed)
    if not plan.quick:
        _update_readme(summary)
    return path


PAPER_DIR = PACKAGE / "benchmarks" / "results" / "paper_scale"
PAPER_MODELS = ("driftmoe-plus", "arf", "driftmoe-data")
PAPER_WINDOW = 10_000
PAPER_CHECKPOINT = 50_000  # results saved this often: a run cut off by the time budget keeps what it measured


def run_paper_scale(stream: str, models: tuple[str, ...], seed: int, length: int = PAPER_LENGTH) -> Path:
    """``length`` instances (the paper's 1M) of ``stream`` through ``models`` side by side in this
    process; the results so far are written atomically to ``paper_scale/<stream>.json`` every
    ``PAPER_CHECKPOINT`` instances, so a run stopped early still leaves what it measured."""
    torch.set_num_threads(1)
    spec = get_stream_spec(stream)
    path = PAPER_DIR / f"{stream}.json"
    began = time.perf_counter()

    def save(results: dict, finished: bool = False) -> None:
        n = next(iter(results.values())).n
        payload = {"stream": stream, "seed": seed, "length": length, "done": n, "finished": finished,
                   "wall_seconds": time.perf_counter() - began, "drifts": spec.drift_positions(length),
                   "hardware": hardware_summary(), "models": list(models),
                   "command": f"python packages/streams/benchmarks/run.py --paper-scale --streams {stream} "
                              f"--seeds {seed} --models {' '.join(models)}",
                   "records": {m: r.to_dict() for m, r in results.items()}}
        write_text_atomic(path, json.dumps(payload, indent=0))

    results = prequential_side_by_side({m: make_model(m, seed) for m in models}, spec.build(length, seed),
                                       window=PAPER_WINDOW, total=length, on_checkpoint=save,
                                       checkpoint_every=PAPER_CHECKPOINT)
    save(results, finished=True)
    return path


def paper_scale_section() -> str:
    """The paper-scale runs found under ``results/paper_scale/`` as a table (empty: none)."""
    runs = [json.loads(f.read_text()) for f in sorted(PAPER_DIR.glob("*.json"))] if PAPER_DIR.is_dir() else []
    if not runs:
        return ""
    models = list(dict.fromkeys(m for run in runs for m in run["models"]))
    rows = []
    for run in runs:
        drifts = [p for p in run["drifts"] if p < run["done"]]
        cells = []
        for m in models:
            r = run["records"].get(m)
            after = f"{100 * post_drift_accuracy(r, drifts):.2f}" if r is not None and drifts else "no drift reached"
            cells.append("-" if r is None else f"{100 * r['accuracy']:.2f} / {after} / {r['throughput']:.0f}")
        status = "finished" if run["finished"] else "stopped early"
        rows.append([run["stream"], f"{run['done']:,} of {run['length']:,} ({status})", run["seed"],
                     f"{run['wall_seconds'] / 60:.0f} min", *cells])
    table = markdown_table(["stream", "instances", "seed", "wall time", *models], rows)
    commands = "\n".join(f"- `{run['command']}` ({run['hardware']})" for run in runs)
    return ("Each cell: accuracy over the instances run / accuracy in the two 10,000-instance windows after each "
            "drift centre / instances per CPU second; the models run side by side in one process (one seed; not "
            "part of CI). Results are saved every 50,000 instances, so a run stopped early (time budget of the "
            "session) reports what it measured up to there.\n\n" + table + "\n\nCommands and hardware:\n\n" + commands)


def _save_records(plan: Plan, records: list[dict], profile: list[dict], seconds: float, command: str,
                  workers: int) -> None:
    payload = {"lengths": plan.lengths, "seeds": list(plan.seeds), "models": list(plan.models), "seconds": seconds,
               "command": command, "workers": workers,
               "date": time.strftime("%Y-%m-%d"), "hardware": hardware_summary(), "records": records,
               "profile": profile}
    write_text_atomic(plan.records_path, json.dumps(payload, indent=0))


def _reused(plan: Plan, rerun: tuple[str, ...], rerun_seeds: tuple[int, ...] | None = None) -> list[dict]:
    """Saved records of the plan's models and seeds that are not rerun (a rerun model's seeds
    outside ``rerun_seeds`` included), marked ``reused`` with the date of the run that measured
    them: the one a record reused before already carries, else the file's."""
    if not plan.records_path.is_file():
        return []
    saved = json.loads(plan.records_path.read_text())
    date = saved.get("date", "unknown date")  # files saved before dates were recorded

    def rerunning(record: dict) -> bool:
        return record["model"] in rerun and (rerun_seeds is None or record["seed"] in rerun_seeds)

    return [r | {"reused": r.get("reused") or date} for r in saved["records"] if r["model"] in plan.models
            and not rerunning(r) and r["seed"] in plan.seeds and r["stream"] in plan.lengths]


def _saved_profile(plan: Plan) -> list[dict]:
    """The profile saved with the records (a run that does not rerun DriftMoE+ keeps it)."""
    return json.loads(plan.records_path.read_text()).get("profile", []) if plan.records_path.is_file() else []


def records_date(records: list[dict]) -> str:
    return ", ".join(sorted({r["reused"] for r in records if r.get("reused")}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short smoke run; writes under benchmarks/quick/")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=None, help="default: 0 1 2 (quick: 0 1)")
    parser.add_argument("--models", nargs="+", default=None, help=f"default: {' '.join(list_benchmark_models())}")
    parser.add_argument("--rerun", nargs="+", default=None,
                        help="run only these models; the other models' rows come from the saved records")
    parser.add_argument("--rerun-seeds", type=non_negative_int, nargs="+", default=None,
                        help="with --rerun: run only these of --seeds; the other seeds come from the saved records")
    parser.add_argument("--workers", type=positive_int, default=2, help="parallel processes (default 2)")
    parser.add_argument("--report-only", action="store_true", help="re-render the report from the saved records")
    parser.add_argument("--paper-scale", action="store_true",
                        help=f"run --streams at the paper's {PAPER_LENGTH:,} instances (one seed, models side by side)")
    parser.add_argument("--streams", nargs="+", default=None, help="--paper-scale: streams (default: the synthetic ones)")
    args = parser.parse_args(argv)
    setup_logging("INFO")
    if args.paper_scale:
        streams = args.streams or [s for s in FULL_LENGTHS if get_stream_spec(s).kind == "synthetic"]
        for stream in streams:
            path = run_paper_scale(stream, tuple(args.models or PAPER_MODELS), (args.seeds or [0])[0])
            _log.info("wrote %s", path)
        return 0
    plan = make_plan(args.quick, args.seeds, args.models)
    if args.report_only:
        saved = json.loads(plan.records_path.read_text())
        plan = Plan(plan.quick, saved["lengths"], tuple(saved["seeds"]), tuple(saved["models"]), plan.profile_n)
        path = report(plan, saved["records"], saved["profile"], saved.get("workers", args.workers), saved["seconds"],
                      recorded_hardware(saved), saved.get("command"))
    else:
        started = time.perf_counter()
        rerun = tuple(args.rerun or plan.models)
        rerun_seeds = tuple(args.rerun_seeds) if args.rerun and args.rerun_seeds else None
        reused = _reused(plan, rerun, rerun_seeds) if args.rerun else []
        jobs_plan = dataclasses.replace(plan, seeds=rerun_seeds) if rerun_seeds else plan
        command = " ".join(["python packages/streams/benchmarks/run.py", *(argv if argv is not None else [])])

        def save(done: list[dict]) -> None:  # a run stopped early keeps its finished jobs
            _save_records(plan, reused + done, [], time.perf_counter() - started, command + " (partial)",
                          args.workers)

        records = reused + run_jobs(jobs_plan, args.workers, rerun, on_records=save)
        profile = profile_models(plan) if "driftmoe-plus" in rerun else _saved_profile(plan)
        seconds = time.perf_counter() - started
        _save_records(plan, records, profile, seconds, command, args.workers)
        path = report(plan, records, profile, args.workers, seconds, command=command)
    _log.info("wrote %s", path)
    return 0


__all__ = ["FULL_LENGTHS", "Plan", "main", "make_plan", "paper_scale_section", "report", "run_jobs",
           "run_paper_scale"]
