"""Examples (conditioning tokens + delayed code grid) and padded batches for the decoder."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import Tensor

from moe_zoo.audio import text as tx
from moe_zoo.audio.data import Clip
from moe_zoo.audio.tokens import apply_delay, specials

IGNORE = -100


@dataclass
class Example:
    task: str
    cond: list[int]
    grid: Tensor  # [K, L] delayed codes


@dataclass
class Batch:
    cond: Tensor  # [B, S] conditioning ids (PAD off the prefix)
    audio: Tensor  # [B, S, K] input audio codes, -1 off audio
    target: Tensor  # [B, S, K] next-frame targets, IGNORE where none
    tasks: list[str]


def encode_clips(model, clips: list[Clip], codec=None) -> list[Example]:
    """Tokenise clips with ``codec`` (default: the model's own) into delayed grids."""
    codec = codec or model.codec
    c = model.config
    out = []
    for clip in clips:
        codes = codec.encode(clip.audio)
        max_frames = c.max_len - len(clip.cond) - max(c.delays) - 2
        out.append(Example(clip.task, clip.cond, apply_delay(codes[:, :max_frames], c.delays, c.codebook_size)))
    return out


def collate(examples: list[Example], codebook_size: int) -> Batch:
    """``[cond..., BOS, G_0 .. G_{L-2}]`` inputs; the position holding frame ``j`` predicts ``G_j``."""
    pad, bos, _ = specials(codebook_size)
    k = examples[0].grid.shape[0]
    length = max(len(e.cond) + e.grid.shape[1] for e in examples)
    b = len(examples)
    cond = torch.full((b, length), tx.PAD, dtype=torch.long)
    audio = torch.full((b, length, k), -1, dtype=torch.long)
    target = torch.full((b, length, k), IGNORE, dtype=torch.long)
    for i, e in enumerate(examples):
        lc, lg = len(e.cond), e.grid.shape[1]
        cond[i, :lc] = torch.tensor(e.cond)
        audio[i, lc] = bos
        audio[i, lc + 1: lc + lg] = e.grid[:, :-1].T
        g = e.grid.T.clone()
        target[i, lc: lc + lg] = g.masked_fill((g == pad) | (g == bos), IGNORE)
    return Batch(cond, audio, target, [e.task for e in examples])


def sample_batch(pools: dict[str, list[Example]], batch_size: int, rng: random.Random) -> list[Example]:
    """A balanced batch: the same number of examples from every task pool (UniMoE's balanced mix)."""
    tasks = sorted(pools)
    return [rng.choice(pools[tasks[i % len(tasks)]]) for i in range(batch_size)]
