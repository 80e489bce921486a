"""Benchmark: Switch-NeRF++ against its baselines on the built-in city scene, same rays and seeds.

Methods: Switch-NeRF++ (heterogeneous hash experts), the homogeneous mixture (every expert alike),
one hash grid of about the same parameter count, and Switch-NeRF v1 (MLP experts). Each is
trained for the same number of steps on the same rays (per-step seeded) for every seed; held-out
PSNR / SSIM over the first ``--eval-views`` held-out views, train seconds (evaluation excluded), train seconds to a
target PSNR (on 1 held-out view, checked at half time and at the end), seconds to render a 200x200 view,
peak RSS; a figure of held-out views beside the ground truth and top-down expert maps.
``python packages/nerf/benchmarks/run.py`` writes ``packages/nerf/BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import torch

from moe_zoo.core.argtypes import positive_float, positive_int
from moe_zoo.core.reporting import (
    format_mean_std,
    markdown_table,
    mean_std,
    save_figure,
    write_benchmarks_md,
)
from moe_zoo.nerf.data import Scene
from moe_zoo.nerf.renderer import Cameras, render
from moe_zoo.nerf.scene import builtin_scene, look_at
from moe_zoo.nerf.training import TrainConfig, evaluate, train

PACKAGE = Path(__file__).resolve().parents[3]
METHODS = {  # name -> (label, learning rate, occupancy grid)
    "switch-nerf-pp": ("Switch-NeRF++ (heterogeneous hash experts)", 1e-2, True),
    "switch-nerf-homogeneous": ("homogeneous hash experts", 1e-2, True),
    "hash-nerf": ("single hash grid", 1e-2, True),
    "switch-nerf-v1": ("Switch-NeRF v1 (MLP experts)", 2e-3, False),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_int, default=80)
    parser.add_argument("--rays", type=positive_int, default=256)
    parser.add_argument("--seeds", type=positive_int, default=3)
    parser.add_argument("--target-psnr", type=positive_float, default=16.0)
    parser.add_argument("--eval-views", type=positive_int, default=4, help="held-out views scored per run")
    parser.add_argument("--only", nargs="+", choices=sorted(METHODS), default=None,
                        help="rerun these methods and keep the other methods' stored records (results/)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 10 steps, writes under benchmarks/quick/")
    return parser.parse_args(argv)


def top_down(scene: Scene, size: int = 96) -> Cameras:
    """A camera straight above the scene box looking down (for the expert map)."""
    center = np.asarray(scene.box.center)
    eye = center + np.asarray(scene.up) * 3.0
    pose = look_at(eye, center, up=(0.0, 1.0, 0.0) if abs(scene.up[1]) < 0.9 else (1.0, 0.0, 0.0))
    focal = 0.5 * size / np.tan(np.radians(25))
    return Cameras(torch.from_numpy(pose).float()[None], torch.tensor([[focal, focal, size / 2, size / 2]]), size, size)


def render_200(model, scene: Scene) -> float:
    """Seconds to render one 200x200 held-out view (the scene's intrinsics scaled)."""
    k = scene.intrinsics[scene.val[0]] * (200 / scene.width)
    cams = Cameras(scene.c2w[scene.val[:1]], k[None], 200, 200)
    started = time.perf_counter()
    render(model, cams)
    return time.perf_counter() - started


def run_one(scene: Scene, method: str, seed: int, args: argparse.Namespace) -> dict:
    config = TrainConfig(model=method, steps=args.steps, rays=args.rays, lr=METHODS[method][1], seed=seed,
                         occupancy=METHODS[method][2],
                         eval_every=max(args.steps // 2, 1), eval_views=1)
    result = train(scene, config, progress=False)
    metrics = evaluate(result.model, scene, scene.val[: args.eval_views])
    reached = [h["seconds"] for h in result.history if h["psnr"] >= args.target_psnr]
    record = {"method": method, "seed": seed, "psnr": metrics["psnr"], "ssim": metrics["ssim"],
              "train_s": result.seconds, "render_view_s": metrics["render_s"],
              "time_to_target_s": reached[0] if reached else None, "history": result.history,
              "params": sum(p.numel() for p in result.model.parameters())}
    if seed == 0:  # the 200x200 render timing, the figure's views and expert map: first seed only
        record["render_200_s"] = render_200(result.model, scene)
        record["views"] = metrics["images"][:2].numpy()
        if hasattr(result.model, "router"):
            record["expert_map"] = render(result.model, top_down(scene), expert_map=True)[1][0].numpy()
    return record


ARRAYS = ("views", "expert_map")


def save_records(folder: Path, records: list[dict]) -> None:
    """``records.json`` (numbers) and ``arrays.npz`` (the figure's seed-0 views and expert maps)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "records.json").write_text(json.dumps([{k: v for k, v in r.items() if k not in ARRAYS} for r in records],
                                                    indent=1))
    np.savez_compressed(folder / "arrays.npz", **{f"{r['method']}.{key}": r[key] for r in records
                                                   for key in ARRAYS if key in r})


def load_records(folder: Path, keep: set[str]) -> list[dict]:
    records = [r for r in json.loads((folder / "records.json").read_text()) if r["method"] in keep]
    with np.load(folder / "arrays.npz", allow_pickle=False) as arrays:
        for r in records:
            for key in ARRAYS:
                if r["seed"] == 0 and f"{r['method']}.{key}" in arrays:
                    r[key] = arrays[f"{r['method']}.{key}"]
    return records


def figure(scene: Scene, records: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = sorted((r for r in records if r["seed"] == 0), key=lambda r: list(METHODS).index(r["method"]))
    maps = [r for r in first if "expert_map" in r]
    cols = 1 + len(first)
    fig, axes = plt.subplots(3, cols, figsize=(2.2 * cols, 6.8))
    for row in range(2):
        axes[row, 0].imshow(scene.images[scene.val[row]].numpy())
        axes[row, 0].set_title("ground truth" if row == 0 else "", fontsize=8)
        for c, r in enumerate(first, 1):
            axes[row, c].imshow(np.clip(r["views"][row], 0, 1))
            if row == 0:
                axes[row, c].set_title(METHODS[r["method"]][0].split(" (")[0], fontsize=8)
    for c in range(cols):
        axes[2, c].axis("off")
    top = render_gt_top(scene)
    axes[2, 0].imshow(top)
    axes[2, 0].set_title("scene from above (render)", fontsize=7)
    for c, r in enumerate(maps, 1):
        m = np.ma.masked_less(r["expert_map"], 0)
        axes[2, c].imshow(m, cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
        axes[2, c].set_title(f"experts: {METHODS[r['method']][0].split(' (')[0]}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, path)


def render_gt_top(scene: Scene) -> np.ndarray:
    from moe_zoo.nerf.scene import render_views

    cams = top_down(scene)
    return render_views(cams.c2w.numpy(), cams.height, 50.0)[0]


def table(records: list[dict], target: float) -> str:
    rows = []
    for method, (label, lr, _) in METHODS.items():
        rs = [r for r in records if r["method"] == method]
        if not rs:
            continue
        reached = [r["time_to_target_s"] for r in rs if r["time_to_target_s"] is not None]
        rows.append([label, f"{rs[0]['params'] / 1e6:.2f} M", lr, format_mean_std([r["psnr"] for r in rs], 2),
                     format_mean_std([r["ssim"] for r in rs], 3), format_mean_std([r["train_s"] for r in rs], 1),
                     (format_mean_std(reached, 1) + f" ({len(reached)}/{len(rs)})") if reached else f"not reached (0/{len(rs)})",
                     f"{rs[0]['render_200_s']:.2f}"])
    return markdown_table(["method", "params", "lr", "PSNR (dB)", "SSIM", "train s", f"train s to {target:g} dB",
                           "render 200x200 s (seed 0)"], rows)


def ratios(records: list[dict]) -> str:
    def mean(method: str, key: str) -> float:
        return mean_std([r[key] for r in records if r["method"] == method and key in r])[0]

    lines = []
    if any(r["method"] == "switch-nerf-v1" for r in records):
        lines.append(f"- render 200x200: v1 / Switch-NeRF++ = {mean('switch-nerf-v1', 'render_200_s') / mean('switch-nerf-pp', 'render_200_s'):.2f}x "
                     f"(issue target >= 4x)")
        lines.append(f"- train time for the same steps: v1 / Switch-NeRF++ = "
                     f"{mean('switch-nerf-v1', 'train_s') / mean('switch-nerf-pp', 'train_s'):.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.steps, args.seeds = 10, 1
    out_dir = PACKAGE / "benchmarks" / ("quick" if args.quick else "")
    md_dir = out_dir if args.quick else PACKAGE
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    scene = builtin_scene()
    results = out_dir / "results"
    records = load_records(results, keep=set(METHODS) - set(args.only)) if args.only else []
    for seed in range(args.seeds):
        for method in args.only or METHODS:
            started = time.perf_counter()
            records.append(run_one(scene, method, seed, args))
            print(f"{method} seed {seed}: PSNR {records[-1]['psnr']:.2f} ({time.perf_counter() - started:.0f} s)", flush=True)
    fig = figure(scene, records, out_dir / "figures" / "held_out_views.png")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    save_records(results, records)
    load = [f"{v:.1f}" for v in os.getloadavg()]
    command = "python packages/nerf/benchmarks/run.py" + (" --quick" if args.quick else "") + \
        (f" --steps {args.steps} --rays {args.rays} --seeds {args.seeds} --eval-views {args.eval_views}"
         if not args.quick else "")
    notes = (f"Built-in city scene: {len(scene)} drone views {scene.width}x{scene.height} ({len(scene.train)} train, "
             f"{len(scene.val)} held out; metrics on the first {args.eval_views}). {args.steps} steps of {args.rays} rays, {scene.box.samples} samples per ray, "
             f"1 CPU thread, on a machine shared with other jobs (load average at the end: {' '.join(load)}), so "
             f"absolute seconds are inflated; ratios come from the same process. Peak RSS of the whole run: "
             f"{peak_gb:.2f} GB. LPIPS: not computed (no offline AlexNet/VGG weights).")
    sections = [("Held-out views (mean ± std over seeds)", table(records, args.target_psnr)),
                ("Ratios", ratios(records)),
                ("Figure", f"![held-out views and expert maps]({fig.relative_to(md_dir)})\n\n"
                           "Top rows: two held-out views, ground truth then each method (seed 0). Bottom row: the "
                           "scene rendered from above, then each mixture's top-down expert map (colour = the expert "
                           "owning the surface at that pixel).")]
    write_benchmarks_md(md_dir / "BENCHMARKS.md", "nerf: Switch-NeRF++ and baselines", command=command,
                        sections=sections, notes=notes, seeds=list(range(args.seeds)))
    print(f"wrote {md_dir / 'BENCHMARKS.md'}")
    return 0
