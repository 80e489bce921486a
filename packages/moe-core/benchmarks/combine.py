"""The segmented backend's inference combine: ``embedding_bag`` over rows in expert order vs ``index_add_``.

Under ``no_grad`` the segmented layer writes each expert's output rows to one ``[N, d]`` buffer and
sums them per token with ``embedding_bag``; above ``SORTED_COMBINE_MAX_BYTES`` it adds each
expert's rows to the output with ``index_add_`` instead (what training does). This script times
both ways on the benchmark's shapes, in a process built as the benchmark's (peers included), the
two interleaved with the dense FFN in each of 9 rounds after a warm-up. Prints per shape the
forward's median ms and median (IQR) % of dense speed, and the page faults per forward.

``uv run --locked --no-sync python packages/moe-core/benchmarks/combine.py [--shape I]`` (about 4 minutes)
"""

import argparse

import torch

from moe_zoo.core.benchmark import (
    SHAPES,
    Implementation,
    benchmark_inputs,
    build_implementations,
    time_against_dense,
)
from moe_zoo.core.dispatch import segmented


def _with_limit(impl: Implementation, name: str, limit: int) -> Implementation:
    def run(x: torch.Tensor) -> torch.Tensor:
        saved, segmented.SORTED_COMBINE_MAX_BYTES = segmented.SORTED_COMBINE_MAX_BYTES, limit
        try:
            return impl.run(x)
        finally:
            segmented.SORTED_COMBINE_MAX_BYTES = saved
    return Implementation(name, impl.module, run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, choices=range(len(SHAPES)), default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print("shape | combine | fwd ms | fwd % of dense, median (IQR) | page faults per forward")
    for shape in SHAPES if args.shape is None else [SHAPES[args.shape]]:
        impls = {i.name: i for i in build_implementations(shape)}
        layer = impls["moe-core segmented"]
        timed = [impls["dense SwiGLU (same active FLOPs)"], _with_limit(layer, "index_add_", 0),
                 _with_limit(layer, "embedding_bag", 2**62)]
        x, grad = benchmark_inputs(shape)
        result = time_against_dense(timed, x, grad, repeats=9)
        for impl in timed[1:]:
            r = result[impl.name]
            print(f"{shape.label} | {impl.name} | {1e3 * r['fwd']:.1f} | {r['fwd %']:.0f}% "
                  f"({r['fwd % q1']:.0f}-{r['fwd % q3']:.0f}) | {r['fwd faults']:,.0f}", flush=True)


if __name__ == "__main__":
    main()
