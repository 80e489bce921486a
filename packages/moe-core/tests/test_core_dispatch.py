"""Every dispatch backend gives the eager reference's outputs and gradients."""

import pytest
import torch

from moe_zoo.core import ExpertBank, InputError, MoEConfig, MoELayer
from moe_zoo.core.dispatch import BACKENDS, available_backends, get_expert_ffn, make_plan

TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 3e-2}


def _routing(tokens, slots, experts, seed, starve=True):
    generator = torch.Generator().manual_seed(seed)
    high = experts - 1 if starve else experts  # the last expert receives no tokens
    indices = torch.randint(0, high, (tokens, slots), generator=generator)
    weights = torch.rand(tokens, slots, generator=generator)
    return indices, weights


def _assert_matches(got, want, dtype, backend):
    """``got`` is within the dtype's tolerance of ``want``, relative to ``want``'s largest entry."""
    scale = max(1.0, want.abs().max().item())
    assert (got - want).abs().max().item() <= TOLERANCE[dtype] * scale, backend


def _run(backend, bank, x, indices, weights, dtype):
    bank = bank.to(dtype)
    bank.zero_grad(set_to_none=True)
    x = x.to(dtype).clone().requires_grad_()
    weights = weights.clone().requires_grad_()
    y = get_expert_ffn(backend)(x, bank, make_plan(indices, weights, bank.n_experts))
    y.backward(torch.linspace(-1, 1, y.numel()).view_as(y).to(dtype))
    grads = [x.grad, weights.grad] + [p.grad for p in bank.parameters()]
    return [y.detach().float()] + [g.float() for g in grads]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("activation,bias", [("swiglu", False), ("gelu", True)])
@pytest.mark.parametrize("slots", [1, 3])
def test_backends_match_reference(dtype, activation, bias, slots):
    torch.manual_seed(0)
    bank = ExpertBank(5, 16, 8, activation=activation, bias=bias)
    if bias:
        torch.nn.init.normal_(bank.b_in)
        torch.nn.init.normal_(bank.b_out)
    x = torch.randn(11, 16)
    indices, weights = _routing(11, slots, 5, seed=1)
    indices[2, 0] = -1  # an unused slot
    reference = _run("eager", bank, x, indices, weights, dtype)
    assert reference[3].abs().sum() > 0  # [y, dx, dweights, dw_in, dw_out, ...]
    for backend in BACKENDS[1:]:
        if backend not in available_backends(bank, "cpu", dtype):
            pytest.fail(f"backend {backend} unavailable in the test environment")
        result = _run(backend, bank, x, indices, weights, dtype)
        for got, want in zip(result, reference):
            _assert_matches(got, want, dtype, backend)
        # the starved expert gets exactly zero weight gradient
        assert result[3][-1].abs().sum() == 0 and result[4][-1].abs().sum() == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("activation,bias", [("swiglu", False), ("gelu", True)])
@pytest.mark.parametrize("unused_slot", [False, True])
def test_inference_outputs_match_reference(dtype, activation, bias, unused_slot):
    """Under no_grad the backends take their inference paths (in-place activations, nothing
    kept for a backward); they must still match the eager reference."""
    torch.manual_seed(0)
    bank = ExpertBank(5, 16, 8, activation=activation, bias=bias).to(dtype)
    if bias:
        torch.nn.init.normal_(bank.b_in)
        torch.nn.init.normal_(bank.b_out)
    x = torch.randn(11, 16).to(dtype)
    indices, weights = _routing(11, 3, 5, seed=1)
    if unused_slot:
        indices[2] = -1  # a token with no expert at all
        indices[4, 1] = 7
    with torch.no_grad():
        want = get_expert_ffn("eager")(x, bank, make_plan(indices, weights, 5)).float()
        for backend in BACKENDS[1:]:
            got = get_expert_ffn(backend)(x, bank, make_plan(indices, weights, 5)).float()
            _assert_matches(got, want, dtype, backend)
    if unused_slot:
        assert want[2].abs().sum() == 0


def test_layer_backends_agree_with_capacity_dropping():
    torch.manual_seed(0)
    outputs = []
    for backend in BACKENDS:
        torch.manual_seed(3)
        layer = MoELayer(MoEConfig(d_model=16, d_hidden=8, n_experts=4, top_k=2, capacity_factor=0.5,
                                   backend=backend))
        outputs.append(layer(torch.randn(24, 16, generator=torch.Generator().manual_seed(4))))
    dropped = (outputs[0].routing.indices < 0).sum()
    assert dropped > 0
    for out in outputs[1:]:
        assert torch.allclose(out.output, outputs[0].output, atol=1e-5)


def test_unknown_and_unavailable_backends_are_clear_errors(monkeypatch):
    with pytest.raises(InputError, match="unknown dispatch backend"):
        MoEConfig(d_model=8, d_hidden=8, n_experts=2, backend="fast")
    with pytest.raises(InputError, match="unknown dispatch backend"):
        get_expert_ffn("fast")
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(InputError, match="triton needs a CUDA device"):
        MoELayer(MoEConfig(d_model=8, d_hidden=8, n_experts=2, backend="triton"))(torch.randn(3, 8))
    with pytest.raises(InputError, match="divisible"):
        MoELayer(MoEConfig(d_model=6, d_hidden=8, n_experts=2, backend="grouped"))(torch.randn(3, 6))


def test_auto_backend_is_segmented_on_cpu():
    layer = MoELayer(MoEConfig(d_model=8, d_hidden=8, n_experts=2))
    assert layer.backend_for(torch.randn(2, 8)) == "segmented"
