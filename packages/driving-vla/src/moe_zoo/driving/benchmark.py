"""DriveMoE vs the baselines in the same closed loop, seeds and demonstrations (``make bench-driving-vla``).

One demonstration set (collected and timed here), one feature cache; for each training seed every
model is trained with the same steps and batch, then driven on the same evaluation episodes
(``episodes`` per scenario, seeds ``10000 + 100 * seed + i``). The planner is the privileged
reference on the same episodes. Results go to ``benchmarks/results.json`` (resumable: finished
runs are kept), BENCHMARKS.md is rendered from it, and one GIF per scenario shows DriveMoE
(seed 0) driving with its six views (the router's choice framed in red). Every model has its camera-label
rule (:data:`CAMERA_RULE_OF`; its camera router is scored against that rule): the DriveMoE
authors' rule (``manoeuvre``, the package default) for every model but ``drivemoe-agent-labels``, the
same model as ``drivemoe`` trained on the same demonstrations with the ``agent`` rule (the package's
earlier default); the models without a camera router do not use the labels. ``--models`` runs a subset;
``--earlier`` adds the rows of another results file (an earlier run at another scale) to the tables,
each marked with that run's scale, for the models the current run lacks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

from moe_zoo.core.argtypes import non_negative_int, positive_int
from moe_zoo.core.reporting import (
    format_mean_std,
    hardware_summary,
    markdown_table,
    write_benchmarks_md,
)
from moe_zoo.core.runtime import get_logger
from moe_zoo.driving.planner import DEFAULT_CAMERA_RULE  # models without a camera router ignore it

_log = get_logger(__name__)
PACKAGE_DIR = Path(__file__).resolve().parents[3]
MODELS = ("drivemoe", "drive-pi0-lite-front", "drive-pi0-lite-all", "drivemoe-no-vision-moe",
          "drivemoe-no-action-moe", "driving-bc-mlp", "drivemoe-agent-labels")
CAMERA_RULE_OF = {"drivemoe-agent-labels": "agent"}     # the models whose camera labels are not DEFAULT_CAMERA_RULE's
REGISTERED = {"drivemoe-agent-labels": "drivemoe"}      # benchmark names that are a registered model on other labels
WITH_CAMERA_ROUTER = ("drivemoe", "drivemoe-no-action-moe", "drivemoe-agent-labels")
RULE_TEXT = {"manoeuvre": "manoeuvre (the authors')", "agent": "agent (the package's earlier default)"}
REFERENCE = "planner"
METRICS = (("driving_score", "DS"), ("success_rate", "SR %"), ("route_completion", "RC %"),
           ("collision_rate", "collisions %"), ("off_road_rate", "off-road %"))
ABILITY_COLUMNS = (("ability_merging", "merging"), ("ability_overtaking", "overtaking"),
                   ("ability_emergency_brake", "emergency brake"), ("ability_give_way", "give way"),
                   ("ability_traffic_sign", "traffic sign"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"runs": {}}


def _save(path: Path, saved: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(saved, indent=1))
    os.replace(tmp, path)


def _relative(path: str) -> str:
    """``path`` relative to the package's folder where it lies inside it (for the report)."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(PACKAGE_DIR)) if resolved.is_relative_to(PACKAGE_DIR) else path


