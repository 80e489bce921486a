"""The benchmark's shapes on the GPU in bf16, in one process: the dense FFN, every moe-core backend
(Triton included) and HF's Mixtral / Qwen2-MoE blocks (eager, grouped_mm, batched_mm where it fits),
all with the same weights, input and routing. Timing, pooling and % of dense as in
:mod:`moe_zoo.core.benchmark`, with CUDA synchronised around every timed call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from moe_zoo.core.benchmark import (
    SHAPES,
    Implementation,
    Shape,
    _percent,
    benchmark_inputs,
    build_implementations,
    interleaved_samples,
    max_abs_diffs,
    summarise_samples,
)
from moe_zoo.core.layer import MoELayer

DTYPE = torch.bfloat16
WARMUP = 3   # the first calls compile Triton kernels and warm cuBLAS


def gpu_implementations(shape: Shape, device: str = "cuda") -> list[Implementation]:
    """:func:`build_implementations` (HF peers, no DeepSpeed) plus the Triton backend, moved to ``device`` in bf16."""
    impls = build_implementations(shape, peers=True, deepspeed=False)
    eager = next(i.module for i in impls if i.name == "moe-core eager")
    triton_layer = MoELayer(eager.config.replace(backend="triton"))
    triton_layer.load_state_dict(eager.state_dict())
    impls.insert(len([i for i in impls if not i.name.startswith("HF")]),
                 Implementation("moe-core triton", triton_layer, lambda x, m=triton_layer: m(x).output))
    for impl in impls:
        impl.module.to(device=device, dtype=DTYPE)
    return impls


def measure_shape(shape: Shape, repeats: int, device: str = "cuda", warmup: int = WARMUP) -> dict[str, dict[str, float]]:
    """Per implementation: median ms and % of dense (with IQR) per phase, max |diff| from moe-core eager."""
    impls = gpu_implementations(shape, device)
    x, grad = (t.to(device=device, dtype=DTYPE) for t in benchmark_inputs(shape))
    diffs = max_abs_diffs(impls, x)
    result = summarise_samples(interleaved_samples(impls, x, grad, repeats, warmup))
    for name, diff in diffs.items():
        result[name]["max_abs_diff"] = diff
    return result


def _row(name: str, t: dict[str, float]) -> list[str]:
    cells = [name]
    for phase in ("fwd", "fwd+bwd"):
        cells += [f"{1e3 * t[phase]:.3f}", _percent(t, phase)]
    return [*cells, "—" if "max_abs_diff" not in t else f"{t['max_abs_diff']:.1e}"]


def run_benchmark(repeats: int, publish: Callable[[dict[str, Any]], None], shapes: tuple[Shape, ...] = SHAPES,
                  device: str = "cuda", warmup: int = WARMUP) -> None:
    """Measure every shape, calling ``publish`` with everything so far after each one."""
    data: dict[str, Any] = {"dtype": str(DTYPE), "repeats": repeats, "warmup": warmup, "shapes": {}, "tables": {}}
    header = ["implementation", "fwd ms", "fwd % of dense (IQR)", "fwd+bwd ms", "fwd+bwd % of dense (IQR)",
              "max abs diff vs eager (bf16)"]
    for shape in shapes:
        result = measure_shape(shape, repeats, device, warmup)
        data["shapes"][shape.label] = result
        data["tables"][shape.label] = {"header": header, "rows": [_row(n, t) for n, t in result.items()]}
        if torch.cuda.is_initialized():
            data.setdefault("peak_memory_gib", {})[shape.label] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        publish(data)
