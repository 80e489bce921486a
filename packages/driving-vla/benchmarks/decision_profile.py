"""Where one closed-loop DriveMoE decision spends its time, and what sampling's caching saves.

Drives one held-out episode per scenario with the shipped weights (or ``--model``), keeps the
observations, then times each part of ``DrivingPolicy.act`` on them, one thread, in one process:
front-view encoding (frozen MobileNetV2), camera router, chosen-view encoding, context encoder,
10 Euler steps, PID, and the whole ``act``. The Euler steps are timed twice side by side: as
``DriveMoE.sample`` runs them (context keys / values and the step grid's time features computed
once) and as a plain Euler loop over ``DriveMoE.velocity`` (everything recomputed every step).

    python packages/driving-vla/benchmarks/decision_profile.py [--model drivemoe] [--repeats 3]

Writes ``benchmarks/decision_profile.json`` (milliseconds per decision, median over repeats; load average).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from moe_zoo.driving.api import as_policy, load
from moe_zoo.driving.env import DrivingEnv
from moe_zoo.driving.features import encode_views
from moe_zoo.driving.model import euler_steps
from moe_zoo.driving.scenarios import SCENARIOS


def observations(policy, steps: int) -> list[dict]:
    """Up to ``steps`` observations per scenario from the policy's own closed loop (seed 10000)."""
    out = []
    for name in SCENARIOS:
        env = DrivingEnv(name)
        obs, _ = env.reset(seed=10_000)
        policy.reset()
        for _ in range(steps):
            out.append(obs)
            obs, _, terminated, truncated, _ = env.step(policy.act(obs))
            if terminated or truncated:
                break
        env.close()
    return out


def per_call_ms(fn, items, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        began = time.perf_counter()
        for item in items:
            fn(item)
        runs.append((time.perf_counter() - began) / len(items) * 1000)
    return statistics.median(runs)


def load_average() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="drivemoe", help="registry name with weights or a checkpoint path")
    parser.add_argument("--steps", type=int, default=20, help="observations kept per scenario")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).with_name("decision_profile.json")))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = load(args.model)
    policy = as_policy(model)
    obs = observations(policy, args.steps)
    before = load_average()
    with torch.inference_mode():
        fronts = [model.reduce(encode_views(o["cameras"][:1])) for o in obs]
        points = [torch.as_tensor(o["command_point"], dtype=torch.float32)[None] for o in obs]
        routed = [model.route_cameras(model.camera_tokens(f, 0), p) for f, p in zip(fronts, points)]
        chosen = [int(z.argmax(-1)) for z in routed]
        others = torch.zeros(1, 5, *fronts[0].shape[1:])
        choice = torch.nn.functional.one_hot(torch.tensor([0]), 5).float()
        context = [model.encode_context(f, f, others, choice, torch.tensor([o["command"]]), p,
                                        torch.as_tensor(o["history"])[None]) for f, p, o in zip(fronts, points, obs)]
        items = list(range(len(obs)))

        def plain_euler(i):
            x = torch.randn(1, model.config.n_waypoints, 2, generator=torch.Generator().manual_seed(0))
            return list(euler_steps(lambda x_, t_: model.velocity(x_, t_, context[i]), x, 10))

        parts = {
            "encode_front": per_call_ms(lambda i: encode_views(obs[i]["cameras"][:1]), items, args.repeats),
            "camera_router": per_call_ms(lambda i: model.route_cameras(model.camera_tokens(fronts[i], 0), points[i]),
                                         items, args.repeats),
            "encode_chosen_view": per_call_ms(lambda i: encode_views(obs[i]["cameras"][1 + chosen[i]:2 + chosen[i]]),
                                              items, args.repeats),
            "context": per_call_ms(lambda i: model.encode_context(fronts[i], fronts[i], others, choice,
                                                                  torch.tensor([obs[i]["command"]]), points[i],
                                                                  torch.as_tensor(obs[i]["history"])[None]),
                                   items, args.repeats),
            "euler_10_steps_cached": per_call_ms(
                lambda i: model.sample(context[i], 10, torch.Generator().manual_seed(0)), items, args.repeats),
            "euler_10_steps_plain": per_call_ms(plain_euler, items, args.repeats),
            "pid": per_call_ms(lambda i: policy.controller(np.cumsum(np.full((10, 2), [2.0, 0.0]), 0), 10.0),
                               items, args.repeats),
        }
    policy.reset()
    parts["act_total"] = per_call_ms(lambda i: policy.act(obs[i]), items, args.repeats)
    result = {"model": args.model, "decisions": len(obs), "repeats": args.repeats, "ms_per_decision": parts,
              "decisions_per_s": 1000 / parts["act_total"],
              "euler_speedup_cached_vs_plain": parts["euler_10_steps_plain"] / parts["euler_10_steps_cached"],
              "load_average_before": before, "load_average_after": load_average()}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
