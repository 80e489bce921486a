"""The GEMMs alone: how close to dense speed can an MoE layer of each benchmark shape get on CPU?

For each 4096-token benchmark shape this times only the matrix products that any dropless MoE
layer must run, with no routing, gather, scatter or activation: per expert ``x_e W_in[e]``
(``[n_e, d] x [d, 2f]``) and ``a_e W_out[e]`` (``[n_e, f] x [f, d]``) on rows already in place,
``n_e`` = the per-expert token counts of the benchmark's own routing, plus the shared expert's
two products; against the dense SwiGLU FFN's two products (hidden size (k + shared) * f, the
same FLOPs). For forward+backward it adds the backward's products (``dL/da = g W_out^T``,
``dL/dW_out = a^T g``, ``dL/dx = dh W_in^T``, ``dL/dW_in = x^T dh``) on both sides. Layouts
match the layers: the bank's ``[E, d, 2f]`` / ``[E, f, d]`` weights, nn.Linear's ``[out, in]``.

``dense time / expert time`` is then the ceiling on the layer's "% of dense" that the
benchmark reports: what the layer would reach if everything but its GEMMs were free (the
activation runs over as many elements on both sides). In the same process the whole segmented
layer is then timed against the whole dense FFN exactly as the benchmark does (its weights,
input, routing and timed calls), so the gap between the two lines is the cost of everything
around the GEMMs: routing, gathers, scatters, combine weights. Median and quartiles over
interleaved repeats; run it with the benchmark's malloc tunables (``GLIBC_TUNABLES``).

``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824
uv run --locked --no-sync python packages/moe-core/benchmarks/gemm_ceiling.py [--repeats 15]``
"""

import argparse
import time

import torch
from torch import Tensor

from moe_zoo.core.benchmark import (
    PHASES,
    SHAPES,
    Implementation,
    Shape,
    _percent,
    _quartiles,
    benchmark_inputs,
    build_implementations,
    time_against_dense,
)


class Products:
    """The forward (and backward) matrix products of one FFN per group of rows, inputs preallocated."""

    def __init__(self, rows: list[int], d: int, f: int, linear_layout: bool) -> None:
        self.linear_layout = linear_layout  # dense FFN: nn.Linear weights [out, in], x W^T
        shape_in, shape_out = ((2 * f, d), (d, f)) if linear_layout else ((d, 2 * f), (f, d))
        self.groups = [(torch.randn(n, d), torch.randn(*shape_in), torch.randn(n, f), torch.randn(*shape_out),
                        torch.randn(n, d), torch.randn(n, 2 * f)) for n in rows if n]

    def _w(self, w: Tensor) -> Tensor:
        return w.t() if self.linear_layout else w

    def forward(self) -> None:
        for x, w_in, a, w_out, _, _ in self.groups:
            torch.mm(x, self._w(w_in))
            torch.mm(a, self._w(w_out))

    def forward_backward(self) -> None:
        self.forward()
        for x, w_in, a, w_out, g, dh in self.groups:
            torch.mm(g, self._w(w_out).t())  # dL/da
            torch.mm(a.t(), g)  # dL/dW_out
            torch.mm(dh, self._w(w_in).t())  # dL/dx
            torch.mm(x.t(), dh)  # dL/dW_in


def ceiling(shape: Shape, counts: list[int], repeats: int) -> dict[str, list[float]]:
    """Per repeat, 100 * dense GEMM time / expert GEMM time, for the forward and forward+backward."""
    tokens, d, f = shape.tokens, shape.d_model, shape.d_hidden
    dense = Products([tokens], d, f * (shape.top_k + shape.shared), linear_layout=True)
    experts = Products(counts, d, f, linear_layout=False)
    shared = Products([tokens] if shape.shared else [], d, f * shape.shared, linear_layout=True)
    ratios: dict[str, list[float]] = {phase: [] for phase in PHASES}
    for rep in range(repeats + 1):
        for phase, run in zip(PHASES, ("forward", "forward_backward")):
            start = time.perf_counter()
            getattr(dense, run)()
            dense_s = time.perf_counter() - start
            start = time.perf_counter()
            getattr(experts, run)()
            getattr(shared, run)()
            expert_s = time.perf_counter() - start
            if rep:  # the first round warms up
                ratios[phase].append(100 * dense_s / expert_s)
    return ratios


def dense_and_segmented(shape: Shape) -> list[Implementation]:
    """The benchmark's dense FFN and segmented layer (its weights and seeds)."""
    return [i for i in build_implementations(shape, peers=False) if i.name.startswith("dense") or "segmented" in i.name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; % of dense speed, median (IQR)")
    for shape in SHAPES:
        if shape.tokens < 1024:
            continue
        impls = dense_and_segmented(shape)
        x, grad = benchmark_inputs(shape, 0)
        with torch.no_grad():  # per-expert token counts of the routing the benchmark times
            counts = impls[1].module.route(x).expert_counts.tolist()
        ratios = ceiling(shape, counts, args.repeats)
        layer = time_against_dense(impls, x, grad, args.repeats)[impls[1].name]
        gemms, whole = [], []
        for phase, values in ratios.items():
            q1, median, q3 = _quartiles(values)
            gemms.append(f"{phase} {median:.0f}% ({q1:.0f}–{q3:.0f})")
            whole.append(f"{phase} {_percent(layer, phase)}")
        print(f"{shape.label}\n  GEMMs alone: {', '.join(gemms)}\n  whole segmented layer: {', '.join(whole)}")


if __name__ == "__main__":
    main()
