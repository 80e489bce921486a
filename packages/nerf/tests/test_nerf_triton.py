"""The fused Triton hash-encoding kernel against the torch reference, under TRITON_INTERPRET=1 on CPU."""

from __future__ import annotations

import os

import pytest
import torch

from moe_zoo.nerf.hashgrid import GridSpec, HashGrids

pytest.importorskip("triton")


@pytest.fixture(autouse=True)
def _interpreter():
    if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("no GPU and TRITON_INTERPRET is not 1")


def test_fused_kernel_matches_reference_forward_and_table_gradient():
    from moe_zoo.nerf.triton_hash import encode

    torch.manual_seed(0)
    grids = HashGrids([GridSpec(2, 8, 6), GridSpec(4, 64, 9), GridSpec(3, 200, 10)], n_levels=3, n_features=2,
                      init_scale=1.0)
    x = torch.rand(150, 3)
    x[0] = torch.tensor([1.0, 0.0, 1.0])
    grid = torch.randint(0, 3, (150,))
    ref = grids(x, grid)
    grad = torch.randn_like(ref)
    (ref * grad).sum().backward()
    ref_grad = grids.table.grad.clone()
    grids.table.grad = None
    got = encode(grids, x, grid)
    assert torch.allclose(got, ref, atol=1e-5)
    (got * grad).sum().backward()
    assert torch.allclose(grids.table.grad, ref_grad, atol=1e-4)


def test_switch_nerf_with_the_fused_kernel_matches_the_torch_path():
    from moe_zoo.nerf.model import SwitchNeRF, SwitchNeRFConfig

    torch.manual_seed(2)
    model = SwitchNeRF(SwitchNeRFConfig(expert_min_res=(2, 4), expert_max_res=(8, 32), expert_log2_table=(8, 10),
                                        expert_hidden=(8, 8), n_levels=3, gate_grid=(2, 8, 8), gate_hidden=8,
                                        feature_dim=4))
    torch.nn.init.uniform_(model.grids.table, -1, 1)
    u, d = torch.rand(90, 3), torch.nn.functional.normalize(torch.randn(90, 3), dim=-1)
    model.kernel = "torch"
    ref = model(u, d)
    model.kernel = "triton"
    got = model(u, d)
    assert torch.allclose(got.sigma, ref.sigma, rtol=1e-4, atol=1e-5) and torch.allclose(got.rgb, ref.rgb, atol=1e-5)
