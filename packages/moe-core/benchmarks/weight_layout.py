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

from moe_zoo.core.benchmark import SHAPES, _ours, _quartiles, _time
from moe_zoo.core.experts import FeedForward


def transposed_storage(weight: nn.Parameter) -> nn.Parameter:
    """The same values and logical shape ``[E, a, b]``, stored in memory as ``[E, b, a]``."""
    return nn.Parameter(weight.detach().transpose(1, 2).contiguous().transpose(1, 2))


def run(module: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    return module(inputs) if isinstance(module, FeedForward) else module(inputs).output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(2)
    for shape in SHAPES[:3]:
        torch.manual_seed(1)
        impls = {"dense": FeedForward(shape.d_model, shape.d_hidden * shape.top_k)}
        for backend in ("grouped", "segmented"):
            impls[f"{backend} [E, d, 2f]"] = _ours(shape, backend, 0)
            layer = _ours(shape, backend, 0)
            layer.experts.w_in = transposed_storage(layer.experts.w_in)
            layer.experts.w_out = transposed_storage(layer.experts.w_out)
            impls[f"{backend} [E, 2f, d]"] = layer
        x = torch.randn(shape.tokens, shape.d_model)
        grad = torch.randn_like(x)

        with torch.no_grad():
            reference = run(impls["grouped [E, d, 2f]"], x)
            assert all((run(m, x) - reference).abs().max() < 1e-4 for n, m in impls.items() if n != "dense")
        times = {name: {"fwd": [], "fwd+bwd": []} for name in impls}
        for rep in range(args.repeats + 1):
            for name, module in impls.items():
                with torch.no_grad():
                    fwd = _time(lambda m=module, v=x: run(m, v))
                x_req = x.clone().requires_grad_()
                both = _time(lambda m=module, v=x_req, g=grad: run(m, v).backward(g))
                module.zero_grad(set_to_none=True)
                if rep:  # the first round is the warm-up
                    times[name]["fwd"].append(fwd)
                    times[name]["fwd+bwd"].append(both)
        print(f"\n{shape.label}  (% of dense speed: median [IQR] over {args.repeats} repeats)")
        for name, t in list(times.items())[1:]:
            cells = []
            for phase in ("fwd", "fwd+bwd"):
                q1, mid, q3 = _quartiles([100 * d / s for d, s in zip(times["dense"][phase], t[phase])])
                cells.append(f"{phase} {mid:4.0f}% [{q1:.0f}-{q3:.0f}]")
            print(f"  {name:22s} " + "   ".join(cells), flush=True)


if __name__ == "__main__":
    main()
