"""MoE transformer blocks so domain packages can build MoE transformers without copying code."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moe_zoo.core.config import Config
from moe_zoo.core.errors import InputError
from moe_zoo.core.experts import FeedForward
from moe_zoo.core.layer import MoEConfig, MoELayer, MoEOutput


class RMSNorm(nn.Module):
    """``y = x / sqrt(mean(x^2) + eps) * g``."""

    def __init__(self, d_model: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: Tensor) -> Tensor:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.to(x.dtype) * self.weight


def make_norm(kind: str, d_model: int) -> nn.Module:
    if kind == "rms":
        return RMSNorm(d_model)
    if kind == "layer":
        return nn.LayerNorm(d_model)
    raise InputError(f"norm must be 'rms' or 'layer', got {kind!r}")


class SelfAttention(nn.Module):
    """Multi-head self-attention on ``[B, S, d]`` (``F.scaled_dot_product_attention``).

    ``padding_mask``: ``[B, S]`` bool, True for padding positions that must not be attended to.
    """

    def __init__(self, d_model: int, n_heads: int, *, dropout: float = 0.0, bias: bool = False,
                 causal: bool = False) -> None:
        super().__init__()
        if d_model % n_heads:
            raise InputError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.n_heads, self.causal, self.dropout = n_heads, causal, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.out = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        batch, seq, d_model = x.shape
        q, k, v = self.qkv(x).view(batch, seq, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        mask = None
        if padding_mask is not None:
            mask = ~padding_mask[:, None, None, :]
            if self.causal:
                mask = mask & torch.ones(seq, seq, dtype=torch.bool, device=x.device).tril()
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
                                              is_causal=self.causal and mask is None)
        return self.out(attn.transpose(1, 2).reshape(batch, seq, d_model))


class MoETransformerBlock(nn.Module):
    """Pre-norm block: ``x += Attn(norm(x))``; ``x += FFN(norm(x))`` where FFN is an MoE layer
    (or a dense FFN when ``moe`` is None). Returns ``(x, MoEOutput | None)``."""

    def __init__(self, d_model: int, n_heads: int, moe: MoEConfig | None, *, dense_hidden: int | None = None,
                 norm: str = "rms", dropout: float = 0.0, causal: bool = False) -> None:
        super().__init__()
        self.attn_norm, self.ffn_norm = make_norm(norm, d_model), make_norm(norm, d_model)
        self.attn = SelfAttention(d_model, n_heads, dropout=dropout, causal=causal)
        if moe is not None and moe.d_model != d_model:
            raise InputError(f"MoE d_model={moe.d_model} differs from the block's d_model={d_model}")
        self.ffn: nn.Module = MoELayer(moe) if moe is not None else FeedForward(d_model, dense_hidden or 4 * d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, MoEOutput | None]:
        x = x + self.drop(self.attn(self.attn_norm(x), padding_mask))
        hidden = self.ffn_norm(x)
        if isinstance(self.ffn, MoELayer):
            moe_out = self.ffn(hidden)
            return x + self.drop(moe_out.output), moe_out
        return x + self.drop(self.ffn(hidden)), None


@dataclass(frozen=True)
class MoETransformerConfig(Config):
    """A stack of blocks; every ``moe_every``-th block (1-based) uses the MoE FFN."""

    d_model: int
    n_heads: int
    n_layers: int
    moe: MoEConfig
    moe_every: int = 1
    dense_hidden: int | None = None
    norm: str = "rms"
    dropout: float = 0.0
    causal: bool = False


@dataclass
class TransformerOutput:
    hidden: Tensor
    moe_outputs: list[MoEOutput] = field(default_factory=list)

    def aux_loss(self, balance: float = 0.01, z: float = 0.0) -> Tensor:
        """Sum over MoE layers of ``balance * L_balance + z * L_z``."""
        return sum((m.aux_loss(balance, z) for m in self.moe_outputs), self.hidden.new_zeros(()))


class MoETransformer(nn.Module):
    """An encoder (or, with ``causal=True``, decoder-only) stack of :class:`MoETransformerBlock`."""

    def __init__(self, config: MoETransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.blocks = nn.ModuleList(
            MoETransformerBlock(config.d_model, config.n_heads,
                                config.moe if (i + 1) % config.moe_every == 0 else None,
                                dense_hidden=config.dense_hidden, norm=config.norm, dropout=config.dropout,
                                causal=config.causal)
            for i in range(config.n_layers)
        )
        self.norm = make_norm(config.norm, config.d_model)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> TransformerOutput:
        outputs = []
        for block in self.blocks:
            x, moe_out = block(x, padding_mask)
            if moe_out is not None:
                outputs.append(moe_out)
        return TransformerOutput(self.norm(x), outputs)
