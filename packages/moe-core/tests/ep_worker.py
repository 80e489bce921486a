"""Worker for test_core_parallel: run ExpertParallelMoE on each of ``world`` gloo ranks, for every
case folder under OUT_DIR in one process group (one start-up for all settings).

Usage: python ep_worker.py OUT_DIR PORT WORLD. For each OUT_DIR/case*/, rank r loads the
single-process layer from layer.safetensors (in eval mode when inputs.safetensors holds ``eval``)
and its tokens/upstream gradient from inputs.safetensors, then writes its output and gradients to
rank{r}.safetensors; for a router with an auxiliary-loss-free bias it then updates the bias from
the loads of that forward and writes the loads, the bias and a second, no-grad output.
"""

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from moe_zoo.core import MoEConfig, MoELayer, load_checkpoint, load_state_into
from moe_zoo.core.parallel import ExpertParallelMoE

BIAS_RATE = 0.05


def run_case(case: Path, rank: int) -> None:
    checkpoint = load_checkpoint(case / "layer.safetensors")
    layer = MoELayer(MoEConfig.from_dict(checkpoint.config))
    load_state_into(layer, checkpoint.state_dict)
    inputs = load_file(case / "inputs.safetensors")
    layer.train("eval" not in inputs)
    sharded = ExpertParallelMoE.from_layer(layer)
    x = inputs[f"x{rank}"].clone().requires_grad_()
    out = sharded(x)
    out.output.backward(inputs[f"g{rank}"])
    result = {"output": out.output.detach(), "x_grad": x.grad}
    result.update({f"grad.{n}": p.grad for n, p in sharded.named_parameters() if p.grad is not None})
    if layer.config.balance_bias:
        result["loads"] = sharded.router.load_accumulator.clone()
        sharded.router.update_bias(rate=BIAS_RATE)
        with torch.no_grad():
            result.update(bias=sharded.router.expert_bias.clone(), output2=sharded(inputs[f"x{rank}"]).output)
    save_file({k: v.contiguous() for k, v in result.items()}, case / f"rank{rank}.safetensors")


def run(rank: int, world: int, out_dir: str, port: str) -> None:
    torch.set_num_threads(1)  # one thread per rank: the ranks share the machine's cores
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for case in sorted(Path(out_dir).glob("case*")):
            run_case(case, rank)
        dist.barrier()  # no rank tears down its connections while another still exchanges tokens
    finally:
        dist.destroy_process_group()
    # Skip interpreter finalisation: clearing module globals can destroy gloo objects whose
    # threads are still joinable, which aborts the process ("terminate called without an active
    # exception", SIGABRT) after the results are written; one CI run failed that way.
    os._exit(0)


if __name__ == "__main__":
    directory, port, world_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mp.spawn(run, args=(world_size, directory, port), nprocs=world_size)
