"""The demo: simulate tumour-like fluorescent inclusions in tissue, recover depth and lifetime."""

from __future__ import annotations

import time

import torch

from moe_zoo.flidar.metrics import summarise
from moe_zoo.flidar.model import EXPERT_NAMES
from moe_zoo.flidar.predict import load, predict
from moe_zoo.flidar.simulator import simulate


def run_demo(n: int = 2048, seed: int = 7) -> str:
    """A readable report: a few examples, the errors, speed, and which expert the decider trusts."""
    started = time.perf_counter()
    data = simulate(n, seed=seed)
    simulated = time.perf_counter() - started
    model = load()
    predict(data.histograms[:64], model)  # warm-up: first-call allocations are not prediction time
    started = time.perf_counter()
    result = predict(data.histograms, model)
    predicted = time.perf_counter() - started
    truth = data.targets()
    metrics = summarise(torch.stack([result.depth_mm, result.lifetime_ns], -1), truth)
    lines = [f"Simulated {n} FLiDAR TCSPC histograms (diffusion theory in tissue, Poisson noise) in {simulated:.2f} s;",
             f"EvidenceMoE predicted them in {predicted:.2f} s ({n / predicted:,.0f} histograms/s).", "",
             "  true depth   predicted          true tau   predicted           photons",
             "  (mm)         (mm)               (ns)       (ns)"]
    for i in range(6):
        lines.append(f"  {truth[i, 0]:6.2f}     {result.depth_mm[i]:6.2f} ± {result.depth_error_mm[i]:4.2f}      "
                     f"{truth[i, 1]:6.3f}    {result.lifetime_ns[i]:6.3f} ± {result.lifetime_error_ns[i]:5.3f}    "
                     f"{data.params['photons'][i]:8.0f}")
    weights = result.expert_weights.mean(0)
    lines += ["", f"Depth:    NRMSE {metrics['nrmse_depth']:.3f}, RMSE {metrics['rmse_depth_mm']:.2f} mm",
              f"Lifetime: NRMSE {metrics['nrmse_lifetime']:.3f}, RMSE {metrics['rmse_lifetime_ns'] * 1e3:.0f} ps",
              "Decider's mean weight per expert (" + ", ".join(EXPERT_NAMES) + "):",
              "  depth    " + "  ".join(f"{w:.2f}" for w in weights[0]),
              "  lifetime " + "  ".join(f"{w:.2f}" for w in weights[1]),
              "(± is the critics' expected absolute error from their Dirichlet evidence)"]
    return "\n".join(lines)
