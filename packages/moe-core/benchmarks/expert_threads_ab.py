"""Does the segmented backward gain from running expert groups on parallel threads?

For each shape (T, d, f, E, k), the same layer, input and output gradient, the backward alone is
timed with the experts split over ``torch.get_num_threads()`` single-threaded workers ("threads")
and as one loop in the caller's thread with multi-threaded BLAS ("loop"), interleaved, 15 repeats
after a warm-up. Prints the median ms of each and the median and IQR of the per-repeat ratio
loop / threads (> 1: threads are faster). The size cut-off of ``expert_threads`` is bypassed so
that both variants run on every shape.

``uv run --locked --no-sync python packages/moe-core/benchmarks/expert_threads_ab.py`` (about 2 minutes)
"""

import statistics
import time

import torch

from moe_zoo.core import MoEConfig, MoELayer
from moe_zoo.core.dispatch import segmented

SHAPES = [(512, 512, 256, 64, 8), (4096, 512, 256, 64, 8), (256, 512, 1024, 8, 2), (1024, 512, 1024, 8, 2),
          (4096, 512, 1024, 8, 2)]
REPEATS = 15


def backward_seconds(layer: MoELayer, x: torch.Tensor, grad: torch.Tensor, threads: bool) -> float:
    segmented.expert_threads = ((lambda w_in, w_out, counts: torch.get_num_threads()) if threads
                                else (lambda w_in, w_out, counts: 1))
    out = layer(x.clone().requires_grad_()).output
    start = time.perf_counter()
    out.backward(grad)
    elapsed = time.perf_counter() - start
    layer.zero_grad(set_to_none=True)
    return elapsed


def main() -> None:
    torch.set_num_threads(2)
    original = segmented.expert_threads
    print("T, d, f, E, k | loop ms | threads ms | loop / threads, median (IQR)")
    for tokens, d, f, experts, k in SHAPES:
        torch.manual_seed(0)
        layer = MoELayer(MoEConfig(d_model=d, d_hidden=f, n_experts=experts, top_k=k, backend="segmented"))
        x, grad = torch.randn(tokens, d), torch.randn(tokens, d)
        times: dict[bool, list[float]] = {False: [], True: []}
        for rep in range(REPEATS + 1):
            for threads in (False, True):
                seconds = backward_seconds(layer, x, grad, threads)
                if rep:
                    times[threads].append(seconds)
        ratios = [a / b for a, b in zip(times[False], times[True])]
        q1, mid, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
        print(f"{tokens}, {d}, {f}, {experts}, {k} | {1e3 * statistics.median(times[False]):.1f} | "
              f"{1e3 * statistics.median(times[True]):.1f} | {mid:.3f} ({q1:.3f}-{q3:.3f})", flush=True)
    segmented.expert_threads = original


if __name__ == "__main__":
    main()
