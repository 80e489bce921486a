"""Where a training step of the 64-expert shape spends its time (moe-core segmented vs dense FFN).

For (T=4096, d=512, f=256, E=64, k=8): the share of ``aten::mm`` and of the next operators in
``torch.profiler`` over 3 forward+backward steps, the GEMM FLOP rate against the dense FFN's, and,
from ``getrusage``, the minor page faults and the kernel's share of the CPU time for 5 steps each.

``uv run --locked --no-sync python packages/moe-core/benchmarks/profile_layer.py`` (about 1 minute)
"""

import resource

import torch
from torch.profiler import profile

from moe_zoo.core.benchmark import SHAPES, _ours, _time
from moe_zoo.core.experts import FeedForward, dense_ffn_flops


def step(module: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor) -> None:
    x = x.clone().requires_grad_()
    out = module(x)
    (out if isinstance(out, torch.Tensor) else out.output).backward(grad)
    module.zero_grad(set_to_none=True)


def main() -> None:
    torch.set_num_threads(2)
    shape = SHAPES[1]
    torch.manual_seed(0)
    modules = {"moe-core segmented": _ours(shape, "segmented", 0),
               "dense SwiGLU": FeedForward(shape.d_model, shape.d_hidden * shape.top_k)}
    x = torch.randn(shape.tokens, shape.d_model)
    grad = torch.randn_like(x)
    flops = 3 * dense_ffn_flops(shape.tokens, shape.d_model, shape.d_hidden * shape.top_k)  # fwd + 2x bwd
    print(f"{shape.label}: {flops / 1e9:.0f} GFLOP per forward+backward step (both modules)")
    for name, module in modules.items():
        for _ in range(2):
            step(module, x, grad)
        with profile() as prof:
            for _ in range(3):
                step(module, x, grad)
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events)
        mm = sum(e.self_cpu_time_total for e in events if e.key == "aten::mm")
        top = ", ".join(f"{e.key} {100 * e.self_cpu_time_total / total:.1f}%" for e in events[:6])
        print(f"\n{name}: profiled CPU time {total / 3e3:.0f} ms per step; aten::mm {100 * mm / total:.0f}% "
              f"at {flops * 3 / (mm / 1e6) / 1e9:.0f} GFLOP/s\n  top operators: {top}")
        before = resource.getrusage(resource.RUSAGE_SELF)
        wall = sum(_time(lambda m=module: step(m, x, grad)) for _ in range(5))
        after = resource.getrusage(resource.RUSAGE_SELF)
        user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
        print(f"  5 steps: {1e3 * wall / 5:.0f} ms per step, {(after.ru_minflt - before.ru_minflt) / 5:,.0f} minor "
              f"page faults per step, kernel {100 * system / (user + system):.0f}% of the CPU time")


if __name__ == "__main__":
    main()
