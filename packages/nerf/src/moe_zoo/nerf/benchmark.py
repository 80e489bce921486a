"""Benchmark: Switch-NeRF++ against its baselines on the built-in city scene, same rays and seeds.

Methods: Switch-NeRF++ (heterogeneous hash experts), the homogeneous mixture (every expert alike),
one hash grid of about the same parameter count, and Switch-NeRF v1 (MLP experts). All in one
process:

1. speed side by side: every method (and v1 at the paper's width, 256 wide with 8 experts, for
   speed only) takes one training step in turn, round robin, so a changing machine load hits all
   alike; median wall and CPU seconds per step;
2. for every seed, every method trained for ``--steps`` steps on the same per-step seeded rays,
   the held-out PSNR on ``--curve-views`` views every ``--eval-every`` steps (the curve: PSNR vs
   training time, evaluation excluded), then PSNR / SSIM on ``--eval-views`` held-out views, the
   time to render a 200x200 view with early ray termination and with every sample evaluated, and
   the share of samples the renderer evaluates;
3. the report (:mod:`moe_zoo.nerf.bench_report`): tables, time to a target PSNR, figures.

Records are saved after every run (``benchmarks/results/``), so a cut run leaves usable records;
``--report-only`` re-renders BENCHMARKS.md from them.
``python packages/nerf/benchmarks/run.py`` writes ``packages/nerf/BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from moe_zoo.core.argtypes import positive_int
from moe_zoo.core.atomic import atomic_path
from moe_zoo.core.reporting import hardware_summary, write_text_atomic
from moe_zoo.nerf.data import Scene
from moe_zoo.nerf.renderer import Cameras, render, render_rays
from moe_zoo.nerf.rendering import camera_rays
from moe_zoo.nerf.scene import builtin_scene, look_at
from moe_zoo.nerf.training import (
    TrainConfig,
    evaluate,
    make_optimizer,
    scene_model,
    train,
    train_step,
    training_rays,
)

PACKAGE = Path(__file__).resolve().parents[3]
METHODS = {  # name -> (label, learning rate, occupancy grid)
    "switch-nerf-pp": ("Switch-NeRF++ (heterogeneous hash experts)", 1e-2, True),
    "switch-nerf-homogeneous": ("homogeneous hash experts", 1e-2, True),
    "hash-nerf": ("single hash grid", 1e-2, True),
    "switch-nerf-v1": ("Switch-NeRF v1 (MLP experts)", 2e-3, False),
}
PAPER_V1 = {"width": 256, "n_experts": 8}  # v1 at the paper's width, timed (not trained) beside the others
ARRAYS = ("views", "expert_map")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_int, default=400)
    parser.add_argument("--rays", type=positive_int, default=256)
    parser.add_argument("--seeds", type=positive_int, default=3)
    parser.add_argument("--eval-every", type=positive_int, default=25, help="steps between points of the PSNR curve")
    parser.add_argument("--curve-views", type=positive_int, default=2, help="held-out views scored for the curve")
    parser.add_argument("--eval-views", type=positive_int, default=8, help="held-out views scored at the end")
    parser.add_argument("--speed-steps", type=positive_int, default=10, help="steps per method in the side-by-side timing")
    parser.add_argument("--only", nargs="+", choices=sorted(METHODS), default=None,
                        help="rerun these methods and keep the other methods' stored records (results/)")
    parser.add_argument("--report-only", action="store_true", help="re-render BENCHMARKS.md from the stored records")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 10 steps, writes under benchmarks/quick/")
    return parser.parse_args(argv)


def timed(fn, *args, **kwargs) -> tuple[float, float]:
    """Wall and CPU seconds of ``fn(*args, **kwargs)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu


def top_down(scene: Scene, size: int = 96) -> Cameras:
    """A camera straight above the scene box looking down (for the expert map)."""
    center = np.asarray(scene.box.center)
    eye = center + np.asarray(scene.up) * 3.0
    pose = look_at(eye, center, up=(0.0, 1.0, 0.0) if abs(scene.up[1]) < 0.9 else (1.0, 0.0, 0.0))
    focal = 0.5 * size / np.tan(np.radians(25))
    return Cameras(torch.from_numpy(pose).float()[None], torch.tensor([[focal, focal, size / 2, size / 2]]), size, size)


def view_200(scene: Scene) -> Cameras:
    """The first held-out view at 200x200 (the scene's intrinsics scaled)."""
    k = scene.intrinsics[scene.val[0]] * (200 / scene.width)
    return Cameras(scene.c2w[scene.val[:1]], k[None], 200, 200)


def evaluated_share(model, scene: Scene, stop_transmittance: float) -> float:
    """Share of a held-out view's ray samples that the renderer runs through the field."""
    origins, dirs = camera_rays(scene.c2w[scene.val[0]], scene.intrinsics[scene.val[0]], scene.height, scene.width)
    with torch.inference_mode():
        out = render_rays(model.eval(), origins, dirs, stop_transmittance=stop_transmittance)
    return int(out["evaluated"]) / (origins.shape[0] * model.scene.samples)


def method_config(method: str, seed: int, args: argparse.Namespace, **overrides) -> TrainConfig:
    _, lr, occupancy = METHODS[method]
    return TrainConfig(model=method, steps=args.steps, rays=args.rays, lr=lr, seed=seed, occupancy=occupancy,
                       eval_every=args.eval_every, eval_views=args.curve_views, **overrides)


