"""CPU time of one Switch-NeRF++ training step and one 200x200 render, for whichever moe_zoo.nerf is imported.

Run once per code version, alternating, with the same settings (the older version from
``git archive <commit> packages/nerf/src`` first on PYTHONPATH), e.g.::

    git archive d98d9b4 packages/nerf/src | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/packages/nerf/src python packages/nerf/benchmarks/before_after.py   # before
    python packages/nerf/benchmarks/before_after.py                                          # after

Encoding: the default expert bank (4 grids) on 12,288 random rows (256 rays x 48 samples),
forward and forward + backward, median of 10. Steps: 256 rays on a freshly initialised model
(seed 0), median of 10 after 2 warm-up steps. Render: the shipped weights, first held-out view at
200x200 with ``render()``'s defaults.
Prints one JSON line (CPU seconds of this process, 1 thread).
"""

from __future__ import annotations

import json
import statistics
import time

import torch

import moe_zoo.nerf
from moe_zoo.nerf import load, render
from moe_zoo.nerf import training as tr
from moe_zoo.nerf.hashgrid import HashGrids
from moe_zoo.nerf.model import SwitchNeRFConfig
from moe_zoo.nerf.renderer import Cameras, render_rays
from moe_zoo.nerf.scene import builtin_scene


def median_cpu(fn, repeats: int = 10) -> float:
    fn()
    times = []
    for _ in range(repeats):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return statistics.median(times)


def encoding_times() -> dict[str, float]:
    torch.manual_seed(0)
    grids = HashGrids(SwitchNeRFConfig().grid_specs(), 8, 2)
    x, grid = torch.rand(12288, 3), torch.randint(0, 4, (12288,))

    def forward_backward() -> None:
        grids.table.grad = None
        grids(x, grid).square().sum().backward()

    with torch.no_grad():
        forward = median_cpu(lambda: grids(x, grid))
    return {"encode_fwd_cpu_s": forward, "encode_fwd_bwd_cpu_s": median_cpu(forward_backward)}


def main() -> None:
    torch.set_num_threads(1)
    encoding = encoding_times()
    scene = builtin_scene()
    config = tr.TrainConfig(rays=256, steps=400)
    torch.manual_seed(0)
    model = tr.scene_model(config, scene).train()
    fused = {"fused": True} if hasattr(tr, "make_optimizer") else {}  # each version's own optimizer
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.99), eps=1e-15, **fused)
    origins, dirs, colors, image = tr.training_rays(scene)
    generator = torch.Generator().manual_seed(0)
    steps = []
    for i in range(12):
        batch = torch.randint(0, origins.shape[0], (config.rays,), generator=generator)
        started = time.process_time()
        out = render_rays(model, origins[batch], dirs[batch], image=image[batch], jitter=True, generator=generator)
        loss = torch.mean((out["rgb"] - colors[batch]) ** 2) + config.balance * out["aux"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= 2:
            steps.append(time.process_time() - started)
    shipped = load()
    k = scene.intrinsics[scene.val[0]] * (200 / scene.width)  # the benchmark's 200x200 view (older versions lack view_200)
    started = time.process_time()
    render(shipped, Cameras(scene.c2w[scene.val[:1]], k[None], 200, 200))
    print(json.dumps({"module": moe_zoo.nerf.__file__, **encoding, "step_cpu_s": statistics.median(steps),
                      "render_200_cpu_s": time.process_time() - started}))


if __name__ == "__main__":
    main()
