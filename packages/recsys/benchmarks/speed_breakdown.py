"""Where HoME's training time goes: CPU time per step of HoME, HoME without each fix, and MMoE.

``python packages/recsys/benchmarks/speed_breakdown.py [--steps 30] [--repeats 3]`` trains each
variant for ``--steps`` Adam steps of 1024 MovieLens training rows (one torch thread, the
benchmark's default widths (64, 32)), interleaving the variants ``--repeats`` times so that load
from other jobs hits them alike, and prints a Markdown table of the median CPU milliseconds per
step and the ratio to MMoE's. CPU time of this process, not wall time: the machine is shared.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from moe_zoo.core.argtypes import positive_int
from moe_zoo.core.reporting import markdown_table
from moe_zoo.recsys.data import movielens
from moe_zoo.recsys.losses import multitask_loss
from moe_zoo.recsys.train import _binary_mask, build

VARIANTS = {
    "MMoE": ("mmoe", {}),
    "HoME": ("home", {}),
    "HoME w/o norm+Swish (fix 1)": ("home", {"expert_norm": False, "swish": False}),
    "HoME w/o hierarchy (fix 2)": ("home", {"hierarchy": False}),
    "HoME w/o feature-gate (fix 3a)": ("home", {"feature_gate": False}),
    "HoME w/o self-gate (fix 3b)": ("home", {"self_gate": False}),
    "HoME w/o feature+self gates (fix 3)": ("home", {"feature_gate": False, "self_gate": False}),
}


def step_ms(model: torch.nn.Module, tensors: tuple[torch.Tensor, ...], steps: int) -> float:
    """Mean CPU milliseconds of one forward + backward + Adam step (after one warm-up step)."""
    categorical, numeric, labels = tensors
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    binary = _binary_mask(model, "cpu")
    generator = torch.Generator().manual_seed(0)
    model.train()
    for k in range(steps + 1):
        if k == 1:
            began = time.process_time()
        rows = torch.randint(0, len(labels), (1024,), generator=generator)
        loss = multitask_loss(model(categorical[rows], numeric[rows]).logits, labels[rows], binary)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.process_time() - began) / steps * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_int, default=30)
    parser.add_argument("--repeats", type=positive_int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    splits = movielens()
    tensors = splits.train.tensors()
    models = {label: build(kind, splits, seed=0, **overrides) for label, (kind, overrides) in VARIANTS.items()}
    times: dict[str, list[float]] = {label: [] for label in models}
    for _ in range(args.repeats):
        for label, model in models.items():
            times[label].append(step_ms(model, tensors, args.steps))
    base = statistics.median(times["MMoE"])
    rows = [[label, f"{sum(p.numel() for p in models[label].parameters()):,}", f"{statistics.median(t):.1f}",
             f"{statistics.median(t) / base:.2f}"] for label, t in times.items()]
    print(markdown_table(["model", "params", "CPU ms / step (median)", "ratio to MMoE"], rows))
    print(f"\n{args.steps} steps x {args.repeats} interleaved repeats, batch 1024, MovieLens-100K, one torch thread.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
