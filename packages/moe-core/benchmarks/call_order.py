"""How much the call order moves the 64-expert forward's % of dense speed.

The benchmark interleaves single calls of every implementation, each forward followed by that
implementation's forward+backward. This script times only the dense SwiGLU FFN and moe-core's
segmented layer (same weights and input as the benchmark), forward under ``no_grad``, in three
orders, 9 rounds each after a warm-up round, in one process:

- ``interleaved``: one forward each per round (the benchmark's order without the backward);
- ``after fwd+bwd``: each forward right after that module's own forward+backward (as in the benchmark);
- ``blocks of 5``: five forwards of one module back to back, the median of the block per round.

Prints per order the median ms of both, the median (IQR) of the per-round % of dense, and the
minor page faults of one more forward of each after the rounds (``getrusage``).

``uv run --locked --no-sync python packages/moe-core/benchmarks/call_order.py`` (about 1 minute)
"""

import statistics

import torch

from moe_zoo.core.benchmark import (
    SHAPES,
    Implementation,
    _time,
    _time_and_faults,
    benchmark_inputs,
    build_implementations,
    run_forward,
    run_forward_backward,
)

ROUNDS = 9


def _forward_after_backward(impl: Implementation, x: torch.Tensor, grad: torch.Tensor) -> float:
    run_forward_backward(impl, x, grad)
    impl.module.zero_grad(set_to_none=True)
    return _time(lambda: run_forward(impl, x))


def main() -> None:
    torch.set_num_threads(2)
    shape = SHAPES[1]
    impls = {i.name: i for i in build_implementations(shape, peers=False)}
    pair = [impls["dense SwiGLU (same active FLOPs)"], impls["moe-core segmented"]]
    x, grad = benchmark_inputs(shape)
    orders = {
        "interleaved": lambda i: _time(lambda: run_forward(i, x)),
        "after fwd+bwd": lambda i: _forward_after_backward(i, x, grad),
        "blocks of 5": lambda i: statistics.median(_time(lambda: run_forward(i, x)) for _ in range(5)),
    }
    print(f"T={shape.tokens}, d={shape.d_model}, f={shape.d_hidden}, E={shape.n_experts}, k={shape.top_k}, forward")
    print("order | dense ms | segmented ms | segmented % of dense, median (IQR) | page faults per forward, dense / segmented")
    for name, timed in orders.items():
        times = {i.name: [] for i in pair}
        for rnd in range(ROUNDS + 1):
            for impl in pair:
                seconds = timed(impl)
                if rnd:
                    times[impl.name].append(seconds)
        faults = [_time_and_faults(lambda impl=impl: run_forward(impl, x))[1] for impl in pair]
        dense, ours = times[pair[0].name], times[pair[1].name]
        ratios = [100 * d / s for d, s in zip(dense, ours)]
        q1, mid, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
        print(f"{name} | {1e3 * statistics.median(dense):.1f} | {1e3 * statistics.median(ours):.1f} | "
              f"{mid:.0f}% ({q1:.0f}-{q3:.0f}) | {faults[0]:,} / {faults[1]:,}", flush=True)


if __name__ == "__main__":
    main()
