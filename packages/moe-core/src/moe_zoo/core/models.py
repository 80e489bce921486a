"""Preset MoE layers in the zoo registry, configured as the published systems route.

``create_model("mixtral-moe", d_model=256, d_hidden=512)`` gives a Mixtral-style layer of any
size; the presets fix the routing recipe, the overrides fix the size.
"""

from __future__ import annotations

from moe_zoo.core.layer import MoEConfig, MoELayer
from moe_zoo.core.registry import register_model

_SIZE = {"d_model": 512, "d_hidden": 1024}

PRESETS: dict[str, tuple[str, MoEConfig]] = {
    "switch-moe": ("Switch Transformer: top-1 softmax routing, capacity factor 1.25",
                   MoEConfig(**_SIZE, n_experts=8, top_k=1, activation="relu", capacity_factor=1.25)),
    "mixtral-moe": ("Mixtral: softmax, top-2 of 8, renormalised, SwiGLU experts",
                    MoEConfig(**_SIZE, n_experts=8, top_k=2)),
    "qwen2-moe": ("Qwen2-MoE: top-4 of 60 without renormalisation, sigmoid-gated shared expert",
                  MoEConfig(**_SIZE, n_experts=60, top_k=4, renormalize=False, n_shared_experts=1,
                            shared_hidden=4 * _SIZE["d_hidden"], shared_gate=True)),
    "deepseek-v3-moe": ("DeepSeek-V3: sigmoid scores, group-limited top-8 of 64, aux-loss-free bias, 1 shared expert",
                        MoEConfig(**_SIZE, n_experts=64, top_k=8, score="sigmoid", n_groups=8, topk_groups=4,
                                  routed_scale=2.5, balance_bias=True, n_shared_experts=1)),
    "moepp-moe": ("MoE++: 4 FFN + zero, copy and 2 constant experts, top-2",
                  MoEConfig(**_SIZE, n_experts=4, top_k=2, n_zero=1, n_copy=1, n_constant=2)),
    "unimoe-audio-moe": ("UniMoE-Audio: top-p 0.7 over 8 routed + 1 null expert, 2 shared experts in the router",
                         MoEConfig(**_SIZE, n_experts=10, router="topp", top_p=0.7, n_zero=1, always_on=(8, 9))),
    "expert-choice-moe": ("Expert choice: each of 8 experts takes its top tokens, capacity factor 2",
                          MoEConfig(**_SIZE, n_experts=8, router="expert_choice", expert_capacity=2.0)),
    "hash-moe": ("Hash layer: balanced fixed token-id hash over 8 experts",
                 MoEConfig(**_SIZE, n_experts=8, router="hash", hash_vocab_size=32_000)),
    "evomoe-dts-moe": ("EvoMoE: dense-to-sparse Gumbel gate over 8 experts",
                       MoEConfig(**_SIZE, n_experts=8, router="dense_to_sparse")),
}

for _name, (_summary, _config) in PRESETS.items():
    register_model(_name, config=_config, summary=_summary)(MoELayer)
