"""Sequence encoders ``[N stocks, T days, F factors] -> [N, H]``: MIGA's backbones and the
baselines' bodies (Qlib's GRU/LSTM/Transformer/MLP benchmark models, a linear model)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from moe_zoo.core import InputError

ENCODERS = ("conv", "gru", "lstm", "transformer", "mlp", "linear")


def last_step_plan(length: int, kernel: int, dilations: tuple[int, ...]) -> tuple[list[int], list[tuple[Tensor, Tensor]]]:
    """Which positions a causal dilated conv stack needs to produce its last step only.

    Working backwards from ``{length - 1}``: layer ``l`` at position ``p`` reads ``p - j d_l`` for
    ``j = 0..k-1`` (its taps) and ``p`` itself (the residual). Returns the input positions (sorted)
    and, per layer, ``taps [P_l, k]`` (indices into the previous level's positions, oldest tap first;
    ``-1`` = before the data, i.e. the causal zero padding) and ``residual [P_l]`` (index of ``p``).
    """
    needed = [[length - 1]]
    for dilation in reversed(dilations):
        needed.append(sorted({p - j * dilation for p in needed[-1] for j in range(kernel) if p >= j * dilation}))
    needed.reverse()                                    # needed[0]: input positions, needed[l]: layer l's outputs
    plan = []
    for level, dilation in enumerate(dilations, start=1):
        where = {p: i for i, p in enumerate(needed[level - 1])}
        taps = [[where.get(p - (kernel - 1 - j) * dilation, -1) for j in range(kernel)] for p in needed[level]]
        plan.append((torch.tensor(taps), torch.tensor([where[p] for p in needed[level]])))
    return needed[0], plan


class ConvEncoder(nn.Module):
    """MIGA-Conv's backbone: causal dilated temporal convolutions (a small TCN).

    ``h^0 = x W_in``; ``h^l = h^{l-1} + GELU(CausalConv_{k, dilation 2^{l-1}}(h^{l-1}))`` for
    ``l = 1..L``, ``CausalConv(h)_t = b + sum_{j<k} W_j h_{t - (k-1-j) d}`` (``h_s = 0`` for ``s < 0``);
    output ``LayerNorm(h^L_T)`` (the last day). With ``k = 3`` and ``L = 3`` the last day sees the
    previous 15 days. Only the positions the last day depends on are computed
    (:func:`last_step_plan`: 15 + 7 + 3 + 1 of the 4 x 20 for ``T = 20``), each layer as one gather and
    one matmul with the ``Conv1d`` weights; the result equals the full-sequence convolution.
    """

    def __init__(self, d_feat: int, hidden: int, layers: int = 3, kernel: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.proj = nn.Linear(d_feat, hidden)
        self.convs = nn.ModuleList(nn.Conv1d(hidden, hidden, kernel, dilation=2**i) for i in range(layers))
        self.kernel = kernel
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden)
        self._plans: dict[int, tuple[list[int], list[tuple[Tensor, Tensor]]]] = {}

    def forward(self, x: Tensor) -> Tensor:
        length = x.shape[1]
        if length not in self._plans:
            self._plans[length] = last_step_plan(length, self.kernel, tuple(c.dilation[0] for c in self.convs))
        inputs, plan = self._plans[length]
        h = self.proj(x[:, inputs])                                              # [N, P_0, H]
        for conv, (taps, residual) in zip(self.convs, plan):
            padded = nn.functional.pad(h, (0, 0, 0, 1))                          # index -1: the zero padding
            gathered = padded[:, taps.reshape(-1).to(x.device)].reshape(h.shape[0], len(taps), -1)  # [N, P_l, k*H]
            weight = conv.weight.permute(0, 2, 1).reshape(conv.out_channels, -1)  # [H, k*H], tap-major
            h = h[:, residual.to(x.device)] + self.drop(nn.functional.gelu(nn.functional.linear(gathered, weight, conv.bias)))
        return self.norm(h[:, -1])


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
