"""MoE layer features: shapes, gradients, shared and zero-computation experts, compute skipping."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import moe_zoo.core.layer as layer_module
from moe_zoo.core import (
    ExpertBank,
    HeterogeneousExperts,
    InputError,
    MoEConfig,
    MoELayer,
    MoETransformer,
    MoETransformerConfig,
    create_model,
)


def test_layer_shapes_gradients_and_losses():
    torch.manual_seed(0)
    layer = MoELayer(MoEConfig(d_model=16, d_hidden=24, n_experts=4, top_k=2, n_shared_experts=1))
    x = torch.randn(3, 5, 16, requires_grad=True)
    out = layer(x)
    assert out.output.shape == x.shape
    assert set(out.losses) == {"balance", "z"}
    (out.output.square().mean() + out.aux_loss(0.01, 0.001)).backward()
    for name, param in layer.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    with pytest.raises(InputError, match="last dimension"):
        layer(torch.randn(2, 15))


def test_config_round_trips_through_json():
    config = MoEConfig(d_model=8, d_hidden=16, n_experts=4, always_on=(2, 3), router="topp", max_k=2)
    assert MoEConfig.from_json(config.to_json()) == config
    with pytest.raises(InputError, match="did you mean 'top_k'"):
        MoEConfig.from_dict({**config.to_dict(), "topk": 2})
    with pytest.raises(InputError, match="router must be"):
        MoEConfig(d_model=8, d_hidden=8, n_experts=2, router="random")


def test_copy_and_zero_experts_do_what_they_say():
    layer = MoELayer(MoEConfig(d_model=8, d_hidden=8, n_experts=2, top_k=1, n_zero=1, n_copy=1, renormalize=False))
    x = torch.randn(6, 8)
    with torch.no_grad():
        layer.router.weight.zero_()
        layer.router.weight[3] = 10 * x.mean(0)  # make the copy expert (id 3) win
    x_copy = x.mean(0, keepdim=True).repeat(4, 1)
    out = layer(x_copy)
    assert (out.routing.indices == 3).all()
    assert torch.allclose(out.output, x_copy * out.routing.weights)
    with torch.no_grad():
        layer.router.weight[3] = 0
        layer.router.weight[2] = 10 * x.mean(0)  # zero expert
    out = layer(x_copy)
    assert (out.routing.indices == 2).all() and torch.equal(out.output, torch.zeros_like(x_copy))


def test_null_experts_skip_compute_rows_and_flops(monkeypatch):
    torch.manual_seed(0)
    d, f, n_ffn = 16, 32, 4
    layer = MoELayer(MoEConfig(d_model=d, d_hidden=f, n_experts=n_ffn, router="topp", top_p=0.6, n_zero=4))
    with torch.no_grad():
        layer.router.weight[n_ffn:] *= 4.0  # null experts take a good share of the probability
    rows_seen = []
    original = layer_module.expert_ffn

    def spy(x, bank, plan, backend):
        rows_seen.append(plan.num_assignments)
        return original(x, bank, plan, backend)

    monkeypatch.setattr(layer_module, "expert_ffn", spy)
    x = torch.randn(64, d)
    with FlopCounterMode(display=False) as counter:
        out = layer(x)
    ffn_slots = int(((out.routing.indices >= 0) & (out.routing.indices < n_ffn)).sum())
    null_slots = int((out.routing.indices >= n_ffn).sum())
    assert null_slots > 0 and rows_seen == [ffn_slots]
    router_flops = 2 * 64 * d * (n_ffn + 4)
    bank_flops = 2 * ffn_slots * d * (2 * f) + 2 * ffn_slots * f * d
    assert counter.get_total_flops() == router_flops + bank_flops


def test_top_p_layer_uses_between_one_and_cap_experts():
    layer = MoELayer(MoEConfig(d_model=16, d_hidden=8, n_experts=6, router="topp", top_p=0.5, max_k=3))
    per_token = layer(torch.randn(100, 16)).routing.experts_per_token
    assert per_token.min() >= 1 and per_token.max() <= 3


def test_heterogeneous_experts_follow_the_same_combine():
    torch.manual_seed(0)
    bank = ExpertBank(3, 8, 12)
    modules = []
    for e in range(3):
        linear_in, linear_out = torch.nn.Linear(8, 24, bias=False), torch.nn.Linear(12, 8, bias=False)
        with torch.no_grad():
            linear_in.weight.copy_(bank.w_in[e].t())
            linear_out.weight.copy_(bank.w_out[e].t())
        modules.append(torch.nn.Sequential(linear_in, _SwiGLU(), linear_out))
    experts = HeterogeneousExperts(modules)
    x = torch.randn(10, 8)
    token = torch.arange(10).repeat_interleave(2)
    expert = torch.randint(0, 3, (20,))
    weight = torch.rand(20)
    expected = torch.zeros(10, 8).index_add(0, token, torch.stack(
        [bank.expert_forward(int(e), x[t:t + 1])[0] * w for t, e, w in zip(token, expert, weight)]))
    assert torch.allclose(experts(x, token, expert, weight), expected, atol=1e-6)


class _SwiGLU(torch.nn.Module):
    def forward(self, h):
        gate, up = h.chunk(2, -1)
        return torch.nn.functional.silu(gate) * up


def test_transformer_stack_trains_and_masks_padding():
    torch.manual_seed(0)
    config = MoETransformerConfig(d_model=16, n_heads=2, n_layers=2, moe_every=2,
                                  moe=MoEConfig(d_model=16, d_hidden=16, n_experts=4))
    model = MoETransformer(config)
    x = torch.randn(2, 6, 16)
    padding = torch.zeros(2, 6, dtype=torch.bool)
    padding[1, 4:] = True
    out = model(x, padding)
    assert out.hidden.shape == x.shape and len(out.moe_outputs) == 1
    changed = x.clone()
    changed[1, 4:] += 100.0  # padded positions must not influence the others
    assert torch.allclose(model(changed, padding).hidden[1, :4], out.hidden[1, :4], atol=1e-5)
    (out.hidden.sum() + out.aux_loss()).backward()
    assert MoETransformerConfig.from_json(config.to_json()) == config


def _naive_moe(layer, x):
    """``y_t = sum_slots w * E_id(x_t) (+ shared(x_t))`` token by token from the layer's routing and raw
    weights: FFN experts as ``act(x W_gate) * (x W_up) W_out``, zero = 0, copy = x, constant =
    ``a x + b v`` with its gate; the reference the presets are checked against."""
    routing = layer.route(x)
    cfg, bank = layer.config, layer.experts
    act = {"swiglu": F.silu, "geglu": F.gelu, "relu": F.relu, "gelu": F.gelu, "silu": F.silu}[cfg.activation]
    rows = []
    for t in range(x.shape[0]):
        y = torch.zeros(cfg.d_model)
        for e, w in zip(routing.indices[t].tolist(), routing.weights[t]):
            if e < 0:
                continue
            if e < cfg.n_experts:
                h = x[t] @ bank.w_in[e]
                gate, up = h.chunk(2) if cfg.activation in ("swiglu", "geglu") else (h, None)
                y = y + w * ((act(gate) * up if up is not None else act(gate)) @ bank.w_out[e])
            elif e < cfg.n_experts + cfg.n_zero:
                continue
            elif e < cfg.n_experts + cfg.n_zero + cfg.n_copy:
                y = y + w * x[t]
            else:
                c = e - cfg.n_experts - cfg.n_zero - cfg.n_copy
                zc = layer.zero_compute
                a, b = zc.const_gate(x[t]).view(zc.n_constant, 2).softmax(-1)[c]
                y = y + w * (a * x[t] + b * zc.const_value[c])
        rows.append(y)
    out = torch.stack(rows)
    return (out + layer.shared(x) if layer.shared is not None else out), routing


# preset -> property of its routing that the preset's recipe fixes (T = 24 tokens)
PRESET_RULES = {
    "mixtral-moe": lambda r, c: (r.indices >= 0).sum(1).eq(2).all() and torch.allclose(r.weights.sum(1), torch.ones(24)),
    "qwen2-moe": lambda r, c: (r.indices >= 0).sum(1).eq(4).all()
        and torch.allclose(r.weights, r.probs.gather(1, r.indices)) and (r.weights.sum(1) < 1).all(),
    "deepseek-v3-moe": lambda r, c: (r.indices >= 0).sum(1).eq(8).all()
        and torch.allclose(r.weights.sum(1), torch.full((24,), 2.5))
        and ((r.indices // 8)[:, :, None] == torch.arange(8)).any(1).sum(1).le(4).all(),
    "switch-moe": lambda r, c: (r.indices >= 0).sum(1).le(1).all()
        and r.expert_counts[:8].le(int(1.25 * 3)).all(),
    "moepp-moe": lambda r, c: (r.indices >= 0).sum(1).eq(2).all() and r.indices.max() < 8,
    "unimoe-audio-moe": lambda r, c: ((r.indices == 8).any(1) & (r.indices == 9).any(1)).all(),
    "expert-choice-moe": lambda r, c: r.expert_counts.eq(6).all(),    # C = ceil(24 * 2 / 8)
    "evomoe-dts-moe": lambda r, c: (r.indices >= 0).sum(1).eq(1).all(),  # top-1 in eval
}


@pytest.mark.parametrize("name", list(PRESET_RULES))
def test_presets_compute_their_recipe(name):
    """Each preset's output equals the token-by-token reference of its own routing (FFN, shared,
    zero-computation experts) and its routing has the recipe's structure."""
    torch.manual_seed(0)
    model = create_model(name, d_model=32, d_hidden=16).eval()
    with torch.no_grad():
        for p in model.parameters():  # no zero-initialised part may hide a wrong term
            p.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(24, 32)
    with torch.no_grad():
        want, routing = _naive_moe(model, x)
        got = model(x, routing=routing).output
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert PRESET_RULES[name](routing, model.config), name


def test_hash_preset_needs_token_ids():
    model = create_model("hash-moe", d_model=32, d_hidden=16, hash_vocab_size=50)
    out = model(torch.randn(20, 32), token_ids=torch.arange(20))
    assert out.routing.experts_per_token.eq(1).all()
