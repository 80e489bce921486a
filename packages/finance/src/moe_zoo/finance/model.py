"""MIGA (Yu et al., 2024, arXiv 2410.02241) and the single-model forecasters, registered in the zoo.

MIGA for one trading day's cross-section ``x in R^{N x T x F}`` (N stocks, T days, F factors):

1. backbone (shared): ``h_i = Enc(x_i) in R^H`` (MIGA-Conv: causal TCN; MIGA-GRU: 2-layer GRU);
2. router (moe-core ``TopKRouter``): ``p_i = softmax(W_r h_i) in R^E``, ``S_i = TopK(p_i, k)``,
   ``g_{i,e} = p_{i,e} / sum_{j in S_i} p_{i,j}`` for ``e in S_i`` (0 otherwise);
3. style experts (moe-core ``ExpertBank``, every expert on every stock):
   ``z_{i,e} = FFN_e(P h_i) in R^{d_e}`` (``P``: shared ``H -> d_e`` projection, ``FFN_e(u) =
   W2_e GELU(W1_e u + b1_e) + b2_e``); the ``E = G * M`` experts form ``G`` groups of ``M``;
4. inner group attention, per group ``g`` with its own weights:
   ``Z_g = [z_{i,(g,1)}; ...; z_{i,(g,M)}] in R^{M x d_e}``,
   ``Z'_g = Z_g + MHA_g(LN(Z_g))``, ``MHA(U) = Concat_heads softmax(U W_Q (U W_K)^T / sqrt(d_h)) U W_V  W_O``;
5. each expert's prediction ``y_{i,e} = w^T z'_{i,e} + b`` and the mixture
   ``s_i = sum_{e in S_i} g_{i,e} y_{i,e}``.

Loss (``losses.miga_loss``): ``L = -IC(s, y) + lambda * E * sum_e f_e P_e`` with ``lambda = 2e-3``.
Defaults follow the paper as reported secondarily (63 experts = 7 groups x 9, top-8, hidden 64);
see the README for what is confirmed and what was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moe_zoo.core import (
    Config,
    ExpertBank,
    InputError,
    RoutingResult,
    TopKRouter,
    load_balancing_loss,
    register_model,
)
from moe_zoo.finance.dataset import DataConfig
from moe_zoo.finance.encoders import ENCODERS, build_encoder

WEIGHTS = "moe_zoo.finance:weights/miga-conv-sp500.safetensors"


@dataclass
class ForecastOutput:
    """``score [N]`` per stock, ``aux_loss`` (the balance loss; 0 for single models), ``routing``."""

    score: Tensor
    aux_loss: Tensor
    routing: RoutingResult | None = None


def _check_input(x: Tensor, data: DataConfig, who: str, check_values: bool) -> None:
    """Shape always; NaN/inf at inference (training batches come from the pipeline, already filled)."""
    if x.dim() != 3 or x.shape[-1] != data.d_feat:
        raise InputError(f"{who}: expected input [stocks, days, {data.d_feat}] ({data.feature_set}), "
                         f"got shape {tuple(x.shape)}")
    if check_values and not torch.isfinite(x).all():
        raise InputError(f"{who}: input has NaN or inf values (normalise and fill factors first)")


@dataclass(frozen=True)
class MIGAConfig(Config):
    """MIGA hyper-parameters (see the module docstring for the formulas)."""

    data: DataConfig = field(default_factory=DataConfig)
    encoder: str = "conv"
    hidden: int = 64
    encoder_layers: int = 3
    n_groups: int = 7
    experts_per_group: int = 9
    top_k: int = 8
    expert_dim: int = 32
    expert_hidden: int = 32
    n_heads: int = 2
    dropout: float = 0.0
    balance_weight: float = 2e-3

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS[:4]:
            raise InputError(f"MIGA encoder must be one of {ENCODERS[:4]}, got {self.encoder!r}")
        if not 1 <= self.top_k <= self.n_experts:
            raise InputError(f"top_k must be in [1, {self.n_experts}], got {self.top_k}")
        if self.expert_dim % self.n_heads:
            raise InputError(f"expert_dim {self.expert_dim} must be divisible by n_heads {self.n_heads}")

    @property
    def n_experts(self) -> int:
        return self.n_groups * self.experts_per_group


class InnerGroupAttention(nn.Module):
    """Multi-head self-attention among the experts of each group (own weights per group).

    ``Z'_g = Z_g + MHA_g(LN(Z_g))`` for ``Z_g in R^{M x d}`` (one row per expert of group ``g``),
    for every stock. Works in the expert-major layout ``[G, M, N, d]`` the expert bank produces, so
    the projections are one batched matmul per group set and attention is one
    ``scaled_dot_product_attention`` call (no loop over groups, experts or stocks).
    """

    def __init__(self, n_groups: int, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm = nn.LayerNorm(d_model)
        bound = d_model**-0.5
        self.w_qkv = nn.Parameter(torch.empty(n_groups, d_model, 3 * d_model).uniform_(-bound, bound))
        self.b_qkv = nn.Parameter(torch.zeros(n_groups, 1, 3 * d_model))
        self.w_out = nn.Parameter(torch.empty(n_groups, d_model, d_model).uniform_(-bound, bound))
        self.b_out = nn.Parameter(torch.zeros(n_groups, 1, d_model))

    def forward(self, z: Tensor) -> Tensor:
        """``z [G, M, N, d] -> [G, M, N, d]``."""
        g, m, n, d = z.shape
        h, dh = self.n_heads, d // self.n_heads
        qkv = torch.baddbmm(self.b_qkv, self.norm(z).reshape(g, m * n, d), self.w_qkv)     # [G, M*N, 3d]
        # [G, M, N, h, dh] -> [G*N, h, M, dh]: 4-D inputs take PyTorch's fused CPU attention kernel
        q, k, v = (t.reshape(g, m, n, h, dh).permute(0, 2, 3, 1, 4).reshape(g * n, h, m, dh) for t in qkv.chunk(3, -1))
        mixed = F.scaled_dot_product_attention(q, k, v).reshape(g, n, h, m, dh).permute(0, 3, 1, 2, 4)
        mixed = mixed.reshape(g, m * n, d)
        return z + torch.baddbmm(self.b_out, mixed, self.w_out).reshape(g, m, n, d)


class MIGA(nn.Module):
    """Mixture of style experts with inner group attention (MIGA) for cross-sectional stock scores."""

    def __init__(self, config: MIGAConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or MIGAConfig()
        self.encoder, width = build_encoder(config.encoder, config.data.d_feat, config.hidden,
                                            layers=config.encoder_layers, dropout=config.dropout)
        self.router = TopKRouter(width, config.n_experts, config.top_k, score="softmax", renormalize=True)
        self.expert_input = nn.Linear(width, config.expert_dim)
        self.experts = ExpertBank(config.n_experts, config.expert_dim, config.expert_hidden, activation="gelu",
                                  bias=True)
        self.group_attention = InnerGroupAttention(config.n_groups, config.expert_dim, config.n_heads)
        self.expert_head = nn.Linear(config.expert_dim, 1)

    def expert_predictions(self, h: Tensor) -> Tensor:
        """``[N, H] -> [N, E]``: every expert's prediction ``y_{i,e}`` after inner group attention."""
        c = self.config
        z = self.experts.forward_all(self.expert_input(h)).transpose(0, 1)       # [E, N, d] (contiguous)
        z = self.group_attention(z.reshape(c.n_groups, c.experts_per_group, h.shape[0], -1))
        return self.expert_head(z).reshape(c.n_experts, h.shape[0]).transpose(0, 1)

    def forward(self, x: Tensor) -> ForecastOutput:
        _check_input(x, self.config.data, "MIGA", not self.training)
        h = self.encoder(x)
        routing = self.router(h)
        y = self.expert_predictions(h)
        score = (routing.weights.to(y.dtype) * y.gather(1, routing.indices)).sum(-1)
        aux = load_balancing_loss(routing) if self.training else y.new_zeros(())
        return ForecastOutput(score, aux, routing)


