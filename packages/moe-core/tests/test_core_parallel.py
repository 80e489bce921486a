"""Expert parallelism over 2 gloo processes matches the single-process layer on the ranks' tokens
concatenated, for every router and capacity setting (one worker start-up for all of them)."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from moe_zoo.core import MoEConfig, MoELayer, save_checkpoint

BIAS_RATE = 0.05  # as in ep_worker.py
# name -> (config overrides, eval mode): every router, with and without capacity dropping, and
# the routers whose training-mode noise is per rank (dense-to-sparse) in eval mode
CASES = {
    "topk": ({}, False),
    "shared+null+top3": ({"n_shared_experts": 1, "n_zero": 1, "top_k": 3}, False),
    "topk capacity 0.5": ({"capacity_factor": 0.5}, False),
    "topk capacity 1.0 + null": ({"capacity_factor": 1.0, "n_zero": 1}, False),
    "expert choice cf 2": ({"router": "expert_choice", "expert_capacity": 2.0}, False),
    "expert choice cf 0.5 + capacity 0.5": ({"router": "expert_choice", "expert_capacity": 0.5,
                                             "capacity_factor": 0.5}, False),
    "top-p + capacity 0.75": ({"router": "topp", "top_p": 0.6, "capacity_factor": 0.75}, False),
    "hash + capacity 0.5": ({"router": "hash", "capacity_factor": 0.5}, False),
    "dense-to-sparse (eval)": ({"router": "dense_to_sparse"}, True),
    "sigmoid groups + aux-free bias": ({"score": "sigmoid", "n_groups": 2, "topk_groups": 1, "balance_bias": True,
                                        "routed_scale": 2.5}, False),
}


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ep_results(tmp_path_factory):
    """Write every case, run the 2-rank worker once, return {case: (layer, inputs, rank results)}."""
    root = tmp_path_factory.mktemp("ep")
    cases = {}
    for i, (name, (extra, eval_mode)) in enumerate(CASES.items()):
        torch.manual_seed(i)
        layer = MoELayer(MoEConfig(d_model=16, d_hidden=8, n_experts=4, **{"top_k": 2, **extra}))
        folder = root / f"case{i:02d}"
        save_checkpoint(folder / "layer.safetensors", layer)
        xs = [torch.randn(9 + 4 * r, 16) for r in range(2)]  # ranks hold different numbers of tokens
        gs = [torch.randn_like(x) for x in xs]
        inputs = {"x0": xs[0], "x1": xs[1], "g0": gs[0], "g1": gs[1]} | ({"eval": torch.ones(1)} if eval_mode else {})
        save_file(inputs, folder / "inputs.safetensors")
        cases[name] = (folder, layer.train(not eval_mode), xs, gs)
    worker = Path(__file__).with_name("ep_worker.py")
    done = subprocess.run([sys.executable, str(worker), str(root), _free_port(), "2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return {name: (layer, xs, gs, [load_file(folder / f"rank{r}.safetensors") for r in range(2)])
            for name, (folder, layer, xs, gs) in cases.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_two_gloo_ranks_match_single_process(ep_results, case):
    layer, xs, gs, ranks = ep_results[case]
    x_full = torch.cat(xs).requires_grad_()
    out = layer(x_full)
    out.output.backward(torch.cat(gs))
    routed = out.routing.indices >= 0
    if "capacity" in case:  # the setting really drops assignments, so the global decision is tested
        assert (out.routing.indices == -1).any() and routed.any()
    assert torch.allclose(torch.cat([r["output"] for r in ranks]), out.output, atol=1e-5)
    assert torch.allclose(torch.cat([r["x_grad"] for r in ranks]), x_full.grad, atol=1e-5)
    for name, param in layer.named_parameters():
        if name.startswith("experts."):  # each rank holds the gradient of its own shard
            got = torch.cat([r[f"grad.{name}"] for r in ranks])
        else:  # replicated parameters: the ranks' gradients sum to the full-batch gradient
            got = sum(r[f"grad.{name}"] for r in ranks)
        assert torch.allclose(got, param.grad, atol=1e-5), name
    if layer.config.balance_bias:  # the bias update counts every rank's loads, as one process would
        for rank in ranks:
            torch.testing.assert_close(rank["loads"], layer.router.load_accumulator, rtol=0, atol=0)
        layer.router.update_bias(rate=BIAS_RATE)
        assert layer.router.expert_bias.abs().sum() > 0
        for rank in ranks:
            torch.testing.assert_close(rank["bias"], layer.router.expert_bias, rtol=0, atol=1e-7)
        with torch.no_grad():
            torch.testing.assert_close(torch.cat([r["output2"] for r in ranks]), layer(x_full).output,
                                       rtol=0, atol=1e-5)