def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def run(args: argparse.Namespace) -> dict:
    import torch

    from moe_zoo.driving.api import as_policy
    from moe_zoo.driving.closed_loop import EvalReport, peak_memory_mb, run_episode
    from moe_zoo.driving.data import load_feature_set
    from moe_zoo.driving.episodes import collect
    from moe_zoo.driving.features import cache_dir
    from moe_zoo.driving.scenarios import SCENARIOS
    from moe_zoo.driving.training import TrainConfig, train

    torch.set_num_threads(1)
    results_path = Path(args.results)
    saved = _load(results_path)
    saved.update({"hardware": hardware_summary(), "scale": vars(args) | {"results": str(args.results)}})
    if "collect" not in saved and args.earlier:     # the same demonstration set: keep its collection record
        earlier = _load(Path(args.earlier))
        saved.update({k: earlier[k] for k in ("collect", "features") if k in earlier})
    def data_dir(rule: str) -> Path:
        return cache_dir() / "episodes" / f"bench-{args.collect_episodes}-{rule}"

    if "collect" not in saved:
        collect(data_dir(DEFAULT_CAMERA_RULE), None, args.collect_episodes, seed=0, camera_rule=DEFAULT_CAMERA_RULE)
        timing = data_dir(DEFAULT_CAMERA_RULE) / "collect.json"
        record = json.loads(timing.read_text()) if timing.is_file() else {}
        saved["collect"] = {"seconds": record.get("seconds", math.nan), "episodes": record.get("episodes"),
                            "load": " ".join(f"{v:.2f}" for v in record.get("load_average", []))}
        _save(results_path, saved)
    began = time.perf_counter()
    data = load_feature_set(data_dir(DEFAULT_CAMERA_RULE))
    if "features" not in saved:        # the first run computes them; later runs read the cache
        saved["features"] = {"seconds": time.perf_counter() - began, "samples": len(data), "load": _load_average()}
    saved["collect"]["samples"] = len(data)
    _save(results_path, saved)
    config = TrainConfig(stage1_steps=args.stage1_steps, stage2_steps=args.stage2_steps, batch_size=args.batch_size)
    scenarios = list(SCENARIOS)
    gif_model = None
    variant_data: dict[str, object] = {}      # the same demonstrations with another rule's camera labels

    def training_data(rule: str):
        if rule == DEFAULT_CAMERA_RULE:
            return data
        if rule not in variant_data:
            collect(data_dir(rule), None, args.collect_episodes, seed=0, camera_rule=rule)
            variant_data[rule] = load_feature_set(data_dir(rule))
        return variant_data[rule]
    for seed in args.seeds:
        episode_seeds = [10_000 + 100 * seed + i for i in range(args.episodes)]
        for name in (*args.models, REFERENCE):
            key = f"{name}/{seed}"
            if key in saved["runs"]:
                continue
            record: dict = {"load_before": _load_average()}
            model_name, rule = REGISTERED.get(name, name), CAMERA_RULE_OF.get(name, DEFAULT_CAMERA_RULE)
            if name == REFERENCE:
                policy = "planner"
            else:
                began = time.perf_counter()
                model, _ = train(model_name, None, data=training_data(rule), config=config, seed=seed,
                                 progress=args.progress)
                record["train_seconds"] = time.perf_counter() - began
                record["params"] = sum(p.numel() for p in model.parameters())
                policy = as_policy(model)
                if name == "drivemoe" and seed == args.seeds[0]:
                    gif_model = model
            report = EvalReport([run_episode(policy, sc, s, camera_rule=rule)[0]
                                 for sc in scenarios for s in episode_seeds])
            record.update(report.to_dict())
            record["summary"] = {sc or "overall": report.summary(sc) for sc in (*scenarios, None)}
            record["peak_memory_mb"] = peak_memory_mb()
            saved["runs"][key] = record
            _save(results_path, saved)
            _log.info("%s: DS %.1f", key, record["summary"]["overall"]["driving_score"])
    if not args.no_gifs and "drivemoe" in args.models:
        from moe_zoo.driving.media import write_episode_video

        rule = CAMERA_RULE_OF.get("drivemoe", DEFAULT_CAMERA_RULE)
        if gif_model is None:          # its run was finished earlier: train it again (same seed, same model)
            gif_model, _ = train("drivemoe", None, data=training_data(rule), config=config, seed=args.seeds[0],
                                 progress=args.progress)
        policy = as_policy(gif_model)
        for sc in scenarios:
            _, frames = run_episode(policy, sc, 10_000 + 100 * args.seeds[0], record=True, camera_rule=rule)
            write_episode_video(Path(args.figures) / f"drivemoe-{sc}.gif", frames[::2], fps=2.5, max_width=240)
        saved["figures_of"] = "drivemoe"
    saved["peak_memory_mb"] = max(peak_memory_mb(), saved.get("peak_memory_mb", 0.0))
    _save(results_path, saved)
    return saved


def _labels_cell(model: str) -> str:
    name = model.split(" (earlier run")[0]
    if name == REFERENCE:
        return "-"
    return RULE_TEXT[CAMERA_RULE_OF.get(name, DEFAULT_CAMERA_RULE)] if name in WITH_CAMERA_ROUTER else "unused"


def _cell(runs: list[dict], scope: str, key: str, digits: int = 1) -> str:
    values = [r["summary"][scope].get(key, math.nan) for r in runs if scope in r["summary"]]
    values = [v for v in values if v is not None and not math.isnan(v)]
    return format_mean_std(values, digits) if values else "n/a"


def _scale_text(scale: dict) -> str:
    return f"{scale.get('stage1_steps')} + {scale.get('stage2_steps')} steps, {scale.get('episodes')} ep/scenario"