@dataclass(frozen=True)
class ForecasterConfig(Config):
    """A single (no-MoE) model: an encoder and a linear head."""

    data: DataConfig = field(default_factory=DataConfig)
    encoder: str = "gru"
    hidden: int = 64
    layers: int = 2
    n_heads: int = 2
    dropout: float = 0.0


class Forecaster(nn.Module):
    """``s_i = w^T Enc(x_i) + b``: Qlib-style baselines and MIGA's backbone without experts."""

    def __init__(self, config: ForecasterConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ForecasterConfig()
        self.encoder, width = build_encoder(config.encoder, config.data.d_feat, config.hidden,
                                            layers=config.layers, n_heads=config.n_heads, dropout=config.dropout)
        self.head = nn.Linear(width, 1)

    def forward(self, x: Tensor) -> ForecastOutput:
        _check_input(x, self.config.data, f"Forecaster({self.config.encoder})", not self.training)
        score = self.head(self.encoder(x)).squeeze(-1)
        return ForecastOutput(score, score.new_zeros(()))


register_model("miga-conv", config=MIGAConfig(encoder="conv"), weights=WEIGHTS,
               summary="MIGA-Conv: 63 style experts (7 groups), top-8, inner group attention; S&P 500 2009-10")(MIGA)
register_model("miga-gru", config=MIGAConfig(encoder="gru", encoder_layers=2),
               summary="MIGA-GRU: 2-layer GRU backbone, 63 style experts (7 groups), top-8")(MIGA)
register_model("miga-conv-single", config=ForecasterConfig(encoder="conv", layers=3),
               summary="MIGA-Conv's backbone with one linear head (no experts): the no-MoE ablation")(Forecaster)
for _name, _config, _summary in (
    ("finance-linear", ForecasterConfig(encoder="linear"), "linear model on the last day's Alpha158 factors"),
    ("finance-mlp", ForecasterConfig(encoder="mlp", hidden=256, dropout=0.05), "Qlib-style MLP on the last day"),
    ("finance-gru", ForecasterConfig(encoder="gru"), "Qlib-style 2-layer GRU over 20 days"),
    ("finance-lstm", ForecasterConfig(encoder="lstm"), "Qlib-style 2-layer LSTM over 20 days"),
    ("finance-transformer", ForecasterConfig(encoder="transformer"), "Qlib-style Transformer over 20 days"),
):
    register_model(_name, config=_config, summary=_summary)(Forecaster)
