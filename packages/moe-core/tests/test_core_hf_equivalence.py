"""moe-core layers configured like HF transformers' MoE blocks give the same outputs and gradients."""

import pytest
import torch
from transformers import MixtralConfig, Qwen2MoeConfig
from transformers.models.deepseek_v3.configuration_deepseek_v3 import DeepseekV3Config
from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3TopkRouter
from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock
from transformers.models.qwen2_moe.modeling_qwen2_moe import Qwen2MoeSparseMoeBlock

from moe_zoo.core import MoEConfig, MoELayer, TopKRouter

D, F, E, K, TOKENS = 32, 48, 6, 2, 40


def _init_hf(module: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.2)


def _copy_experts(ours: MoELayer, hf_experts: torch.nn.Module) -> None:
    with torch.no_grad():
        ours.experts.w_in.copy_(hf_experts.gate_up_proj.transpose(1, 2))   # HF [E, 2f, d] -> [E, d, 2f]
        ours.experts.w_out.copy_(hf_experts.down_proj.transpose(1, 2))     # HF [E, d, f] -> [E, f, d]


def _compare(ours: MoELayer, hf: torch.nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    x = torch.randn(2, TOKENS // 2, D, generator=torch.Generator().manual_seed(7))
    x_ours, x_hf = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ours = ours(x_ours).output
    y_hf = hf(x_hf)
    y_hf = y_hf[0] if isinstance(y_hf, tuple) else y_hf
    assert (y_ours - y_hf).abs().max() < 1e-5
    grad = torch.randn_like(y_hf, generator=None)
    y_ours.backward(grad)
    y_hf.backward(grad)
    assert (x_ours.grad - x_hf.grad).abs().max() < 1e-5
    for ours_grad, hf_grad in pairs:
        assert (ours_grad() - hf_grad()).abs().max() < 1e-5


@pytest.mark.parametrize("backend", ["eager", "segmented", "grouped"])
def test_matches_mixtral_sparse_moe_block(backend):
    torch.manual_seed(0)
    hf = MixtralSparseMoeBlock(MixtralConfig(hidden_size=D, intermediate_size=F, num_local_experts=E,
                                             num_experts_per_tok=K)).float()
    _init_hf(hf, 1)
    ours = MoELayer(MoEConfig(d_model=D, d_hidden=F, n_experts=E, top_k=K, backend=backend))
    with torch.no_grad():
        ours.router.weight.copy_(hf.gate.weight)
    _copy_experts(ours, hf.experts)
    _compare(ours, hf, [
        (lambda: ours.router.weight.grad, lambda: hf.gate.weight.grad),
        (lambda: ours.experts.w_in.grad, lambda: hf.experts.gate_up_proj.grad.transpose(1, 2)),
        (lambda: ours.experts.w_out.grad, lambda: hf.experts.down_proj.grad.transpose(1, 2)),
    ])


def test_matches_qwen2_moe_block_with_gated_shared_expert():
    torch.manual_seed(0)
    config = Qwen2MoeConfig(hidden_size=D, moe_intermediate_size=F, shared_expert_intermediate_size=2 * F,
                            num_experts=E, num_experts_per_tok=K, norm_topk_prob=False)
    hf = Qwen2MoeSparseMoeBlock(config).float()
    _init_hf(hf, 2)
    ours = MoELayer(MoEConfig(d_model=D, d_hidden=F, n_experts=E, top_k=K, renormalize=False,
                              n_shared_experts=1, shared_hidden=2 * F, shared_gate=True, backend="segmented"))
    shared = hf.shared_expert
    with torch.no_grad():
        ours.router.weight.copy_(hf.gate.weight)
        ours.shared.ffn.proj_in.weight.copy_(torch.cat([shared.gate_proj.weight, shared.up_proj.weight]))
        ours.shared.ffn.proj_out.weight.copy_(shared.down_proj.weight)
        ours.shared.gate.weight.copy_(hf.shared_expert_gate.weight)
    _copy_experts(ours, hf.experts)
    _compare(ours, hf, [
        (lambda: ours.router.weight.grad, lambda: hf.gate.weight.grad),
        (lambda: ours.experts.w_in.grad, lambda: hf.experts.gate_up_proj.grad.transpose(1, 2)),
        (lambda: ours.shared.gate.weight.grad, lambda: hf.shared_expert_gate.weight.grad),
        (lambda: ours.shared.ffn.proj_out.weight.grad, lambda: shared.down_proj.weight.grad),
    ])


def test_group_limited_sigmoid_router_matches_deepseek_v3():
    config = DeepseekV3Config(hidden_size=D, n_routed_experts=16, num_experts_per_tok=4, n_group=4, topk_group=2,
                              routed_scaling_factor=2.5, norm_topk_prob=True)
    hf = DeepseekV3TopkRouter(config)
    _init_hf(hf, 3)
    ours = TopKRouter(D, 16, 4, score="sigmoid", n_groups=4, topk_groups=2, scale=2.5, balance_bias=True)
    bias = torch.randn(16, generator=torch.Generator().manual_seed(4)) * 0.1
    with torch.no_grad():
        ours.weight.copy_(hf.weight)
        ours.expert_bias.copy_(bias)
        hf.e_score_correction_bias.copy_(bias)
    x = torch.randn(TOKENS, D, generator=torch.Generator().manual_seed(5))
    _, hf_weights, hf_indices = hf(x)
    result = ours(x)
    ours_sorted, order = result.indices.sort(-1)
    hf_sorted, hf_order = hf_indices.sort(-1)
    assert torch.equal(ours_sorted, hf_sorted)
    assert torch.allclose(result.weights.gather(-1, order), hf_weights.gather(-1, hf_order), atol=1e-6)
