"""Models: shapes, gradients, HoME's three switches, the hierarchy mask, formulas on hand cases."""

from __future__ import annotations

import pytest
import torch

from moe_zoo.core import InputError, create_model, list_models
from moe_zoo.core.gates import LowRankFeatureGate, SelfGate
from moe_zoo.recsys.experts import ExpertGroup, GateSpec, MLPBank, MultiGateLevel
from moe_zoo.recsys.model import (
    PLE,
    HoME,
    HoMEConfig,
    MMoE,
    MMoEConfig,
    PLEConfig,
    SharedBottom,
    SharedBottomConfig,
)

MODELS = [(SharedBottom, SharedBottomConfig, {}), (MMoE, MMoEConfig, {}), (PLE, PLEConfig, {}),
          (PLE, PLEConfig, {"n_levels": 2}), (HoME, HoMEConfig, {}), (HoME, HoMEConfig, {"hierarchy": False})]


@pytest.mark.parametrize(("cls", "config_cls", "extra"), MODELS)
def test_shapes_and_every_parameter_gets_a_gradient(cls, config_cls, extra, common, batch):
    model = cls(config_cls(**common, **extra))
    out = model(*batch)
    assert out.logits.shape == (16, 3)
    out.logits.pow(2).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    # B = 0 at init (every feature gate starts at exactly 1), so A's first gradient is zero by design
    assert not [n for n in missing if not n.endswith("feature_gate.a")], f"no gradient reaches {missing}"


@pytest.mark.parametrize(("cls", "config_cls", "extra"), MODELS)
def test_config_round_trips_and_registry_builds(cls, config_cls, extra, common):
    config = config_cls(**common, **extra)
    assert config_cls.from_json(config.to_json()) == config
    name = {SharedBottom: "recsys-shared-bottom", MMoE: "recsys-mmoe", PLE: "recsys-ple", HoME: "recsys-home"}[cls]
    model = create_model(name, **config.to_dict())
    assert isinstance(model, cls) and model.config == config


def test_registry_lists_the_four_models():
    assert {"recsys-home", "recsys-mmoe", "recsys-ple", "recsys-shared-bottom"} <= set(list_models("recsys-*"))


def _count(model, kind) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def test_each_home_fix_switches_its_part(common):
    full = HoME(HoMEConfig(**common))
    assert _count(full, LowRankFeatureGate) == 2 and _count(full, SelfGate) > 0
    assert _count(full, torch.nn.BatchNorm1d) > 0 and full.meta is not None
    assert all(b.activation == "swish" for b in (full.meta.bank, full.task_level.bank))
    no_norm = HoME(HoMEConfig(**common, expert_norm=False, swish=False))
    assert _count(no_norm, torch.nn.BatchNorm1d) == 0 and no_norm.task_level.bank.activation == "relu"
    assert _count(HoME(HoMEConfig(**common, feature_gate=False)), LowRankFeatureGate) == 0
    assert _count(HoME(HoMEConfig(**common, self_gate=False)), SelfGate) == 0
    flat = HoME(HoMEConfig(**common, hierarchy=False))
    assert flat.meta is None
    names = [g.name for g in flat.task_level.groups]
    assert names == ["shared", "a", "b", "c"] and flat.task_level.groups[0].size == 1 + 2  # + C category experts


def test_switches_change_the_function(common, batch):
    outputs = []
    for extra in ({}, {"expert_norm": False}, {"swish": False}, {"feature_gate": False}, {"self_gate": False}):
        torch.manual_seed(0)
        model = HoME(HoMEConfig(**common, **extra)).train()  # batch statistics: a fresh BN is not identity
        with torch.no_grad():  # feature gates start at exactly 1: perturb B so they act
            for m in model.modules():
                if isinstance(m, LowRankFeatureGate):
                    m.b.normal_(0, 0.5)
        outputs.append(model(*batch).logits)
    for i in range(1, len(outputs)):
        assert not torch.allclose(outputs[0], outputs[i]), f"switch {i} changed nothing"


