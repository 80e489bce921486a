"""The audio token layout: the delay pattern and the special codes (MusicGen / UniMoE-Audio).

Per codebook the vocabulary is ``C`` codes plus ``PAD = C``, ``BOS = C + 1``, ``EOS = C + 2``.
The delay pattern shifts codebook ``k`` right by ``d_k`` frames, so one decoder step predicts
codebook ``k`` of frame ``t - d_k``: ``G[k, t] = codes[k, t - d_k]`` for ``0 <= t - d_k < T``,
``BOS`` before it, ``EOS`` at ``t - d_k = T`` and ``PAD`` after; ``G`` has ``T + max(d) + 1``
columns.
"""

from __future__ import annotations

import torch
from torch import Tensor

from moe_zoo.core import InputError


def specials(codebook_size: int) -> tuple[int, int, int]:
    """``(PAD, BOS, EOS)`` ids for a codebook of ``codebook_size`` codes."""
    return codebook_size, codebook_size + 1, codebook_size + 2


def apply_delay(codes: Tensor, delays: tuple[int, ...], codebook_size: int) -> Tensor:
    """``[K, T]`` codes -> ``[K, T + max(delays) + 1]`` delayed grid (see module doc)."""
    if codes.ndim != 2 or codes.shape[0] != len(delays):
        raise InputError(f"apply_delay: expected codes [{len(delays)}, T], got shape {tuple(codes.shape)}")
    pad, bos, eos = specials(codebook_size)
    k, t = codes.shape
    length = t + max(delays) + 1
    grid = torch.full((k, length), pad, dtype=torch.long)
    for i, d in enumerate(delays):
        grid[i, :d] = bos
        grid[i, d: d + t] = codes[i]
        grid[i, d + t] = eos
    return grid


def revert_delay(grid: Tensor, delays: tuple[int, ...], codebook_size: int) -> Tensor:
    """Inverse of :func:`apply_delay`: ``T`` is where codebook 0 first holds ``EOS`` (or runs out);
    codes of other codebooks that are specials (a truncated generation) become 0."""
    eos = specials(codebook_size)[2]
    ends = (grid[0] == eos).nonzero()
    t = int(ends[0]) - delays[0] if len(ends) else grid.shape[1] - max(delays)
    t = max(t, 0)
    codes = torch.zeros(len(delays), t, dtype=torch.long)
    for i, d in enumerate(delays):
        row = grid[i, d: d + t]
        codes[i, : row.numel()] = row
    return codes.masked_fill(codes >= codebook_size, 0)
