"""nerf's section of moe-core's ``make gpu-check`` (found there as ``moe_zoo.nerf.gpu_check.run``).

On the GPU: the fused Triton hash-encoding kernel against the torch reference (max abs difference
of the encoding and of the table gradient) and both timed (forward + backward, 2^18 points, 4
heterogeneous experts); then 30 training steps of the default Switch-NeRF++ through
``train(..., device="cuda")`` on an in-memory scene (random images on a ring of cameras: the
built-in scene needs pyrender / EGL, which a bare GPU machine may lack).
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch


def _timed(fn, repeats: int = 10) -> float:
    fn()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - started) / repeats * 1e3


def _kernel(device: str) -> dict[str, Any]:
    from moe_zoo.nerf.hashgrid import HashGrids
    from moe_zoo.nerf.model import SwitchNeRFConfig
    from moe_zoo.nerf.triton_hash import encode

    config = SwitchNeRFConfig()
    grids = HashGrids(config.grid_specs(), config.n_levels, config.n_features, init_scale=1.0).to(device)
    x = torch.rand(2**18, 3, device=device)
    grid = torch.randint(0, config.n_experts, (2**18,), device=device)
    grad = torch.randn(2**18, grids.out_dim, device=device)

    def step(fused: bool) -> torch.Tensor:
        grids.table.grad = None
        out = encode(grids, x, grid) if fused else grids(x, grid)
        (out * grad).sum().backward()
        return out

    ref, ref_grad = step(False).detach(), grids.table.grad.clone()
    got = step(True).detach()
    return {"points": 2**18, "experts": config.n_experts, "max_abs_diff_encoding": float((got - ref).abs().max()),
            "max_abs_diff_table_grad": float((grids.table.grad - ref_grad).abs().max()),
            "torch_fwd_bwd_ms": round(_timed(lambda: step(False)), 3),
            "triton_fwd_bwd_ms": round(_timed(lambda: step(True)), 3)}


def _ring_scene(n: int = 12, size: int = 32):
    from moe_zoo.nerf.data import Scene, box_from_cameras
    from moe_zoo.nerf.scene import look_at

    poses = [look_at(torch.tensor([2 * math.cos(a), 2 * math.sin(a), 1.0]).numpy(), torch.zeros(3).numpy())
             for a in (2 * math.pi * i / n for i in range(n))]
    c2w = torch.tensor(poses, dtype=torch.float32)
    images = torch.rand(n, size, size, 3, generator=torch.Generator().manual_seed(0))
    k = torch.tensor([[size, size, size / 2, size / 2]] * n, dtype=torch.float32)
    return Scene("gpu-check-ring", images, c2w, k, list(range(n - 2)), [n - 2, n - 1], box_from_cameras(c2w))


def run(device: str) -> dict[str, Any]:
    from moe_zoo.nerf.training import TrainConfig, train

    data = {"kernel": _kernel(device)}
    result = train(_ring_scene(), TrainConfig(steps=30, rays=4096), device=device, progress=False)
    data["train"] = {"data": "in-memory ring scene (random images, 12 views 32x32)", "steps": 30,
                     "seconds": round(result.seconds, 2),
                     "param_devices": sorted({str(p.device) for p in result.model.parameters()})}
    return data
