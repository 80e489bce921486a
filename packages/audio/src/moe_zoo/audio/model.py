"""UniMoE-Audio: a decoder-only transformer over multi-codebook audio tokens with a
dynamic-capacity MoE in every FFN, plus the dense and top-k baselines (registered in the zoo).

Input at position ``t``: a conditioning token embedding (phonemes, or score notes and tags), or
for audio frames the sum of the ``K`` codebook embeddings ``sum_k E_k[G[k, t]]``; one linear head
predicts all ``K`` codebooks (``K * (C + 3)`` logits). The FFN of every block is moe-core's
:class:`MoELayer`: top-p routing (p = 0.7) over 8 routed + 1 null expert with 2 shared experts
inside the router (``always_on``), weights renormalised over the selected + shared set, ±1 %
input jitter in training, no token dropping.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moe_zoo.audio import text as tx
from moe_zoo.audio.codec import CodecConfig, MelRVQCodec
from moe_zoo.audio.tokens import specials
from moe_zoo.core import Config, InputError, MoEConfig, MoELayer, register_model
from moe_zoo.core.dynamic_balance import dynamic_balancing_loss
from moe_zoo.core.experts import FeedForward
from moe_zoo.core.routing import RoutingResult

WEIGHTS = "moe_zoo.audio:weights/unimoe-audio-tiny.safetensors"


@dataclass(frozen=True)
class UniMoEAudioConfig(Config):
    """``ffn``: "moe" (top-p or top-k MoE) or "dense"; ``router``: "topp" (UniMoE) or "topk"."""

    cond_vocab: int = len(tx.VOCAB)
    n_codebooks: int = 4
    codebook_size: int = 256
    delays: tuple[int, ...] = (0, 1, 2, 3)
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    max_len: int = 320
    ffn: str = "moe"
    router: str = "topp"
    n_routed: int = 8
    n_null: int = 1
    n_shared: int = 2
    expert_hidden: int = 64
    dense_hidden: int = 256
    top_p: float = 0.7
    top_k: int = 2
    jitter: float = 0.01
    dropout: float = 0.1
    codec: CodecConfig = CodecConfig()  # noqa: RUF009 (a frozen, immutable config)

    def __post_init__(self) -> None:
        if self.ffn not in ("moe", "dense"):
            raise InputError(f"UniMoEAudioConfig.ffn must be 'moe' or 'dense', got {self.ffn!r}")
        if self.router not in ("topp", "topk"):
            raise InputError(f"UniMoEAudioConfig.router must be 'topp' or 'topk', got {self.router!r}")
        if len(self.delays) != self.n_codebooks:
            raise InputError(f"UniMoEAudioConfig: {len(self.delays)} delays for {self.n_codebooks} codebooks")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"UniMoEAudioConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.d_model % self.n_heads:
            raise InputError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")

    @property
    def audio_vocab(self) -> int:
        return self.codebook_size + 3

    @property
    def shared_ids(self) -> tuple[int, ...]:
        return tuple(range(self.n_routed, self.n_routed + self.n_shared))

    @property
    def null_ids(self) -> tuple[int, ...]:
        """Router ids of the null experts (after the FFN experts; only with top-p)."""
        if self.router != "topp":
            return ()
        start = self.n_routed + self.n_shared
        return tuple(range(start, start + self.n_null))

    @property
    def dynamic_ids(self) -> tuple[int, ...]:
        """The experts raced by the router (routed + null): the aux loss balances these."""
        return tuple(range(self.n_routed)) + self.null_ids

    def moe_config(self) -> MoEConfig:
        common = dict(d_model=self.d_model, d_hidden=self.expert_hidden, n_experts=self.n_routed + self.n_shared,
                      always_on=self.shared_ids, jitter=self.jitter)
        if self.router == "topp":
            return MoEConfig(**common, router="topp", top_p=self.top_p, n_zero=self.n_null)
        return MoEConfig(**common, router="topk", top_k=self.top_k)


class Attention(nn.Module):
    """Causal multi-head self-attention with an optional key/value cache for generation."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: Tensor, cache: dict | None = None) -> Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        causal = cache is None or s > 1
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal and q.shape[2] == k.shape[2])
        return self.out(y.transpose(1, 2).reshape(b, s, d))


