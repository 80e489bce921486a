"""On a CUDA device: every dispatch backend (Triton included) against the eager reference in fp32
and bf16, forward and backward; the MoE layer on CUDA against the same layer on CPU; HF's Mixtral
and Qwen2-MoE blocks against the layer on CUDA. Skipped without CUDA (CI has none) and under
``TRITON_INTERPRET=1`` (the CPU tests' setting); ``make gpu-check`` runs this file with it off."""

import os

import pytest
import torch

from moe_zoo.core import ExpertBank, MoEConfig, MoELayer
from moe_zoo.core.benchmark import Shape, _hf_block
from moe_zoo.core.dispatch import BACKENDS, available_backends, get_expert_ffn, make_plan

pytestmark = pytest.mark.skipif(not torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1",
                                reason="needs CUDA and TRITON_INTERPRET unset (make gpu-check)")
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 3e-2}
# (tokens, d, f, experts, slots): small, the 8-expert and the 64-expert benchmark layouts scaled down
SHAPES = [(37, 64, 32, 5, 1), (512, 128, 256, 8, 2), (1024, 128, 64, 64, 8)]


def _close(got, want, dtype):
    scale = max(1.0, want.abs().max().item())
    return (got.float() - want.float()).abs().max().item() <= TOLERANCE[dtype] * scale


def _run(backend, bank, x, indices, weights, grad):
    bank.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    weights = weights.clone().requires_grad_()
    y = get_expert_ffn(backend)(x, bank, make_plan(indices, weights, bank.n_experts))
    y.backward(grad)
    return [y.detach(), x.grad, weights.grad] + [p.grad for p in bank.parameters()]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("activation,bias", [("swiglu", False), ("gelu", True)])
def test_backends_match_eager_on_cuda(dtype, shape, activation, bias):
    tokens, d, f, experts, slots = shape
    generator = torch.Generator().manual_seed(0)
    bank = ExpertBank(experts, d, f, activation=activation, bias=bias)
    if bias:
        torch.nn.init.normal_(bank.b_in, std=0.1)
        torch.nn.init.normal_(bank.b_out, std=0.1)
    bank = bank.to("cuda", dtype)
    x = torch.randn(tokens, d, generator=generator).to("cuda", dtype)
    indices = torch.randint(0, experts - 1, (tokens, slots), generator=generator).cuda()  # last expert starved
    indices[1, 0] = -1                                                                    # an unused slot
    weights = torch.rand(tokens, slots, generator=generator).to("cuda", dtype)
    grad = torch.randn(tokens, d, generator=generator).to("cuda", dtype)
    backends = available_backends(bank, "cuda", dtype)
    assert "triton" in backends
    reference = _run("eager", bank, x, indices, weights, grad)
    for backend in (b for b in BACKENDS[1:] if b in backends):
        result = _run(backend, bank, x, indices, weights, grad)
        for i, (got, want) in enumerate(zip(result, reference)):
            assert _close(got, want, dtype), f"{backend}: output/grad {i} differs"
        assert result[3][-1].abs().sum() == 0  # the starved expert's weight gradient is exactly zero
        with torch.no_grad():
            inference = get_expert_ffn(backend)(x, bank, make_plan(indices, weights, experts))
        assert _close(inference, reference[0], dtype), f"{backend}: inference path differs"


@pytest.mark.parametrize("config", [dict(top_k=2), dict(top_k=2, capacity_factor=0.5), dict(router="expert_choice"),
                                    dict(top_k=2, n_shared_experts=1, shared_gate=True, n_zero=1)])
def test_layer_on_cuda_matches_cpu(config):
    torch.manual_seed(0)
    cpu = MoELayer(MoEConfig(d_model=64, d_hidden=96, n_experts=8, backend="eager", **config))
    gpu = MoELayer(cpu.config.replace(backend="auto")).cuda()
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(4, 50, 64)
    y_cpu = cpu(x.clone().requires_grad_()).output
    y_gpu = gpu(x.cuda().requires_grad_()).output
    assert gpu.backend_for(x.cuda()) == "triton"
    assert _close(y_gpu.cpu(), y_cpu.detach(), torch.float32)
    y_cpu.square().sum().backward()
    y_gpu.square().sum().backward()
    for (name, p_cpu), p_gpu in zip(cpu.named_parameters(), gpu.parameters()):
        assert _close(p_gpu.grad.cpu(), p_cpu.grad, torch.float32), name


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [Shape(256, 64, 96, 8, 2), Shape(256, 64, 32, 16, 4, shared=1)])
@pytest.mark.parametrize("implementation", ["eager", "grouped_mm"])
def test_hf_blocks_match_the_layer_on_cuda(dtype, shape, implementation):
    torch.manual_seed(0)
    ours = MoELayer(MoEConfig(d_model=shape.d_model, d_hidden=shape.d_hidden, n_experts=shape.n_experts,
                              top_k=shape.top_k, n_shared_experts=shape.shared, shared_gate=bool(shape.shared)))
    hf = _hf_block(shape, ours, implementation).to("cuda", dtype)
    ours = ours.to("cuda", dtype)
    x = torch.randn(shape.tokens, shape.d_model, device="cuda", dtype=dtype)
    x_ours, x_hf = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ours, y_hf = ours(x_ours).output, hf(x_hf[None])
    y_hf = (y_hf[0] if isinstance(y_hf, tuple) else y_hf)[0]
    if dtype == torch.float32:  # in bf16 near-tied router scores may pick different experts
        assert _close(y_ours, y_hf, dtype)
        grad = torch.randn_like(y_ours)
        y_ours.backward(grad)
        y_hf.backward(grad)
        assert _close(x_ours.grad, x_hf.grad, dtype)
    else:
        assert torch.isfinite(y_ours).all() and (y_ours.float() - y_hf.float()).abs().mean() < 0.05 * y_hf.float().abs().mean()
