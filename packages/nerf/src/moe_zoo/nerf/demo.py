"""The demo: render held-out drone views of the built-in city with the shipped Switch-NeRF++ weights."""

from __future__ import annotations

import time

import torch

from moe_zoo.nerf.predict import load
from moe_zoo.nerf.renderer import Cameras, render
from moe_zoo.nerf.scene import builtin_scene
from moe_zoo.nerf.training import evaluate


def run_demo(views: int = 2) -> str:
    """A short report: held-out PSNR / SSIM, render speed and the share of rays each expert owns."""
    started = time.perf_counter()
    scene = builtin_scene()
    built = time.perf_counter() - started
    model = load()
    chosen = scene.val[:views]
    metrics = evaluate(model, scene, chosen)
    _, experts = render(model, Cameras.from_scene(scene, chosen), expert_map=True)
    owned = experts[experts >= 0]
    share = torch.bincount(owned, minlength=model.config.n_experts).float() / max(owned.numel(), 1)
    lines = [f"Built-in city scene: {len(scene)} drone views {scene.width}x{scene.height} "
             f"({len(scene.train)} train, {len(scene.val)} held out), ready in {built:.1f} s.",
             f"Switch-NeRF++ (shipped weights, {model.config.n_experts} heterogeneous hash experts) on "
             f"{len(chosen)} held-out views: PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f}, "
             f"{metrics['render_s']:.2f} s per view on CPU.",
             "Share of rendered surface per expert (grid max resolution, table size):"]
    cfg = model.config
    for e in range(cfg.n_experts):
        lines.append(f"  expert {e} (res {cfg.expert_max_res[e]:>4}, 2^{cfg.expert_log2_table[e]} rows): "
                     f"{float(share[e]):.2f}")
    return "\n".join(lines)