class Block(nn.Module):
    """Pre-norm block: ``x + Drop(Attn(LN(x)))`` then ``x + Drop(FFN(LN(x)))`` with a dense or MoE
    FFN (residual dropout, active in training only)."""

    def __init__(self, config: UniMoEAudioConfig) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(config.d_model), nn.LayerNorm(config.d_model)
        self.attn = Attention(config.d_model, config.n_heads)
        self.drop = nn.Dropout(config.dropout)
        self.ffn = (MoELayer(config.moe_config()) if config.ffn == "moe"
                    else FeedForward(config.d_model, config.dense_hidden))

    def forward(self, x: Tensor, cache: dict | None = None) -> tuple[Tensor, RoutingResult | None]:
        x = x + self.drop(self.attn(self.norm1(x), cache))
        h = self.norm2(x)
        if isinstance(self.ffn, MoELayer):
            out = self.ffn(h)
            return x + self.drop(out.output), out.routing
        return x + self.drop(self.ffn(h)), None


@dataclass
class AudioLMOutput:
    """``logits [B, S, K, V]`` and the routing of each MoE layer (empty for the dense model)."""

    logits: Tensor
    routings: list[RoutingResult]


class UniMoEAudio(nn.Module):
    """The generator plus its codec (the codec's codebooks travel in the same checkpoint)."""

    def __init__(self, config: UniMoEAudioConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.cond_embed = nn.Embedding(c.cond_vocab, c.d_model)
        self.audio_embed = nn.Embedding(c.n_codebooks * c.audio_vocab, c.d_model)
        self.pos_embed = nn.Embedding(c.max_len, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.n_codebooks * c.audio_vocab, bias=False)
        self.register_buffer("offsets", torch.arange(c.n_codebooks) * c.audio_vocab, persistent=False)
        self.codec = MelRVQCodec(c.codec)
        nn.init.normal_(self.cond_embed.weight, std=0.02)
        nn.init.normal_(self.audio_embed.weight, std=0.02)
        nn.init.normal_(self.pos_embed.weight, std=0.02)

    def embed(self, cond: Tensor, audio: Tensor, start: int = 0) -> Tensor:
        """``cond [B, S]`` (used where ``audio[..., 0] < 0``), ``audio [B, S, K]`` (``-1`` off audio)."""
        is_audio = audio[..., 0] >= 0
        a = self.audio_embed(audio.clamp_min(0) + self.offsets).sum(-2)
        x = torch.where(is_audio[..., None], a, self.cond_embed(cond.clamp_min(0)))
        pos = torch.arange(start, start + cond.shape[1], device=cond.device)
        if start + cond.shape[1] > self.config.max_len:
            raise InputError(f"sequence of {start + cond.shape[1]} positions exceeds max_len {self.config.max_len}")
        return self.drop(x + self.pos_embed(pos))

    def forward(self, cond: Tensor, audio: Tensor, caches: list[dict] | None = None, start: int = 0) -> AudioLMOutput:
        x = self.embed(cond, audio, start)
        routings = []
        for i, block in enumerate(self.blocks):
            x, routing = block(x, None if caches is None else caches[i])
            if routing is not None:
                routings.append(routing)
        logits = self.head(self.norm(x))
        b, s, _ = logits.shape
        return AudioLMOutput(logits.view(b, s, self.config.n_codebooks, self.config.audio_vocab), routings)

    def aux_loss(self, routings: list[RoutingResult]) -> Tensor:
        """Sum over layers of ``N_dyn * sum_i f_i P_i`` over the dynamic (routed + null) experts."""
        total = self.head.weight.new_zeros(())
        for r in routings:
            total = total + dynamic_balancing_loss(r, self.config.dynamic_ids)
        return total

    @property
    def pad_bos_eos(self) -> tuple[int, int, int]:
        return specials(self.config.codebook_size)


for _name, _overrides, _summary in (
    ("unimoe-audio-tiny", {}, "UniMoE-Audio (tiny): top-p 0.7 over 8 routed + 1 null, 2 shared experts; "
     "speech + music on the built-in data, mel-RVQ codec"),
    ("unimoe-audio-dense", {"ffn": "dense"}, "dense baseline with the MoE's average active FFN width"),
    ("unimoe-audio-topk", {"router": "topk"}, "top-2 MoE baseline over 8 routed + 2 shared experts"),
):
    register_model(_name, config=UniMoEAudioConfig(**_overrides), summary=_summary,
                   weights=WEIGHTS if _name == "unimoe-audio-tiny" else None)(UniMoEAudio)