def speed_side_by_side(scene: Scene, args: argparse.Namespace) -> list[dict]:
    """Median wall / CPU seconds per training step of every method, round robin (module docstring),
    and the 200x200 render time of v1 at the paper's width (untrained: its cost does not depend on
    the weights, and it evaluates every sample)."""
    rays = training_rays(scene)
    runs = {}
    for key in [*METHODS, "switch-nerf-v1@paper"]:
        method = key.split("@")[0]
        config = method_config(method, 0, args, model_overrides=PAPER_V1 if key.endswith("@paper") else {})
        torch.manual_seed(0)
        model = scene_model(config, scene).train()
        runs[key] = (model, *make_optimizer(model, config), config, torch.Generator(), [], [])
    for step in range(args.speed_steps + 2):  # the first 2 steps warm up
        for model, optimizer, scheduler, config, generator, wall, cpu in runs.values():
            seconds = timed(train_step, model, optimizer, scheduler, rays, config, step, generator)
            if step >= 2:
                wall.append(seconds[0])
                cpu.append(seconds[1])
    rows = [{"method": "speed", "of": key, "step_s": statistics.median(wall), "step_cpu_s": statistics.median(cpu),
             "params": sum(p.numel() for p in model.parameters())}
            for key, (model, _, _, _, _, wall, cpu) in runs.items()]
    paper = runs["switch-nerf-v1@paper"][0]
    rows[-1]["render_200"] = {"all": timed(render, paper, view_200(scene), stop_transmittance=0.0)}
    return rows


def run_one(scene: Scene, method: str, seed: int, args: argparse.Namespace) -> dict:
    result = train(scene, method_config(method, seed, args), progress=False)
    model = result.model
    metrics = evaluate(model, scene, scene.val[: args.eval_views])
    record = {"method": method, "seed": seed, "psnr": metrics["psnr"], "ssim": metrics["ssim"],
              "train_s": result.seconds, "train_cpu_s": result.cpu_seconds, "history": result.history,
              "params": sum(p.numel() for p in model.parameters()), "occupancy": model.occupancy.fraction,
              "render_200": {"early": timed(render, model, view_200(scene)),
                             "all": timed(render, model, view_200(scene), stop_transmittance=0.0)},
              "evaluated": {"early": evaluated_share(model, scene, 1e-4), "all": evaluated_share(model, scene, 0.0)}}
    if seed == 0:  # the figure's views and expert map: first seed only
        record["views"] = metrics["images"][:2].numpy()
        if hasattr(model, "router"):
            record["expert_map"] = render(model, top_down(scene), expert_map=True)[1][0].numpy()
    return record


def save_records(folder: Path, records: list[dict], meta: dict) -> None:
    """``records.json`` (numbers, run settings) and ``arrays.npz`` (the figure's seed-0 views and expert maps),
    each written atomically (a run cut mid-save leaves the previous file, never a half-written one)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{k: v for k, v in r.items() if k not in ARRAYS} for r in records]
    write_text_atomic(folder / "records.json", json.dumps({"meta": meta, "records": rows}, indent=1))
    with atomic_path(folder / "arrays.npz") as tmp:
        np.savez_compressed(tmp, **{f"{r['method']}.{key}": r[key] for r in records for key in ARRAYS if key in r})


def load_records(folder: Path, keep: set[str] | None = None) -> tuple[list[dict], dict]:
    stored = json.loads((folder / "records.json").read_text())
    records = [r for r in stored["records"] if keep is None or r["method"] in keep]
    with np.load(folder / "arrays.npz", allow_pickle=False) as arrays:
        for r in records:
            for key in ARRAYS:
                if r.get("seed") == 0 and f"{r['method']}.{key}" in arrays:
                    r[key] = arrays[f"{r['method']}.{key}"]
    return records, stored["meta"]


def main(argv: list[str] | None = None) -> int:
    from moe_zoo.nerf.bench_report import write_report

    args = parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.steps, args.seeds, args.eval_every, args.speed_steps, args.eval_views = 10, 1, 5, 2, 2
    out_dir = PACKAGE / "benchmarks" / ("quick" if args.quick else "")
    md_dir = out_dir if args.quick else PACKAGE
    results = out_dir / "results"
    scene = builtin_scene()
    if args.report_only:
        records, meta = load_records(results)
        print(f"wrote {write_report(scene, records, meta, out_dir, md_dir)}")
        return 0
    command = "python packages/nerf/benchmarks/run.py" + (" --quick" if args.quick else
                                                          f" --steps {args.steps} --rays {args.rays} --seeds {args.seeds} "
                                                          f"--eval-every {args.eval_every} --curve-views {args.curve_views} "
                                                          f"--eval-views {args.eval_views}")
    meta = {"command": command, "hardware": hardware_summary(), "args": {k: v for k, v in vars(args).items()},
            "scene": {"views": len(scene), "train": len(scene.train), "val": len(scene.val), "size": scene.width,
                      "samples": scene.box.samples}, "load": []}
    records: list[dict] = []
    if args.only:
        records, stored = load_records(results, keep=set(METHODS) - set(args.only) | {"speed"})
        meta["earlier"] = stored
    else:
        started = time.perf_counter()
        records += speed_side_by_side(scene, args)
        print(f"side-by-side speed ({time.perf_counter() - started:.0f} s)", flush=True)
    for seed in range(args.seeds):
        for method in args.only or METHODS:
            started = time.perf_counter()
            records.append(run_one(scene, method, seed, args))
            meta["load"].append(os.getloadavg()[0])
            meta["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            save_records(results, records, meta)
            print(f"{method} seed {seed}: PSNR {records[-1]['psnr']:.2f} ({time.perf_counter() - started:.0f} s, "
                  f"load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"wrote {write_report(scene, records, meta, out_dir, md_dir)}")
    return 0
