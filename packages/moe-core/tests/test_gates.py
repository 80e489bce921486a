"""HoME's feature-gate and self-gate follow their formulas on hand-made cases."""

import pytest
import torch

from moe_zoo.core import InputError
from moe_zoo.core.gates import LowRankFeatureGate, SelfGate


def test_feature_gate_starts_at_identity():
    gate = LowRankFeatureGate(6, 3, rank=2)
    x = torch.randn(5, 6)
    assert torch.equal(gate(x), torch.ones(3, 5, 6))
    assert torch.equal(gate.apply(x), x.expand(3, 5, 6))


def test_feature_gate_matches_formula_per_expert():
    torch.manual_seed(0)
    gate = LowRankFeatureGate(4, 2, rank=3)
    with torch.no_grad():
        gate.b.normal_()
    x = torch.randn(7, 4)
    for e in range(2):
        expected = 2 * torch.sigmoid(x @ gate.a[e] @ gate.b[e])
        torch.testing.assert_close(gate(x)[e], expected)
        torch.testing.assert_close(gate.apply(x)[e], x * expected)
    # one input per gate (gate-major): gate e sees only its own input
    per_gate = torch.randn(2, 7, 4)
    for e in range(2):
        expected = 2 * torch.sigmoid(per_gate[e] @ gate.a[e] @ gate.b[e])
        torch.testing.assert_close(gate.apply(per_gate)[e], per_gate[e] * expected)


def test_feature_gate_range_and_gradients():
    gate = LowRankFeatureGate(4, 2, rank=2)
    with torch.no_grad():
        gate.b.fill_(50.0)
        gate.a.fill_(1.0)
    values = gate(torch.ones(3, 4))
    assert values.max() <= 2.0 and values.min() >= 0.0
    gate = LowRankFeatureGate(4, 2, rank=2)
    gate.apply(torch.randn(3, 4)).sum().backward()
    assert gate.b.grad is not None and gate.b.grad.abs().sum() > 0


def test_feature_gate_rejects_bad_shapes():
    gate = LowRankFeatureGate(4, 2, rank=2)
    with pytest.raises(InputError, match=r"\[T, 4\]"):
        gate(torch.randn(3, 5))
    with pytest.raises(InputError):
        gate(torch.randn(3, 3, 4))  # [T, G, d] is the wrong layout
    with pytest.raises(InputError):
        LowRankFeatureGate(4, 0)


def test_self_gate_sigmoid_for_one_expert():
    gate = SelfGate(3, 1)
    x = torch.randn(4, 3)
    expected = torch.sigmoid(x @ gate.proj.weight.t() + gate.proj.bias)
    torch.testing.assert_close(gate(x), expected)
    outputs = torch.randn(4, 1, 5)
    torch.testing.assert_close(SelfGate.mix(outputs, gate(x)), outputs[:, 0] * expected)


def test_self_gate_softmax_for_several_experts():
    gate = SelfGate(3, 4)
    x = torch.randn(6, 3)
    weights = gate(x)
    torch.testing.assert_close(weights.sum(-1), torch.ones(6))
    linear = gate.proj.proj
    torch.testing.assert_close(weights, torch.softmax(x @ linear.weight.t() + linear.bias, -1))
    outputs = torch.randn(6, 4, 2)
    torch.testing.assert_close(SelfGate.mix(outputs, weights), (outputs * weights[..., None]).sum(1))
    with pytest.raises(InputError):
        gate(torch.randn(6, 2))
