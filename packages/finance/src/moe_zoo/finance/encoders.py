"""Sequence encoders ``[N stocks, T days, F factors] -> [N, H]``: MIGA's backbones and the
baselines' bodies (Qlib's GRU/LSTM/Transformer/MLP benchmark models, a linear model)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from moe_zoo.core import InputError

ENCODERS = ("conv", "gru", "lstm", "transformer", "mlp", "linear")


class ConvEncoder(nn.Module):
    """MIGA-Conv's backbone: causal dilated temporal convolutions (a small TCN).

    ``h^0 = x W_in``; ``h^l = h^{l-1} + GELU(CausalConv_{k, dilation 2^{l-1}}(h^{l-1}))`` for
    ``l = 1..L``; output ``LayerNorm(h^L_T)`` (the last day). With ``k = 3`` and ``L = 3`` the last
    day sees the previous 15 days. Causal padding: position ``t`` reads only ``<= t``.
    """

    def __init__(self, d_feat: int, hidden: int, layers: int = 3, kernel: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.proj = nn.Linear(d_feat, hidden)
        self.convs = nn.ModuleList(nn.Conv1d(hidden, hidden, kernel, dilation=2**i) for i in range(layers))
        self.pads = [(kernel - 1) * 2**i for i in range(layers)]
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: Tensor) -> Tensor:
        h = self.proj(x).transpose(1, 2)                       # [N, H, T]
        for conv, pad in zip(self.convs, self.pads):
            h = h + self.drop(nn.functional.gelu(conv(nn.functional.pad(h, (pad, 0)))))
        return self.norm(h[:, :, -1])


class RecurrentEncoder(nn.Module):
    """Qlib's GRU / LSTM models: a multi-layer RNN over the days, the last hidden state."""

    def __init__(self, kind: str, d_feat: int, hidden: int, layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        rnn = nn.GRU if kind == "gru" else nn.LSTM
        self.rnn = rnn(d_feat, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)
        return out[:, -1]


class TransformerSeqEncoder(nn.Module):
    """Qlib's Transformer model: linear embedding + sinusoidal positions + encoder, last day."""

    def __init__(self, d_feat: int, hidden: int, layers: int = 2, n_heads: int = 2, dropout: float = 0.0,
                 max_len: int = 512) -> None:
        super().__init__()
        self.embed = nn.Linear(d_feat, hidden)
        position = torch.arange(max_len)[:, None]
        freq = torch.exp(torch.arange(0, hidden, 2) * (-math.log(10000.0) / hidden))
        table = torch.zeros(max_len, hidden)
        table[:, 0::2] = torch.sin(position * freq)
        table[:, 1::2] = torch.cos(position * freq[: hidden // 2])
        self.register_buffer("positions", table, persistent=False)
        layer = nn.TransformerEncoderLayer(hidden, n_heads, dim_feedforward=4 * hidden, dropout=dropout,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, x: Tensor) -> Tensor:
        h = self.embed(x) + self.positions[: x.shape[1]]
        return self.encoder(h)[:, -1]


class LastDayMLP(nn.Module):
    """Qlib's MLP (DNN) model on the last day's factors: Linear -> LeakyReLU -> Dropout (x layers)."""

    def __init__(self, d_feat: int, hidden: int, layers: int = 2, dropout: float = 0.05) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = d_feat
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LeakyReLU(), nn.Dropout(dropout)]
            width = hidden
        self.net = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x[:, -1])


class LastDay(nn.Module):
    """The last day's factors unchanged (with a linear head: a linear model)."""

    def forward(self, x: Tensor) -> Tensor:
        return x[:, -1]


def build_encoder(kind: str, d_feat: int, hidden: int, *, layers: int = 2, n_heads: int = 2,
                  dropout: float = 0.0) -> tuple[nn.Module, int]:
    """``(encoder, output width)`` for ``kind`` in :data:`ENCODERS`."""
    if kind == "conv":
        return ConvEncoder(d_feat, hidden, layers=layers, dropout=dropout), hidden
    if kind in ("gru", "lstm"):
        return RecurrentEncoder(kind, d_feat, hidden, layers=layers, dropout=dropout), hidden
    if kind == "transformer":
        if hidden % n_heads:
            raise InputError(f"transformer: hidden {hidden} must be divisible by n_heads {n_heads}")
        return TransformerSeqEncoder(d_feat, hidden, layers=layers, n_heads=n_heads, dropout=dropout), hidden
    if kind == "mlp":
        return LastDayMLP(d_feat, hidden, layers=layers, dropout=dropout), hidden
    if kind == "linear":
        return LastDay(), d_feat
    raise InputError(f"encoder must be one of {ENCODERS}, got {kind!r}")
