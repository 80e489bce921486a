"""GateSnapshot evaluates a SoftGate's eval-mode rule in NumPy and follows its updates."""

import numpy as np
import pytest
import torch

from moe_zoo.core import InputError, SoftGate
from moe_zoo.core.gate_snapshot import GateSnapshot


@pytest.mark.parametrize("hidden", [(), 16, (32, 8)])
def test_snapshot_matches_torch_gate_in_eval_mode(hidden):
    torch.manual_seed(0)
    gate = SoftGate(5, 4, hidden=hidden, dropout=0.3, temperature=0.8).eval()
    snap = GateSnapshot(gate)
    x = torch.randn(7, 5)
    with torch.no_grad():
        expected = gate(x)
    np.testing.assert_allclose(snap.logits(x.numpy()), expected.logits.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(snap.weights(x.numpy()), expected.weights.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(snap.weights(x[0].numpy()), expected.weights[0].numpy(), rtol=1e-5, atol=1e-6)
    assert snap.weights(x.numpy()).sum(axis=1) == pytest.approx(np.ones(7), abs=1e-6)


def test_refresh_follows_an_optimiser_step():
    torch.manual_seed(1)
    gate = SoftGate(3, 2, hidden=8)
    snap = GateSnapshot(gate, dtype=np.float64)
    x = torch.randn(4, 3)
    before = snap.weights(x.numpy())
    optimizer = torch.optim.SGD(gate.parameters(), lr=1.0)
    gate(x).logits[:, 0].sum().backward()
    optimizer.step()
    np.testing.assert_allclose(snap.weights(x.numpy()), before)  # a snapshot until refreshed
    snap.refresh()
    with torch.no_grad():
        np.testing.assert_allclose(snap.weights(x.numpy()), gate(x).weights.double().numpy(), rtol=1e-5)
    assert not np.allclose(snap.weights(x.numpy()), before)


def test_snapshot_rejects_bad_input():
    snap = GateSnapshot(SoftGate(3, 2))
    with pytest.raises(InputError, match=r"\[3\]"):
        snap.weights(np.zeros(4))
    with pytest.raises(InputError):
        GateSnapshot(torch.nn.Linear(3, 2))


@pytest.mark.parametrize("hidden, bias", [((16, 8), True), ((), False)])
def test_folded_standardisation_equals_standardising_first(hidden, bias):
    torch.manual_seed(2)
    gate = SoftGate(4, 3, hidden=hidden, temperature=0.5, bias=bias).eval()
    shift, scale = np.array([1.0, -2.0, 0.5, 10.0]), np.array([0.5, 2.0, 1.0, 0.01])
    snap = GateSnapshot(gate, dtype=np.float64)
    snap.refresh(shift, scale)
    x = np.random.default_rng(0).normal(size=(6, 4)) * 20
    with torch.no_grad():
        expected = gate(torch.from_numpy((x - shift) * scale).float()).weights.double().numpy()
    np.testing.assert_allclose(snap.weights(x), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match=r"shape \[4\]"):
        snap.refresh(shift[:3], scale)


def test_weights_from_a_subset_of_logits_renormalise_the_gate():
    torch.manual_seed(3)
    gate = SoftGate(3, 5, hidden=8, temperature=0.7).eval()
    snap = GateSnapshot(gate, dtype=np.float64)
    x = np.random.default_rng(1).normal(size=3)
    full = snap.weights(x)
    np.testing.assert_allclose(snap.weights_from_logits(snap.logits(x)[:3]), full[:3] / full[:3].sum())
