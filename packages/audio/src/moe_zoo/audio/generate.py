"""Autoregressive generation with a key/value cache and the delay pattern's constraints.

At decoder step ``t`` codebook ``k`` is forced to ``BOS`` while ``t < d_k``; codebook 0 may emit
``EOS`` (the end), after which codebook ``k`` is forced to ``EOS`` at ``t0 + d_k`` and ``PAD``
later; the other steps sample a code (temperature, top-k) among the ``C`` real codes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from moe_zoo.audio.model import UniMoEAudio
from moe_zoo.audio.tokens import revert_delay
from moe_zoo.core import InputError

# sampling defaults: sharper than the earlier T 0.9 / top-20, which pocketsphinx heard worse on
# held-out sentences in development runs (benchmarks/codec_ceiling.py covers the codec side only)
TEMPERATURE, TOP_K = 0.5, 5


@torch.no_grad()
def generate_codes(model: UniMoEAudio, cond: list[int], *, max_frames: int = 150, temperature: float = TEMPERATURE,
                   top_k: int = TOP_K, seed: int = 0, min_frames: int = 10) -> Tensor:
    """``[K, T]`` codes for conditioning tokens ``cond``."""
    c = model.config
    if not cond:
        raise InputError("generate: empty conditioning")
    max_frames = min(max_frames, c.max_len - len(cond) - max(c.delays) - 2)
    if max_frames < 1:
        raise InputError(f"generate: conditioning of {len(cond)} tokens leaves no room in max_len {c.max_len}")
    pad, bos, eos = model.pad_bos_eos
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    caches = [{} for _ in model.blocks]
    k = c.n_codebooks
    cond_t = torch.tensor([[*cond, 0]])
    audio = torch.full((1, len(cond) + 1, k), -1, dtype=torch.long)
    audio[0, -1] = bos
    out = model(cond_t, audio, caches)
    position = len(cond) + 1
    columns, end = [], None
    for t in range(max_frames + max(c.delays) + 1):
        logits = out.logits[0, -1].float()  # [K, V]
        column = _sample(logits, temperature, top_k, generator, c.codebook_size)
        for i, d in enumerate(c.delays):
            if t < d:
                column[i] = bos
            elif end is not None and t >= end + d:
                column[i] = eos if t == end + d else pad
        frame = t - c.delays[0]
        if end is None and frame >= 0 and (
                frame >= max_frames or (frame >= min_frames and _eos_wins(logits[0], eos, generator, temperature))):
            end = frame
            column[0] = eos
        columns.append(column)
        if end is not None and t >= end + max(c.delays):
            break
        step_audio = column.view(1, 1, k)
        out = model(torch.zeros(1, 1, dtype=torch.long), step_audio, caches, start=position)
        position += 1
    grid = torch.stack(columns, dim=1)
    return revert_delay(grid, c.delays, c.codebook_size)


def _sample(logits: Tensor, temperature: float, top_k: int, generator: torch.Generator, n_codes: int) -> Tensor:
    """One code per codebook among the real codes (specials excluded)."""
    real = logits[:, :n_codes] / max(temperature, 1e-5)
    if temperature <= 0:
        return real.argmax(-1)
    values, idx = real.topk(min(top_k, n_codes), dim=-1)
    choice = torch.multinomial(values.softmax(-1), 1, generator=generator)
    return idx.gather(-1, choice).squeeze(-1)


def _eos_wins(logits0: Tensor, eos: int, generator: torch.Generator, temperature: float) -> bool:
    """Codebook 0 stops with the model's probability of EOS."""
    p = (logits0 / max(temperature, 1e-5)).softmax(-1)[eos]
    return bool(torch.rand(1, generator=generator) < p)
