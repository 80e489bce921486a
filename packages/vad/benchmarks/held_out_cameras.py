"""Held-out cameras: the default recipe trained with one whole camera left out, scored on that camera.

For every camera of :mod:`moe_zoo.vad.cameras` (every real clip on the machine) and seed, GS-MoE
(the default recipe) and the MIL baseline are trained on the multi-camera data of the *other*
cameras, then scored on the held-out camera's footage at 10 fps:

* **normal flagged**: share of the camera's normal test frames (the 60 % after its calibration
  clip, nothing injected) scored >= 0.5;
* **frame AUC**: ROC-AUC over the frames of test clips cut from the same 60 % with one injected
  event each (2 per class, 9 classes incl. camera tampering), pooled per camera;

both without and with calibration (``vad.calibrate`` on the camera's first 40 %, never scored).
The previously shipped model (vtest.avi only, commit eb461b5) is scored on the cameras it never
saw, without seeds (one model). Trained fold models are kept under the cache folder
(``~/.cache/moe-zoo/vad/held-out-models``), so a rerun only re-scores. Per-seed records go to ``benchmarks/results/held_out/``;
``--report`` merges them into ``benchmarks/results/held_out_cameras.md`` and the matching section
of ``BENCHMARKS.md``.

    OMP_NUM_THREADS=1 uv run --locked --no-sync python packages/vad/benchmarks/held_out_cameras.py --seeds 0
    OMP_NUM_THREADS=1 uv run --locked --no-sync python packages/vad/benchmarks/held_out_cameras.py --report

``--ablation encoder-tgs --seeds 0`` trains GS-MoE with the paper's TGS term on its task encoder
(the presets' setting; the built-in default leaves it out) on the same folds (records in
``results/held_out/encoder-tgs/``; ``--report`` adds its rows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from moe_zoo.core import load_model, read_checkpoint_metadata
from moe_zoo.core.reporting import (
    format_mean_std,
    hardware_summary,
    replace_marked_block,
    write_text_atomic,
)
from moe_zoo.vad.builtin import cache_root
from moe_zoo.vad.calibration import DEFAULT_SCORED, MIN_SNIPPETS, Calibration
from moe_zoo.vad.cameras import CameraDataConfig, camera_assets, camera_files, load_cameras
from moe_zoo.vad.data import expand_to_frames
from moe_zoo.vad.synthesis import ALL_CLASSES
from moe_zoo.vad.train import TrainConfig, snippet_scores, train

PACKAGE = Path(__file__).resolve().parents[1]
RESULTS = PACKAGE / "benchmarks" / "results"
OLD_COMMIT = "eb461b5976df6d523eaa7c26966c02caa0d567c6"
OLD_WEIGHTS = "packages/vad/src/moe_zoo/vad/weights/gsmoe_builtin.safetensors"
MODELS = cache_root() / "held-out-models"
ALL_VIEWS = ("score", "appearance", "motion")
START, END = "<!-- held-out-cameras:start -->", "<!-- held-out-cameras:end -->"
PREVIOUS_RECIPE = "v1-urdmu-encoder"   # records of the recipe before 2026-12-06 (report compares with them)
# GS-MoE ablations on the same data and seeds: folder -> (row label, TrainConfig changes)
ABLATIONS = {"encoder-tgs": ("GS-MoE with the paper's TGS term on the task encoder (`encoder_tgs_from=0.5`)",
                             {"encoder_tgs_from": 0.5})}


ATTEMPTS = (("calibrated", DEFAULT_SCORED),   # the default, then the two earlier attempts (calibration.py)
            ("calibrated_motion", ("score", "motion")), ("calibrated_with_appearance", ALL_VIEWS))


def score_camera(model, assets, snippet_len: int = 8) -> dict:
    """Normal-flagged share and pooled frame AUC on one held-out camera, raw and calibrated: by the
    default (score alone) and by the earlier attempts (+ motion novelty, + appearance too)."""
    def frames(scores: np.ndarray, n: int) -> np.ndarray:
        return expand_to_frames(scores, snippet_len, n)

    raw_normal = snippet_scores(model, assets.normal, device="cpu")
    raw_tests = [snippet_scores(model, f, device="cpu") for _, f, _ in assets.tests]
    labels = np.concatenate([lab for _, _, lab in assets.tests])

    def class_aucs(normal: np.ndarray, tests: list[np.ndarray]) -> dict:
        """Per injected class: AUC of its event frames against the camera's normal test frames."""
        negatives, events = frames(normal, assets.n_normal_frames), {}
        for s, (kind, _, lab) in zip(tests, assets.tests):
            events.setdefault(kind, []).append(frames(s, len(lab))[lab > 0])
        return {kind: float(roc_auc_score(np.r_[np.ones(sum(map(len, parts))), np.zeros(len(negatives))],
                                          np.r_[np.concatenate(parts), negatives])) for kind, parts in events.items()}

    def metrics(normal: np.ndarray, tests: list[np.ndarray]) -> dict:
        pooled = np.concatenate([frames(s, len(lab)) for s, (_, _, lab) in zip(tests, assets.tests)])
        return {"flagged": float((frames(normal, assets.n_normal_frames) >= 0.5).mean()),
                "auc": float(roc_auc_score(labels, pooled)), "events_flagged": float((pooled[labels > 0] >= 0.5).mean())}

    out = {"raw": metrics(raw_normal, raw_tests), "classes": class_aucs(raw_normal, raw_tests)}
    if len(assets.calibration) >= MIN_SNIPPETS:
        calibration = Calibration.fit(model, assets.calibration, snippet_scores(model, assets.calibration, device="cpu"),
                                      motion_dim=model.config.features.motion_dim, source=assets.camera)
        normal = calibration.view_z(assets.normal, raw_normal)
        tests = [calibration.view_z(f, s) for (_, f, _), s in zip(assets.tests, raw_tests)]
        for key, scored in ATTEMPTS:
            out[key] = metrics(calibration.combine(normal, scored), [calibration.combine(v, scored) for v in tests])
    return out