def _by_model(saved: dict) -> dict[str, list[dict]]:
    seeds = sorted({int(k.split("/")[1]) for k in saved["runs"]})
    return {m: [saved["runs"][f"{m}/{s}"] for s in seeds if f"{m}/{s}" in saved["runs"]] for m in (*MODELS, REFERENCE)}


def paired_differences(saved: dict, reference: str = "drivemoe") -> list[list[str]]:
    """Rows ``[model, DS difference per seed (mean ± std), seeds ahead, per-episode difference ± s.e. (n)]``:
    ``reference`` minus each other learned model on the evaluation episodes both drove (same scenario
    and episode seed). A seed's difference is the difference of the two overall driving scores."""
    runs = saved["runs"]
    rows = []
    for model in MODELS:
        if model == reference:
            continue
        seed_diffs, episode_diffs = [], []
        for key, mine in runs.items():
            name, seed = key.split("/")
            theirs = runs.get(f"{model}/{seed}")
            if name != reference or theirs is None or "episodes" not in mine or "episodes" not in theirs:
                continue
            a = {(e["scenario"], e["seed"]): e["driving_score"] for e in mine["episodes"]}
            b = {(e["scenario"], e["seed"]): e["driving_score"] for e in theirs["episodes"]}
            diffs = [100 * (a[k] - b[k]) for k in sorted(a.keys() & b.keys())]
            if diffs:
                episode_diffs += diffs
                seed_diffs.append(statistics.fmean(diffs))
        if not seed_diffs:
            continue
        n = len(episode_diffs)
        se = statistics.stdev(episode_diffs) / math.sqrt(n) if n > 1 else math.nan
        rows.append([model, format_mean_std(seed_diffs, 1), f"{sum(d > 0 for d in seed_diffs)} / {len(seed_diffs)}",
                     f"{statistics.fmean(episode_diffs):.1f} ± {se:.1f} ({n})"])
    return rows


