"""Why the 64-token shape stays below dense speed on CPU: the expert weights stream from memory.

Times the first projection of (T=64, d=512, f=1024, E=8, k=2) as ``torch._grouped_mm`` over 8
distinct experts (32 MB of weights, more than the cache holds, as in the layer) and over one expert's
weights repeated 8 times (4 MB, cache-resident, the same FLOPs), each with the weights stored
``[E, d, 2f]`` (moe-core's ExpertBank) and as a transposed view of ``[E, 2f, d]`` (HF's layout).

Then whether a padded ``torch.bmm`` would pay: ``bmm`` over ``[E, C, d]`` rows (one GEMM call that
the threads split by expert) at C = 16 (every expert with the mean count, the ideal) and at C = the
largest per-expert count of the benchmark's own routing (rows padded with zeros up to it), against
``torch._grouped_mm`` on the same 8 distinct experts.

``uv run --locked --no-sync python packages/moe-core/benchmarks/small_batch_memory.py``
"""

import time

import torch

from moe_zoo.core.benchmark import SHAPES, _ours, benchmark_inputs

E, D, F2, ROWS = 8, 512, 2048, 16


def median_us(fn, repeats: int = 200) -> float:
    for _ in range(20):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[repeats // 2] * 1e6


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    x = torch.randn(E * ROWS, D)
    offsets = torch.arange(1, E + 1, dtype=torch.int32) * ROWS
    distinct = torch.randn(E, D, F2)
    distinct_t = torch.randn(E, F2, D)
    one = torch.randn(1, D, F2).expand(E, -1, -1)
    one_t = torch.randn(1, F2, D).expand(E, -1, -1)
    rows = [("8 distinct experts (32 MB)", distinct, distinct_t), ("1 expert repeated (4 MB)", one, one_t)]
    for label, w, w_t in rows:
        plain = median_us(lambda w=w: torch._grouped_mm(x, w, offs=offsets))
        transposed = median_us(lambda w_t=w_t: torch._grouped_mm(x, w_t.transpose(1, 2), offs=offsets))
        print(f"{label}: [E, d, 2f] {plain:.0f} us, [E, 2f, d] transposed {transposed:.0f} us")
    largest = benchmark_max_count()
    for rows_per_expert in (ROWS, largest):
        padded = torch.randn(E, rows_per_expert, D)
        bmm = median_us(lambda padded=padded: torch.bmm(padded, distinct))
        print(f"bmm over [E, {rows_per_expert}, d] rows, 8 distinct experts: {bmm:.0f} us")


def benchmark_max_count() -> int:
    """Largest per-expert count of the routing the 64-token benchmark times."""
    shape = SHAPES[2]
    layer = _ours(shape, "grouped", 0)
    x, _ = benchmark_inputs(shape)
    with torch.no_grad():
        return int(layer.router(x).expert_counts.max())


if __name__ == "__main__":
    main()
