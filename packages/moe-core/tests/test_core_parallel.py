"""Expert parallelism over 2 gloo processes matches the single-process layer."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from moe_zoo.core import MoEConfig, MoELayer, save_checkpoint


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


@pytest.mark.parametrize("extra", [{}, {"n_shared_experts": 1, "n_zero": 1, "top_k": 3}])
def test_two_gloo_ranks_match_single_process(tmp_path: Path, extra):
    torch.manual_seed(0)
    config = MoEConfig(d_model=16, d_hidden=8, n_experts=4, **{"top_k": 2, **extra})
    layer = MoELayer(config)
    save_checkpoint(tmp_path / "layer.safetensors", layer)
    xs = [torch.randn(9 + 4 * r, 16) for r in range(2)]  # ranks hold different numbers of tokens
    gs = [torch.randn_like(x) for x in xs]
    save_file({"x0": xs[0], "x1": xs[1], "g0": gs[0], "g1": gs[1]}, tmp_path / "inputs.safetensors")
    worker = Path(__file__).with_name("ep_worker.py")
    done = subprocess.run([sys.executable, str(worker), str(tmp_path), _free_port(), "2"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [load_file(tmp_path / f"rank{r}.safetensors") for r in range(2)]

    x_full = torch.cat(xs).requires_grad_()
    out = layer(x_full)
    out.output.backward(torch.cat(gs))
    assert torch.allclose(torch.cat([r["output"] for r in ranks]), out.output, atol=1e-5)
    assert torch.allclose(torch.cat([r["x_grad"] for r in ranks]), x_full.grad, atol=1e-5)
    for name, param in layer.named_parameters():
        if name.startswith("experts."):  # each rank holds the gradient of its own shard
            got = torch.cat([r[f"grad.{name}"] for r in ranks])
        else:  # replicated parameters: the ranks' gradients sum to the full-batch gradient
            got = sum(r[f"grad.{name}"] for r in ranks)
        assert torch.allclose(got, param.grad, atol=1e-5), name