def render(saved: dict, out: Path, command: str, earlier: dict | None = None, earlier_path: str = "") -> Path:
    """BENCHMARKS.md from the saved records (plus, marked, the models only ``earlier`` has)."""
    seeds = sorted({int(k.split("/")[1]) for k in saved["runs"]})
    by_model = {m: runs for m, runs in _by_model(saved).items() if runs}
    scale = saved.get("scale", {})
    if earlier:
        tag = f" (earlier run: {_scale_text(earlier.get('scale', {}))})"
        by_model |= {m + tag: runs for m, runs in _by_model(earlier).items() if runs and m not in by_model}
    overall = markdown_table(
        ["model", "camera labels", *(h for _, h in METRICS), "camera router acc %", "skill router acc %"],
        [[m, _labels_cell(m), *(_cell(runs, "overall", k) for k, _ in METRICS),
          _cell(runs, "overall", "camera_router_acc"), _cell(runs, "overall", "skill_router_acc")]
         for m, runs in by_model.items() if runs])
    abilities = markdown_table(["model", *(h for _, h in ABILITY_COLUMNS)],
                               [[m, *(_cell(runs, "overall", k) for k, _ in ABILITY_COLUMNS)]
                                for m, runs in by_model.items() if runs])
    scenario_names = [k for k in next(iter(saved["runs"].values()))["summary"] if k != "overall"]
    per_scenario = markdown_table(["model", *scenario_names],
                                  [[m, *(_cell(runs, sc, "driving_score") for sc in scenario_names)]
                                   for m, runs in by_model.items() if runs])
    speed_rows = []
    for m, runs in by_model.items():
        if not runs:
            continue
        train_s = [r["train_seconds"] for r in runs if "train_seconds" in r]
        if m.startswith(REFERENCE):    # the planner's decision is taken outside the timed call
            continue
        speed_rows.append([m, f"{runs[0].get('params', 0):,}" if "params" in runs[0] else "-",
                           format_mean_std(train_s, 0) if train_s else "-",
                           _cell(runs, "overall", "decisions_per_s")])
    speed = markdown_table(["model", "parameters (trained)", "training s", "closed-loop decisions/s"], speed_rows)
    collect, features = saved.get("collect", {}), saved.get("features", {})
    earlier_note = (f"Rows marked \"earlier run\" come from `{earlier_path}` (the same demonstrations and training "
                    "seeds, the same first evaluation episode per scenario; shorter training): compare them with care."
                    if earlier else "")
    redone = [k for k, r in saved["runs"].items() if "reevaluated" in r]
    if redone:
        earlier_note += (f" Re-evaluated after the run ({', '.join(redone)}): "
                         + "; ".join(sorted({saved['runs'][k]['reevaluated'] for k in redone})) + ".")
    notes = f"""Scale (CPU, time-bounded): {collect.get('episodes')} planner demonstrations ({collect.get('samples')} steps at
5 Hz, 8 per scenario, every second one with a perturbed command); each model trained
{scale.get('stage1_steps')} + {scale.get('stage2_steps')} steps (stage 1 + stage 2) at batch {scale.get('batch_size')} per seed;
closed loop: {scale.get('episodes')} episode(s) per scenario per seed x 5 scenarios, the same episode seeds for every model.
Mean ± sample std over the training seeds (the evaluation episodes change with the seed too).
{earlier_note}
Timings were taken on a shared 2-core machine while other jobs ran (load average before each run is in
`benchmarks/results.json`), one thread per process; read them as orders of magnitude."""
    gifs = " ".join(f"![{sc}](benchmarks/figures/drivemoe-{sc}.gif)" for sc in scenario_names)
    paired_sections = []
    for reference in ("drivemoe", *REGISTERED):
        paired = paired_differences(saved, reference)
        if paired:
            paired_sections.append((
                f"{reference} against each baseline, paired",
                markdown_table(["baseline", f"{reference} - baseline DS, per seed (mean ± std)",
                                f"seeds {reference} ahead", "per-episode DS difference ± s.e. (episodes)"], paired)
                + "\n\nPaired on the same training seed and the same evaluation episodes (scenario, episode seed)."))
    notes += ("\nCamera labels: the rule a model's camera router was trained on and is scored against (README): "
              "`manoeuvre`, the DriveMoE authors' rule (the package default), or `agent`, the package's earlier "
              "default; models without a camera router do not use them.")
    if saved.get("renamed"):
        notes += "\n" + saved["renamed"]
    sections = [
        ("Closed loop, all scenarios (Bench2Drive-style)", overall),
        *paired_sections,
        ("Abilities (success rate % over the episodes that exercise each)", abilities),
        ("Driving score per scenario", per_scenario),
        ("Speed and memory", f"""Collecting the demonstration set: {collect.get('seconds', math.nan):.0f} s
(load average {collect.get('load')}); camera features (frozen MobileNetV2, cached): {features.get('seconds', math.nan):.0f} s.
Peak resident memory of the benchmark process (data, features, every model, the simulator):
{max([saved.get('peak_memory_mb', 0.0), *(r['peak_memory_mb'] for r in saved['runs'].values())]):.0f} MB.

{speed}

Decisions/s counts the policy's own work per step (camera encoding, routers, 10 Euler steps, PID), not the simulator."""),
        (f"Episodes ({saved.get('figures_of', 'drivemoe')}, seed 0; top: highway-env frame, bottom: the six views, "
         "router's choice in red)", gifs),
    ]
    return write_benchmarks_md(out, "driving-vla (DriveMoE) benchmark", command=command, sections=sections,
                               notes=notes, seeds=seeds, hardware=saved.get("hardware"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=positive_int, default=5, help="evaluation episodes per scenario per seed")
    parser.add_argument("--collect-episodes", type=positive_int, default=8, help="demonstrations per scenario")
    parser.add_argument("--stage1-steps", type=non_negative_int, default=600)
    parser.add_argument("--stage2-steps", type=non_negative_int, default=400)
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="a subset of the models")
    parser.add_argument("--earlier", default=None, help="results file of an earlier run whose other models' rows "
                        "are shown, marked with that run's scale")
    parser.add_argument("--results", default=str(PACKAGE_DIR / "benchmarks" / "results.json"))
    parser.add_argument("--figures", default=str(PACKAGE_DIR / "benchmarks" / "figures"))
    parser.add_argument("--out", default=str(PACKAGE_DIR / "BENCHMARKS.md"))
    parser.add_argument("--report-only", action="store_true", help="re-render BENCHMARKS.md from the saved results")
    parser.add_argument("--no-gifs", action="store_true")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smoke run: seed 0, tiny training, no GIFs, temp files")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.stage1_steps, args.stage2_steps, args.episodes, args.no_gifs = [0], 5, 5, 1, True
        args.results, args.out = "/tmp/driving-bench-quick.json", "/tmp/driving-bench-quick.md"
    shown = [a for a in (argv or []) if a != "--report-only"]      # the command that produced the records
    command = "python packages/driving-vla/benchmarks/run.py" + (" " + " ".join(shown) if shown else "")
    saved = _load(Path(args.results)) if args.report_only else run(args)
    earlier = _load(Path(args.earlier)) if args.earlier else None
    path = render(saved, Path(args.out), command, earlier, _relative(args.earlier) if args.earlier else "")
    print(f"wrote {path}")
    return 0


