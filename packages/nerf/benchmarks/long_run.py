"""The issue's quality target: the default Switch-NeRF++ on the built-in scene, held-out PSNR on all
held-out views every ``--eval-every`` steps against training time (evaluation excluded).

    python packages/nerf/benchmarks/long_run.py --steps 1200 --rays 512 --eval-every 100

Writes ``benchmarks/results/long_run.json`` (the config, the curve, the load average).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from moe_zoo.core.argtypes import positive_int
from moe_zoo.core.reporting import hardware_summary
from moe_zoo.nerf.scene import builtin_scene
from moe_zoo.nerf.training import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_int, default=1200)
    parser.add_argument("--rays", type=positive_int, default=512)
    parser.add_argument("--eval-every", type=positive_int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    scene = builtin_scene()
    config = TrainConfig(steps=args.steps, rays=args.rays, eval_every=args.eval_every, eval_views=len(scene.val),
                         seed=args.seed)
    result = train(scene, config, progress=False)
    for h in result.history:
        print(f"step {h['step']}: {h['psnr']:.2f} dB after {h['seconds']:.0f} s ({h['cpu_seconds']:.0f} CPU s)")
    out = Path(__file__).resolve().parent / "results" / "long_run.json"
    out.write_text(json.dumps({"config": config.to_dict(), "history": result.history, "hardware": hardware_summary(),
                               "load_at_end": os.getloadavg()}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
