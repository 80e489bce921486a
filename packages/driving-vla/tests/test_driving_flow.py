"""Flow matching against its formula, the Beta time sampling, Euler sampling on known fields, focal loss."""

import math

import pytest
import torch

from moe_zoo.driving.losses import (
    class_alpha,
    flow_matching_loss,
    flow_path,
    focal_loss,
    sample_flow_time,
)
from moe_zoo.driving.model import euler_steps


def test_flow_path_and_loss_follow_the_formula():
    g = torch.Generator().manual_seed(0)
    x0, x1, t = torch.randn(8, 10, 2, generator=g), torch.randn(8, 10, 2, generator=g), torch.rand(8, generator=g)
    s = 1e-3
    psi, target = flow_path(x0, x1, t)
    tt = t[:, None, None]
    assert torch.allclose(psi, (1 - (1 - s) * tt) * x0 + tt * x1)
    assert torch.allclose(target, x1 - (1 - s) * x0)
    v = torch.randn(8, 10, 2, generator=g)
    assert torch.allclose(flow_matching_loss(v, x0, x1), ((v - (x1 - (1 - s) * x0)) ** 2).mean())
    # the path's time derivative is the target velocity
    eps = 1e-3
    numeric = (flow_path(x0, x1, t + eps)[0] - flow_path(x0, x1, t - eps)[0]) / (2 * eps)
    assert torch.allclose(numeric, target, atol=1e-3)


def test_flow_time_is_0999_times_one_minus_beta():
    t = sample_flow_time(200_000, torch.Generator().manual_seed(0))
    assert t.min() >= 0 and t.max() <= 0.999
    z = 1 - t / 0.999                                     # z ~ Beta(1.5, 1): CDF z^1.5, mean 0.6
    assert abs(float(z.mean()) - 0.6) < 0.005
    assert abs(float((z < 0.5).float().mean()) - 0.5 ** 1.5) < 0.005


def test_euler_sampling_on_known_fields():
    x0 = torch.randn(3, 10, 2)
    const = torch.full((3, 10, 2), 0.7)
    *_, (x_end, _) = euler_steps(lambda x, t: (const, None, None), x0, 10)
    assert torch.allclose(x_end, x0 + 0.7, atol=1e-6)              # dx/dt = c -> x(1) = x0 + c
    *_, (x_end, _) = euler_steps(lambda x, t: (-x, None, None), x0, 10)
    assert torch.allclose(x_end, x0 * 0.9 ** 10, atol=1e-6)         # explicit Euler of dx/dt = -x
    times = []
    list(euler_steps(lambda x, t: (times.append(float(t[0])) or torch.zeros_like(x), None, None), x0, 10))
    assert times == pytest.approx([k / 10 for k in range(10)])


def test_focal_loss_formula_and_alpha():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    target = torch.tensor([0, 2])
    p = logits.softmax(-1)[torch.arange(2), target]
    alpha = class_alpha(torch.tensor([0, 0, 0, 1, 2]), 3)
    assert torch.allclose(alpha, torch.tensor([1 / 3, 1, 1]) / (7 / 3))
    want = (-(1 - p) ** 2 * torch.log(p) * alpha[target]).mean()
    assert torch.allclose(focal_loss(logits, target, alpha, 2.0), want)
    assert math.isclose(float(focal_loss(logits, target, None, 0.0)), float(-torch.log(p).mean()), rel_tol=1e-6)


def _tiny_model():
    from moe_zoo.driving.model import DriveMoE, DriveMoEConfig

    torch.manual_seed(0)
    return DriveMoE(DriveMoEConfig(d_model=16, n_heads=2, pca_dim=8, expert_hidden=8, router_hidden=16,
                                   context_layers=1, action_layers=3, moe_layers=2)).eval()


def test_action_attention_is_multihead_attention_over_context_and_actions():
    layer = _tiny_model().layers[0]
    g = torch.Generator().manual_seed(3)
    x, context = torch.randn(2, 10, 16, generator=g), torch.randn(2, 7, 16, generator=g)
    h = layer.norm1(x)
    kv = torch.cat([context, h], dim=1)
    want = x + layer.attn(h, kv, kv, need_weights=False)[0]          # torch's own MultiheadAttention
    assert torch.allclose(layer.attend(x, context), want, atol=1e-5)
    assert torch.allclose(layer.attend(x, kv=layer.context_kv(context)), want, atol=1e-5)


def test_sampling_with_cached_context_equals_plain_euler_on_the_velocity():
    model = _tiny_model()
    context = torch.randn(3, 7, 16, generator=torch.Generator().manual_seed(4))
    x, probs = model.sample(context, 10, torch.Generator().manual_seed(5))
    x0 = torch.randn(3, 10, 2, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        *_, (want, want_probs) = euler_steps(lambda x_, t_: model.velocity(x_, t_, context), x0, 10)
    assert torch.allclose(x, want.clamp(-1, 1), atol=1e-5) and torch.allclose(probs, want_probs, atol=1e-5)
