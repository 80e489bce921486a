"""GS-MoE parts: shapes, the batched experts against a per-expert reference, gradients, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from moe_zoo.core import InputError
from moe_zoo.vad.losses import urdmu_loss
from moe_zoo.vad.model import ClassExperts, GSMoE, GSMoEConfig, MILConfig, MILRanking

CLASSES = ("a", "b", "c")


def _config(**overrides) -> GSMoEConfig:
    return GSMoEConfig(feature_dim=12, class_names=CLASSES, d_model=16, memory_slots=8, expert_hidden=24,
                       expert_mlp=(8,), gate_dim=8, gate_heads=2, gate_hidden=8, gate_mlp=(8,), dropout=0.0,
                       **overrides)


def test_gsmoe_shapes_and_gate_is_a_distribution():
    torch.manual_seed(0)
    model = GSMoE(_config()).eval()
    out = model(torch.randn(2, 7, 12))
    assert out.scores.shape == (2, 7) and out.coarse.shape == (2, 7)
    assert out.expert_scores.shape == (2, 3, 7) and out.gate_weights.shape == (2, 7, 3)
    assert ((out.scores > 0) & (out.scores < 1)).all()
    torch.testing.assert_close(out.gate_weights.sum(-1), torch.ones(2, 7))


def test_crops_are_averaged_like_the_test_protocol():
    torch.manual_seed(0)
    model = GSMoE(_config()).eval()
    x = torch.randn(2, 5, 6, 12)                                  # [B, crops, T, D]
    out = model(x)
    per_crop = torch.stack([model(x[:, c]).scores for c in range(5)], 1).mean(1)
    torch.testing.assert_close(out.scores, per_crop)
    mil = MILRanking(MILConfig(feature_dim=12, hidden=(8,))).eval()
    torch.testing.assert_close(mil(x), torch.stack([mil(x[:, c]) for c in range(5)], 1).mean(1))


def _reference_expert(experts: ClassExperts, e: int, f: torch.Tensor) -> torch.Tensor:
    """Expert ``e`` alone: h = f + MHSA(LN(f)); h = h + FFN(LN(h)); sigmoid(MLP(h))."""
    d, heads = f.shape[-1], experts.heads

    def ln(x, norm):
        return F.layer_norm(x, (d,)) * norm.weight[e, 0] + norm.bias[e, 0]

    def lin(x, layer):
        return x @ layer.weight[e] + layer.bias[e, 0]

    b, t, _ = f.shape
    q, k, v = lin(ln(f, experts.norm1), experts.qkv).view(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    att = torch.softmax(q @ k.transpose(-1, -2) / (d // heads) ** 0.5, -1) @ v
    h = f + lin(att.transpose(1, 2).reshape(b, t, d), experts.proj)
    bank = experts.ffn
    h = h + F.gelu(ln(h, experts.norm2) @ bank.w_in[e] + bank.b_in[e]) @ bank.w_out[e] + bank.b_out[e]
    for i, layer in enumerate(experts.mlp):
        h = lin(h, layer) if i == len(experts.mlp) - 1 else F.gelu(lin(h, layer))
    return torch.sigmoid(h).squeeze(-1)


def test_batched_experts_equal_one_expert_at_a_time():
    torch.manual_seed(1)
    config = _config()
    experts = ClassExperts(config).eval()
    f = torch.randn(2, 9, config.task_dim)
    out = experts(f)                                              # [B, E, T]
    for e in range(config.n_experts):
        torch.testing.assert_close(out[:, e], _reference_expert(experts, e, f), rtol=1e-4, atol=1e-5)


def test_gradients_reach_every_part():
    torch.manual_seed(2)
    model = GSMoE(_config())
    out = model(torch.randn(4, 8, 12))
    (out.scores.mean() + out.coarse.mean()).backward()
    for name, module in (("encoder", model.encoder), ("experts", model.experts), ("gate", model.gate)):
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name
    # each expert's own weights get a gradient from the gated mixture
    assert (model.experts.qkv.weight.grad.flatten(1).abs().sum(1) > 0).all()


def test_task_encoder_training_forward_and_urdmu_loss():
    torch.manual_seed(3)
    model = GSMoE(_config())
    x = torch.randn(6, 16, 12)                                    # 3 normal then 3 abnormal
    labels = torch.tensor([0.0, 0, 0, 1, 1, 1])
    parts = urdmu_loss(model.encoder.forward_train(x), labels)
    assert set(parts) == {"mil", "memory", "triplet", "kl", "distance", "total"}
    assert all(torch.isfinite(v) for v in parts.values())
    parts["total"].backward()
    assert model.encoder.abnormal_memory.slots.grad.abs().sum() > 0
    assert model.encoder.normal_memory.slots.grad.abs().sum() > 0


def test_single_expert_ablation_has_no_gate():
    model = GSMoE(_config(single_expert=True)).eval()
    out = model(torch.randn(1, 5, 12))
    assert model.gate is None and model.class_names == ("anomaly",)
    assert out.expert_scores.shape == (1, 1, 5)
    torch.testing.assert_close(out.scores, out.expert_scores[:, 0])


def test_bad_feature_shapes_are_clear_errors():
    model = GSMoE(_config())
    with pytest.raises(InputError, match=r"expected snippet features \[B, T, 12\]"):
        model(torch.randn(2, 5, 11))
    with pytest.raises(InputError, match="at least one snippet"):
        model(torch.randn(2, 0, 12))
    with pytest.raises(InputError, match="expected snippet features"):
        MILRanking(MILConfig(feature_dim=12))(torch.randn(5, 12))


def test_default_gate_scores_the_soft_mixture_and_fusion_corrects_it():
    torch.manual_seed(4)
    x = torch.randn(2, 6, 12)
    plain = GSMoE(_config()).eval()
    out = plain(x)
    mixture = (out.gate_weights * out.expert_scores.transpose(1, 2)).sum(-1)
    torch.testing.assert_close(out.scores, mixture)
    assert not hasattr(plain.gate, "cross")
    fused = GSMoE(_config(gate_fusion=True)).eval()
    fused.load_state_dict(plain.state_dict(), strict=False)
    torch.testing.assert_close(fused(x).scores, mixture)        # the correction head starts at zero
    torch.nn.init.normal_(fused.gate.head[-1].weight)
    out = fused(x)
    assert (out.scores - mixture).abs().max() > 1e-3
    out.scores.sum().backward()
    assert fused.gate.cross.task_qk.weight.grad.abs().sum() > 0