def test_hierarchy_mask_keeps_other_categories_experts_out(common, batch):
    """Task a (category 0) must not reach category 1's task-level experts nor b's and c's own experts."""
    model = HoME(HoMEConfig(**common))
    out = model(*batch)
    level = model.task_level
    labels = level.expert_labels()
    grads = torch.autograd.grad(out.logits[:, 0].sum(), level.bank.weights[0])[0]  # [E, d_in, h]
    reached = {lab for lab, g in zip(labels, grads) if g.abs().sum() > 0}
    assert reached == {"shared/0", "category0/0", "a/0"}
    meta_labels = model.meta.expert_labels()
    meta_grads = torch.autograd.grad(model(*batch).logits[:, 0].sum(), model.meta.bank.weights[0])[0]
    meta_reached = {lab for lab, g in zip(meta_labels, meta_grads) if g.abs().sum() > 0}
    # category 0's representation reads shared + category0 meta experts; the shared one feeds the shared expert
    assert {"shared_meta/0", "shared_meta/1", "category0_meta/0"} <= meta_reached


def test_mlp_bank_matches_a_loop_over_experts():
    torch.manual_seed(0)
    bank = MLPBank(3, 5, (4, 2), activation="swish", norm=False)
    x = torch.randn(7, 5)
    out = bank(x)
    for e in range(3):
        h = torch.nn.functional.silu(x @ bank.weights[0][e] + bank.biases[0][e])
        ref = torch.nn.functional.silu(h @ bank.weights[1][e] + bank.biases[1][e])
        torch.testing.assert_close(out[:, e], ref)
    per_expert = bank(x.expand(3, -1, -1))  # one input per expert gives the same when all inputs agree
    torch.testing.assert_close(per_expert, out)


def test_expert_norm_normalises_each_expert_over_the_batch():
    torch.manual_seed(0)
    bank = MLPBank(2, 4, (6,), activation="none", norm=True).train()
    with torch.no_grad():
        bank.weights[0][1] *= 50.0  # expert 1 on a very different scale
    y = bank(torch.randn(256, 4))
    torch.testing.assert_close(y.mean(0), torch.zeros(2, 6), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(0, unbiased=False), torch.ones(2, 6), atol=1e-3, rtol=0)


def test_level_output_is_gate_mixture_plus_self_gate_by_hand():
    """y_g = sum_{e in S_g} softmax(W x)_e E_e(x) + sigmoid(w x + b) E_own(x) on a 2-expert level."""
    torch.manual_seed(0)
    level = MultiGateLevel(3, [ExpertGroup("shared", 1, 0), ExpertGroup("t", 1, 0)],
                           [GateSpec("t", 0, (0, 1), (1,))], (4,), activation="relu", self_gate=True)
    x = torch.randn(5, 3)
    out = level([x])
    experts = torch.relu(torch.einsum("td,edh->teh", x, level.bank.weights[0]) + level.bank.biases[0].squeeze(1))
    gate = level.gates[0].proj
    w = torch.softmax(x @ gate.weight.T + gate.bias, -1)
    s = torch.sigmoid(level.self_gates["t"].proj(x))
    expected = w[:, :1] * experts[:, 0] + w[:, 1:] * experts[:, 1] + s * experts[:, 1]
    torch.testing.assert_close(out.outputs[0], expected)
    torch.testing.assert_close(out.gate_weights["t"], w)


def test_feature_gate_starts_as_identity(common, batch):
    torch.manual_seed(0)
    with_gate = HoME(HoMEConfig(**common)).eval()
    torch.manual_seed(0)
    without = HoME(HoMEConfig(**common, feature_gate=False)).eval()
    without.load_state_dict({k: v for k, v in with_gate.state_dict().items() if "feature_gate" not in k})
    torch.testing.assert_close(with_gate(*batch).logits, without(*batch).logits)


def test_bad_inputs_raise_clear_errors(common, batch):
    model = MMoE(MMoEConfig(**common))
    with pytest.raises(InputError, match="categorical"):
        model(batch[0][:, :1], batch[1])
    with pytest.raises(InputError, match="vocabulary"):
        model(batch[0] + 10, batch[1])
    with pytest.raises(InputError, match="numeric"):
        model(batch[0], batch[1][:, :2])
    with pytest.raises(InputError, match="task_kinds"):
        MMoEConfig(**{**common, "task_kinds": ("binary", "binary", "ranking")})
    with pytest.raises(InputError, match="task_groups"):
        HoMEConfig(**{**common, "task_groups": (0, 2, 2)})