def _current(saved: Path, config: TrainConfig, data) -> bool:
    """Whether ``saved`` was trained with this recipe on features like ``data``'s (else: retrain)."""
    if not saved.is_file():
        return False
    header = read_checkpoint_metadata(saved)
    features = header["config"].get("features", {})
    return (header["metadata"].get("train_config") == json.loads(json.dumps(config.to_dict()))
            and features == json.loads(json.dumps(data.features.to_dict())))


def run_seed(seed: int, score_only: bool = False, only: list[str] | None = None, ablation: str | None = None) -> None:
    """Train (or re-use) and score every fold of ``seed``; ``ablation`` (a key of :data:`ABLATIONS`)
    trains GS-MoE alone with that change and keeps its records in ``results/held_out/<ablation>/``."""
    cameras = sorted(camera_files())
    records = {"seed": seed, "cameras": cameras, "hardware": hardware_summary(), "folds": {}}
    methods = (("GS-MoE", "gsmoe"),) if ablation else (("GS-MoE", "gsmoe"), ("MIL ranking (Sultani et al.)", "mil"))
    suffix, folder = (f"-{ablation}", RESULTS / "held_out" / ablation) if ablation else ("", RESULTS / "held_out")
    for held in only or cameras:
        if score_only and not all((MODELS / f"seed{seed}-{held}-{v}{suffix}.safetensors").is_file() for _, v in methods):
            continue
        data = load_cameras([c for c in cameras if c != held])
        assets = camera_assets(held)
        fold = {}
        for name, variant in methods:
            saved = MODELS / f"seed{seed}-{held}-{variant}{suffix}.safetensors"   # re-scoring needs no retraining
            config = TrainConfig(variant=variant, seed=seed, **(ABLATIONS[ablation][1] if ablation else {}))
            if not score_only and not _current(saved, config, data):   # --score-only scores what is saved
                train(data, config, progress=False, checkpoint=saved)
            model = load_model(saved)
            fold[name] = score_camera(model, assets)
            fold[name]["train_seconds"] = read_checkpoint_metadata(saved)["metadata"]["train_seconds"]
        records["folds"][held] = fold
        records["load_average"] = os.getloadavg()
        print(seed, held, json.dumps(fold), flush=True)
        # written after each fold, so an interrupted pass keeps the folds it finished; --cameras writes none
        if only is None:
            write_text_atomic(folder / f"seed{seed}.json", json.dumps(records, indent=1))


def old_model_records() -> dict:
    """The model shipped before the multi-camera data (vtest.avi only) on the other cameras, scored
    once on the held-out assets of the first camera data (version 1, its features) and kept in
    ``results/held_out/previous_shipped_model.json``."""
    saved = RESULTS / "held_out" / "previous_shipped_model.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    path = RESULTS / "held_out" / "previous_shipped_model.safetensors"
    data = subprocess.run(["git", "show", f"{OLD_COMMIT}:{OLD_WEIGHTS}"], capture_output=True, check=True).stdout
    path.write_bytes(data)
    try:
        model = load_model(path)
        config = CameraDataConfig(version=1, features=model.config.features)
        records = {c: score_camera(model, camera_assets(c, config)) for c in sorted(camera_files()) if c != "vtest"}
    finally:
        path.unlink()
    write_text_atomic(saved, json.dumps(records, indent=1))
    return records


