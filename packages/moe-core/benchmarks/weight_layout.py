"""Does storing the expert weights transposed (HF's ``[E, 2f, d]``) speed up the whole layer?

``small_batch_memory.py`` shows one ``torch._grouped_mm`` running faster on the transposed layout.
This script checks the full layer, forward and forward+backward, on the benchmark's shapes: the
same ``MoELayer`` weights stored as moe-core's ``[E, d, 2f]`` and as the same logical tensors laid
out ``[E, 2f, d]`` in memory (a transposed-stride parameter, so checkpoints would not change), for
the grouped and segmented backends, against the dense FFN timed in the same round. Prints the
median % of dense speed and its interquartile range over interleaved repeats.

``uv run --locked --no-sync python packages/moe-core/benchmarks/weight_layout.py [--repeats 9]``
(about 3 minutes on 2 cores)
"""

import argparse

import torch
from torch import nn

from moe_zoo.core.benchmark import SHAPES, Implementation, _ours, _percent, time_against_dense
from moe_zoo.core.experts import FeedForward


def transposed_storage(weight: nn.Parameter) -> nn.Parameter:
    """The same values and logical shape ``[E, a, b]``, stored in memory as ``[E, b, a]``."""
    return nn.Parameter(weight.detach().transpose(1, 2).contiguous().transpose(1, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(2)
    for shape in SHAPES[:3]:
        torch.manual_seed(1)
        dense = FeedForward(shape.d_model, shape.d_hidden * shape.top_k)
        impls = [Implementation("dense", dense, dense)]
        for backend in ("grouped", "segmented"):
            layers = {"[E, d, 2f]": _ours(shape, backend, 0), "[E, 2f, d]": _ours(shape, backend, 0)}
            transposed = layers["[E, 2f, d]"].experts
            transposed.w_in, transposed.w_out = transposed_storage(transposed.w_in), transposed_storage(transposed.w_out)
            impls += [Implementation(f"{backend} {layout}", layer, lambda v, m=layer: m(v).output)
                      for layout, layer in layers.items()]
        x = torch.randn(shape.tokens, shape.d_model)
        grad = torch.randn_like(x)
        with torch.no_grad():
            reference = impls[1].run(x)
            assert all((impl.run(x) - reference).abs().max() < 1e-4 for impl in impls[1:])
        result = time_against_dense(impls, x, grad, args.repeats)
        print(f"\n{shape.label}  (% of dense speed: median (IQR) over {args.repeats} repeats)")
        for impl in impls[1:]:
            cells = "   ".join(f"{phase} {_percent(result[impl.name], phase)}" for phase in ("fwd", "fwd+bwd"))
            print(f"  {impl.name:22s} {cells}", flush=True)


if __name__ == "__main__":
    main()
