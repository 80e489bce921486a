"""Worker for test_core_parallel: run an ExpertParallelMoE on each of ``world`` gloo ranks.

Usage: python ep_worker.py OUT_DIR PORT WORLD. Rank r loads the shared single-process layer
from OUT_DIR/layer.safetensors and its tokens/upstream gradient from OUT_DIR/inputs.safetensors,
then writes its output and gradients to OUT_DIR/rank{r}.safetensors.
"""

import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from moe_zoo.core import MoEConfig, MoELayer, load_checkpoint, load_state_into
from moe_zoo.core.parallel import ExpertParallelMoE


def run(rank: int, world: int, out_dir: str, port: str) -> None:
    torch.set_num_threads(1)  # one thread per rank: the ranks share the machine's cores
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        checkpoint = load_checkpoint(os.path.join(out_dir, "layer.safetensors"))
        layer = MoELayer(MoEConfig.from_dict(checkpoint.config))
        load_state_into(layer, checkpoint.state_dict)
        inputs = load_file(os.path.join(out_dir, "inputs.safetensors"))
        sharded = ExpertParallelMoE.from_layer(layer)
        x = inputs[f"x{rank}"].clone().requires_grad_()
        out = sharded(x)
        out.output.backward(inputs[f"g{rank}"])
        result = {"output": out.output.detach(), "x_grad": x.grad}
        result.update({f"grad.{n}": p.grad for n, p in sharded.named_parameters() if p.grad is not None})
        save_file({k: v.contiguous() for k, v in result.items()}, os.path.join(out_dir, f"rank{rank}.safetensors"))
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