MODES = (("raw", "uncalibrated"), ("calibrated", "calibrated (default: score)"),
         ("calibrated_motion", "2nd attempt (score + motion)"),
         ("calibrated_with_appearance", "1st attempt (score + motion + appearance)"))
METHODS = ("GS-MoE", "MIL ranking (Sultani et al.)")


def _cell(values: list[float], pct: bool) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:   # one seed: no spread to show
        return f"{100 * values[0]:.1f}%" if pct else f"{values[0]:.3f}"
    if pct:
        return format_mean_std([100 * v for v in values], digits=1) + "%"
    return format_mean_std(values, digits=3)


def _load_runs(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("seed*.json"))]


def _aggregate(runs: list[dict], cameras: list[str], rows: list[str] | None = None) -> dict:
    """Per-camera means of every metric, keyed ``(method, mode, metric)`` (lists over cameras); with
    ``rows``, appends the per-camera table rows."""
    per_camera: dict[tuple[str, str, str], list[float]] = {}
    for camera in cameras:
        for method in METHODS:
            folds = [r["folds"][camera][method] for r in runs if method in r["folds"].get(camera, {})]
            if not folds:
                continue
            cells = []
            for mode, _ in MODES:
                for metric in ("flagged", "auc"):
                    vals = [f[mode][metric] for f in folds if mode in f]
                    cells.append(_cell(vals, metric == "flagged"))
                    if vals:
                        per_camera.setdefault((method, mode, metric), []).append(float(np.mean(vals)))
                events = [f[mode]["events_flagged"] for f in folds if mode in f]
                if events:
                    per_camera.setdefault((method, mode, "events_flagged"), []).append(float(np.mean(events)))
            for kind in ALL_CLASSES:
                vals = [f["classes"][kind] for f in folds if kind in f.get("classes", {})]
                if vals:
                    per_camera.setdefault((method, "classes", kind), []).append(float(np.mean(vals)))
            if rows is not None:
                rows.append(f"| {camera} | {method} | {len(folds)} | " + " | ".join(cells) + " |")
    return per_camera


def _summary_row(label: str, method: str, per_camera: dict) -> str:
    cells = []
    for mode, _ in MODES:
        for metric in ("flagged", "auc"):
            vals = per_camera.get((method, mode, metric), [])
            worst = (max if metric == "flagged" else min)(vals) if vals else None
            scale, unit, digits = (100, "%", 1) if metric == "flagged" else (1, "", 3)
            cells.append(f"{np.mean(vals) * scale:.{digits}f}{unit} ({len(vals)} cameras, worst "
                         f"{worst * scale:.{digits}f}{unit})" if vals else "n/a")
    for mode in ("raw", "calibrated"):
        vals = per_camera.get((method, mode, "events_flagged"), [])
        cells.append(f"{100 * np.mean(vals):.1f}% ({len(vals)} cameras)" if vals else "n/a")
    return f"| {label} | " + " | ".join(cells) + " |"


def _class_row(label: str, method: str, per_camera: dict) -> str:
    cells = [f"{np.mean(v):.3f}" if (v := per_camera.get((method, "classes", k))) else "n/a" for k in ALL_CLASSES]
    return f"| {label} | " + " | ".join(cells) + " |"


