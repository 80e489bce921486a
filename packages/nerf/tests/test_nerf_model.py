"""The hash gate's top-1 dispatch through moe-core, the balance loss, gradients, the baselines."""

from __future__ import annotations

import pytest
import torch

from moe_zoo.core import InputError, load_balancing_loss
from moe_zoo.nerf.model import MODELS, SwitchNeRF, SwitchNeRFConfig, build_model


def small_config(**kw) -> SwitchNeRFConfig:
    return SwitchNeRFConfig(expert_min_res=(2, 4, 8), expert_max_res=(8, 32, 64), expert_log2_table=(8, 10, 12),
                            expert_hidden=(8, 16, 24), n_levels=4, gate_grid=(2, 16, 8), gate_hidden=8,
                            feature_dim=6, **kw)


def test_top1_dispatch_equals_per_row_expert_times_gate_probability():
    torch.manual_seed(0)
    model = SwitchNeRF(small_config())
    for p in model.parameters():
        torch.nn.init.normal_(p, std=1.0)
    u = torch.rand(300, 3)
    h, routing = model.features(u)
    probs = torch.softmax(model.router.compute_logits(model.gate_mlp(model.gate_grid(u))).float(), -1)
    top1 = probs.argmax(-1)
    assert torch.equal(routing.indices[:, 0], top1)
    assert len(set(top1.tolist())) == 3                        # every expert gets rows here
    for n in range(0, 300, 37):                                 # row by row: p_i * MLP_i(Hash_i(u))
        e = int(top1[n])
        enc = model.grids(u[n:n + 1], torch.tensor([e]))
        expected = probs[n, e] * model.experts.experts[e](enc)
        assert torch.allclose(h[n], expected[0], atol=1e-5)
    assert torch.equal(routing.expert_counts, torch.bincount(top1, minlength=3))
    out = model(u, torch.nn.functional.normalize(torch.randn(300, 3), dim=-1))
    f = torch.bincount(top1, minlength=3).float() / 300
    assert torch.allclose(out.aux_loss(), 3 * (f * probs.mean(0)).sum(), atol=1e-5)
    assert torch.allclose(out.aux_loss(), load_balancing_loss(routing))


def test_gradients_reach_gate_experts_and_head():
    torch.manual_seed(1)
    model = SwitchNeRF(small_config())
    u = torch.rand(200, 3)
    out = model(u, torch.nn.functional.normalize(torch.randn(200, 3), dim=-1), torch.zeros(200, dtype=torch.long))
    (out.rgb.sum() + out.sigma.sum() + out.aux_loss()).backward()
    for name in ("gate_grid.table", "router.weight", "grids.table", "head.sigma.weight", "head.appearance.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    used = set(out.routing.indices[:, 0].tolist())
    for e, expert in enumerate(model.experts.experts):
        has = expert.net[0].weight.grad is not None and expert.net[0].weight.grad.abs().sum() > 0
        assert has == (e in used)


def test_experts_are_heterogeneous_and_every_model_builds():
    model = build_model("switch-nerf-pp")
    sizes = [model.grids.grid_params(e) for e in range(model.config.n_experts)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert set(MODELS) == {"switch-nerf-pp", "switch-nerf-homogeneous", "switch-nerf-v1", "hash-nerf"}
    u, d = torch.rand(50, 3), torch.nn.functional.normalize(torch.randn(50, 3), dim=-1)
    for name in ("switch-nerf-homogeneous", "switch-nerf-v1", "hash-nerf"):
        out = build_model(name)(u, d)
        assert out.sigma.shape == (50,) and out.rgb.shape == (50, 3) and (out.sigma >= 0).all()


def test_config_errors():
    with pytest.raises(InputError, match="same length"):
        SwitchNeRFConfig(expert_min_res=(8, 8), expert_max_res=(8,))
    with pytest.raises(InputError, match="gate_grid"):
        SwitchNeRFConfig(gate_grid=(8, 64))