def report() -> None:
    runs = _load_runs(RESULTS / "held_out")
    if not runs:
        raise SystemExit("no per-seed records: run with --seeds first")
    previous = _load_runs(RESULTS / "held_out" / PREVIOUS_RECIPE)
    old = old_model_records()
    cameras = [c for c in runs[0]["cameras"] if any(c in r["folds"] for r in runs)]
    header = "| held-out camera | method | seeds | " + " | ".join(
        f"normal flagged, {label} | frame AUC, {label}" for _, label in MODES) + " |"
    rows = [header, "|" + "---|" * (3 + 2 * len(MODES))]
    per_camera = _aggregate(runs, cameras, rows)
    for camera in cameras:
        if camera in old:
            o, cells = old[camera], []
            for mode, _ in MODES:
                cells += [f"{100 * o[mode]['flagged']:.1f}%", f"{o[mode]['auc']:.3f}"] if mode in o else ["n/a", "n/a"]
            rows.append(f"| {camera} | previous shipped GS-MoE (vtest only) | - | " + " | ".join(cells) + " |")
    before = _aggregate(previous, cameras)
    before_seeds = ", ".join(str(r["seed"]) for r in previous)
    labels = [(m, m, per_camera) for m in METHODS] + [
        (f"{m}, previous recipe (seeds {before_seeds})", m, before) for m in METHODS if previous]
    for folder, (label, _) in ABLATIONS.items():
        ablated = _load_runs(RESULTS / "held_out" / folder)
        if ablated:
            seeds_run = ", ".join(str(r["seed"]) for r in ablated)
            labels.append((f"{label} (seeds {seeds_run}; {sum(len(r['folds']) for r in ablated)} folds)",
                           "GS-MoE", _aggregate(ablated, cameras)))
    summary = ["| method | " + " | ".join(f"normal flagged, {label} | frame AUC, {label}" for _, label in MODES)
               + " | event frames flagged, uncalibrated | event frames flagged, calibrated (default) |",
               "|" + "---|" * (3 + 2 * len(MODES)), *(_summary_row(*row) for row in labels)]
    classes = ["| method | " + " | ".join(ALL_CLASSES) + " |", "|" + "---|" * (1 + len(ALL_CLASSES)),
               *(_class_row(*row) for row in labels)]
    seeds = sorted({r["seed"] for r in runs})
    train_seconds = [f[m]["train_seconds"] for r in runs for f in r["folds"].values() for m in METHODS]
    loads = [r["load_average"] for r in runs if "load_average" in r]
    load = (f"load average {min(min(x) for x in loads):.1f}-{max(max(x) for x in loads):.1f} over the 1/5/15-minute "
            "windows after each fold" if loads else "load average 10-13")
    body = "\n".join([
        "## Held-out cameras (the default recipe on footage it was not trained on)", "",
        "Command: `OMP_NUM_THREADS=1 uv run --locked --no-sync python packages/vad/benchmarks/held_out_cameras.py "
        "--seeds S` for each seed S, then `... held_out_cameras.py --report`.", "",
        f"Hardware: {runs[0]['hardware']}; one torch thread per process, on a machine shared with other jobs "
        f"({load}): training took {np.mean(train_seconds):.0f} s per model on average.", "",
        "Leave-one-camera-out: for each camera, GS-MoE (the default recipe, `TrainConfig()`) and the MIL baseline are "
        "trained on the multi-camera data of the *other* cameras (augmented framing, scale, colour and speed; 9 "
        "injected classes incl. camera tampering) and scored on the held-out camera at 10 fps. *Normal flagged*: share "
        "of the camera's normal test frames (its last 60 %, nothing injected) scored >= 0.5. *Frame AUC*: over test clips "
        "cut from the same 60 %, one injected event each (2 per class, 18 clips), pooled per camera; *event frames "
        "flagged*: share of their event frames scored >= 0.5. *Calibrated*: "
        "`vad.calibrate` on the camera's first 40 % (never scored); the default scores the model's score alone "
        "(a per-camera re-scaling); the *2nd attempt* also scored motion novelty, the *1st* motion and appearance "
        "novelty (tried in that order, see calibration.py). carphone (4 s) leaves too few snippets "
        f"to calibrate (< {MIN_SNIPPETS}). Seeds {', '.join(map(str, seeds))}; mean ± std over the seeds run for "
        "that camera (column *seeds*). The previously shipped model (commit eb461b5, vtest.avi only) is one model. "
        "*Previous recipe*: the records of the recipe before 2026-12-06 (`results/held_out/"
        f"{PREVIOUS_RECIPE}/`): camera data version 1 (vtest clips slowed down by repeating frames, no "
        "repeated-frame feature) and a task encoder trained with UR-DMU's loss alone (no TGS term).", "",
        "Mean over cameras of the per-camera means (worst camera in brackets):", "", *summary, "",
        "Per injected class, uncalibrated: frame AUC of the class's event frames against the camera's normal test "
        "frames, mean over cameras (a ranking below 0.5 puts the event under normal footage):", "", *classes, "",
        "Per camera:", "", *rows, ""])
    write_text_atomic(RESULTS / "held_out_cameras.md", body + "\n")
    bench = PACKAGE / "BENCHMARKS.md"
    if not replace_marked_block(bench, START, END, body):
        write_text_atomic(bench, f"{bench.read_text().rstrip()}\n\n{START}\n{body}\n{END}\n")
    print(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="*", default=[])
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--score-only", action="store_true", help="re-score the saved fold models, train none")
    parser.add_argument("--cameras", nargs="*", help="only these held-out folds (trains their models; no records)")
    parser.add_argument("--ablation", choices=sorted(ABLATIONS), help="train and score this GS-MoE ablation instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for seed in args.seeds:
        run_seed(seed, args.score_only, args.cameras, args.ablation)
    if args.report:
        report()


if __name__ == "__main__":
    main()
