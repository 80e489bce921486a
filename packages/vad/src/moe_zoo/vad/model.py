"""GS-MoE (D'Amicantonio, Majhi et al., ICCV 2025) over snippet features, and the MIL baseline.

Three parts, trained in three stages (see :mod:`moe_zoo.vad.train`):

1. **Task encoder** = UR-DMU (Zhou et al., AAAI 2023): ``Conv1d(k=3) + ReLU`` embedding,
   self-attention blocks, a normal and an abnormal memory unit, a variational encoder of the
   memory read-out, and a scoring head. Its *task-aware features* ``f_t = [x_t, mu(A_t) + mu(N_t)]``
   and coarse scores feed the rest.
2. **Class experts**: one per anomaly class, each a Transformer block over ``f`` and an MLP to a
   sigmoid score ``s^e_t``; expert ``e`` learns only from class-``e`` videos against normal ones.
   All experts run batched: their weights are stacked on a leading expert axis, one ``bmm`` per
   projection, one attention call for all of them (no Python loop over experts).
3. **Gate**: moe-core's :class:`~moe_zoo.core.SoftGate` weighs the experts per snippet from the
   task-aware features, ``g_t = softmax(MLP(f_t))``, and the final score is the mixture
   ``sum_e g_te s^e_t``. With ``gate_fusion=True`` (the paper's full gate) the weighted expert
   scores ``g_t * s_t`` are also refined to an embedding, fused with ``f`` by bi-directional
   cross-attention, and a Transformer block and an MLP correct the mixture into the final score.
   The fusion is off by default: on the built-in data it lowers the frame AUC (README).

Sizes are scaled down from the paper (d = 512, 13 experts with 512-wide MLPs) so that training
runs in minutes on two CPU cores; the structure is the paper's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moe_zoo.core import Config, ExpertBank, InputError, SoftGate, register_model
from moe_zoo.core.activations import activate
from moe_zoo.core.transformer import MoETransformerBlock
from moe_zoo.vad.features import FeatureConfig
from moe_zoo.vad.scope import FeatureStats
from moe_zoo.vad.synthesis import ANOMALY_CLASSES

DEFAULT_WEIGHTS = "moe_zoo.vad:weights/gsmoe_builtin.safetensors"


@dataclass(frozen=True)
class GSMoEConfig(Config):
    """Architecture of GS-MoE (paper sizes in comments)."""

    feature_dim: int = FeatureConfig().dim
    class_names: tuple[str, ...] = ANOMALY_CLASSES  # one expert per class (paper: 13 on UCF-Crime)
    d_model: int = 64             # UR-DMU embedding 512
    encoder_layers: int = 0       # UR-DMU: 2 global self-attention layers (README: they smear short events)
    encoder_heads: int = 4        # UR-DMU: 4
    memory_slots: int = 32        # UR-DMU: 60 per memory
    dropout: float = 0.1          # UR-DMU: 0.5 in its Transformer
    expert_heads: int = 2
    expert_hidden: int = 128      # expert FFN width (paper 512)
    expert_mlp: tuple[int, ...] = (64, 32)  # paper 512-256-128-64
    gate_dim: int = 64            # paper: 1024 per branch
    gate_heads: int = 4
    gate_hidden: int = 64         # SoftGate hidden layer
    gate_mlp: tuple[int, ...] = (64, 32)
    gate_fusion: bool = False     # the paper's cross-attention fusion branch (README: off by default)
    single_expert: bool = False   # ablation: one class-agnostic expert, no gate
    topk_divisor: int = 16
    features: FeatureConfig = field(default_factory=FeatureConfig)
    scope_stats: bool = False     # keep training feature statistics (out-of-scope warnings in predict)

    @property
    def n_experts(self) -> int:
        return 1 if self.single_expert else len(self.class_names)

    @property
    def task_dim(self) -> int:
        return 2 * self.d_model


def _mlp(sizes: list[int], activation: type[nn.Module] = nn.GELU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def _check_features(x: Tensor, dim: int) -> Tensor:
    if x.dim() not in (3, 4) or x.shape[-1] != dim:
        raise InputError(f"expected snippet features [B, T, {dim}] or [B, crops, T, {dim}], got {tuple(x.shape)}")
    if x.shape[-2] == 0:
        raise InputError("a video needs at least one snippet")
    return x


# --------------------------------------------------------------------------------------------
# Task encoder (UR-DMU)
# --------------------------------------------------------------------------------------------

class MemoryUnit(nn.Module):
    """UR-DMU memory: ``K`` learned slots ``M``; ``att = sigmoid(x M^T / sqrt(d))`` ``[B, T, K]``,
    read-out ``x_aug = att M``, snippet score ``a_t = mean of the top-(K//16+1) att_t``."""

    def __init__(self, slots: int, dim: int) -> None:
        super().__init__()
        self.slots = nn.Parameter(torch.empty(slots, dim).uniform_(-dim**-0.5, dim**-0.5))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        att = torch.sigmoid(x @ self.slots.T / math.sqrt(x.shape[-1]))
        k = self.slots.shape[0] // 16 + 1
        return att.topk(k, dim=-1).values.mean(-1), att @ self.slots


@dataclass
class EncoderTrainOutput:
    """What UR-DMU's loss needs from a ``[normal; abnormal]`` training batch."""

    scores: Tensor     # [B, T]
    a_att: Tensor      # [B, T] abnormal-memory score of every video
    n_att: Tensor      # [B, T] normal-memory score of every video
    triplet: Tensor
    kl: Tensor
    distance: Tensor


class TaskEncoder(nn.Module):
    """UR-DMU: ``x = Attn^L(ReLU(Conv1d(F)))``; ``f = [x, mu(A(x)) + mu(N(x))]``; ``s = sigmoid(MLP(f))``.

    ``L = config.encoder_layers`` self-attention blocks over the clip (UR-DMU: 2; default 0, because
    on short clips they spread an event's score over its neighbours: package README).

    Training (batch = ``b`` normal then ``b`` abnormal videos) follows UR-DMU: the normal read-out
    is sampled with the reparameterisation ``mu + eps * exp(logvar / 2)`` (KL to N(0, I)); a
    triplet loss pulls the normal-looking snippets of abnormal videos towards normal snippets and
    away from abnormal ones; a margin term keeps abnormal read-outs large.
    """

    def __init__(self, config: GSMoEConfig) -> None:
        super().__init__()
        d = config.d_model
        self.divisor = config.topk_divisor
        self.embedding = nn.Conv1d(config.feature_dim, d, kernel_size=3, padding=1)
        self.blocks = nn.ModuleList(
            MoETransformerBlock(d, config.encoder_heads, None, dense_hidden=2 * d, norm="layer",
                                dropout=config.dropout)
            for _ in range(config.encoder_layers))
        self.abnormal_memory = MemoryUnit(config.memory_slots, d)
        self.normal_memory = MemoryUnit(config.memory_slots, d)
        self.mu = nn.Linear(d, d)
        self.logvar = nn.Linear(d, d)
        self.head = nn.Sequential(_mlp([2 * d, d, 1], nn.ReLU), nn.Sigmoid())
        self.triplet = nn.TripletMarginLoss(margin=1.0)

    def embed(self, x: Tensor) -> Tensor:
        x = F.relu(self.embedding(x.transpose(1, 2))).transpose(1, 2)
        for block in self.blocks:
            x, _ = block(x)
        return x

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Inference: ``(scores [B, T], task-aware features [B, T, 2d])`` for ``x`` ``[B, T, D]``."""
        h = self.embed(x)
        _, a_aug = self.abnormal_memory(h)
        _, n_aug = self.normal_memory(h)
        features = torch.cat([h, self.mu(a_aug) + self.mu(n_aug)], -1)
        return self.head(features).squeeze(-1), features

    def forward_train(self, x: Tensor) -> EncoderTrainOutput:
        """Training forward on ``[b normal; b abnormal]`` videos ``[2b, T, D]`` (UR-DMU's ``Train`` flag)."""
        h = self.embed(x)
        half, k = h.shape[0] // 2, h.shape[1] // self.divisor + 1
        normal, abnormal = h[:half], h[half:]
        a_att, a_aug = self.abnormal_memory(abnormal)       # abnormal videos -> abnormal memory
        pa_att, pa_aug = self.normal_memory(abnormal)       # abnormal videos -> normal memory
        na_att, na_aug = self.abnormal_memory(normal)       # normal videos -> abnormal memory
        n_att, n_aug = self.normal_memory(normal)           # normal videos -> normal memory

        def pick(source: Tensor, att: Tensor) -> Tensor:  # mean feature of the top-k snippets by att
            index = att.topk(k, dim=-1).indices[..., None].expand(-1, -1, source.shape[-1])
            return source.gather(1, index).mean(1)

        negative, anchor, positive = pick(abnormal, a_att), pick(normal, n_att), pick(abnormal, pa_att)
        triplet = self.triplet(F.normalize(anchor, dim=-1), F.normalize(positive, dim=-1),
                               F.normalize(negative, dim=-1))
        n_mu, n_logvar = self.mu(n_aug), self.logvar(n_aug)
        n_sample = n_mu + torch.randn_like(n_mu) * torch.exp(0.5 * n_logvar)
        kl = torch.mean(-0.5 * torch.sum(1 + n_logvar - n_mu**2 - n_logvar.exp(), dim=-1))
        a_mu = self.mu(a_aug)
        distance = F.relu(100 - pick(a_mu, a_att).norm(dim=-1) + pick(n_sample, n_att).norm(dim=-1)).mean()
        read_out = torch.cat([n_sample + self.mu(na_aug), a_mu + self.mu(pa_aug)], 0)
        scores = self.head(torch.cat([h, read_out], -1)).squeeze(-1)
        return EncoderTrainOutput(scores, torch.cat([na_att, a_att]), torch.cat([n_att, pa_att]),
                                  triplet, kl, distance)


# --------------------------------------------------------------------------------------------
# Class experts, batched over the expert axis
# --------------------------------------------------------------------------------------------

class StackedLinear(nn.Module):
    """``E`` independent linear maps ``y_e = x_e W_e + b_e`` on ``x`` ``[E, N, d_in]`` (one ``baddbmm``)."""

    def __init__(self, n: int, d_in: int, d_out: int) -> None:
        super().__init__()
        bound = d_in**-0.5
        self.weight = nn.Parameter(torch.empty(n, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, d_out).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class StackedLayerNorm(nn.Module):
    """A LayerNorm per expert on ``[E, N, d]``."""

    def __init__(self, n: int, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n, 1, d))
        self.bias = nn.Parameter(torch.zeros(n, 1, d))

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, x.shape[-1:]) * self.weight + self.bias


class ClassExperts(nn.Module):
    """``E`` expert scorers over task-aware features ``f`` ``[B, T, d]`` -> scores ``[B, E, T]``.

    Expert ``e``: ``h = f + MHSA_e(LN_e(f))``; ``h = h + FFN_e(LN_e(h))``; ``s^e = sigmoid(MLP_e(h))``.
    The FFNs are a moe-core :class:`~moe_zoo.core.ExpertBank` (GELU, biases); every projection
    of every expert runs as one batched matmul.
    """

    def __init__(self, config: GSMoEConfig) -> None:
        super().__init__()
        e, d = config.n_experts, config.task_dim
        if d % config.expert_heads:
            raise InputError(f"task feature size {d} must be divisible by expert_heads={config.expert_heads}")
        self.n_experts, self.heads = e, config.expert_heads
        self.norm1, self.norm2 = StackedLayerNorm(e, d), StackedLayerNorm(e, d)
        self.qkv = StackedLinear(e, d, 3 * d)
        self.proj = StackedLinear(e, d, d)
        self.ffn = ExpertBank(e, d, config.expert_hidden, activation="gelu", bias=True)
        sizes = [d, *config.expert_mlp, 1]
        self.mlp = nn.ModuleList(StackedLinear(e, a, b) for a, b in pairwise(sizes))

    def _ffn(self, x: Tensor) -> Tensor:
        bank = self.ffn
        hidden = torch.baddbmm(bank.b_in[:, None], x, bank.w_in)
        return torch.baddbmm(bank.b_out[:, None], activate(hidden, bank.activation), bank.w_out)

    def forward(self, features: Tensor) -> Tensor:
        b, t, d = features.shape
        e, heads = self.n_experts, self.heads
        x = features.reshape(1, b * t, d).expand(e, -1, -1)                          # [E, B*T, d]
        q, k, v = self.qkv(self.norm1(x)).view(e, b, t, 3, heads, d // heads).permute(3, 0, 1, 4, 2, 5).unbind(0)
        attn = F.scaled_dot_product_attention(q, k, v)                               # [E, B, H, T, dh]
        x = x + self.proj(attn.permute(0, 1, 3, 2, 4).reshape(e, b * t, d))
        x = x + self._ffn(self.norm2(x))
        for i, layer in enumerate(self.mlp):
            x = layer(x) if i == len(self.mlp) - 1 else F.gelu(layer(x))
        return torch.sigmoid(x).view(e, b, t).transpose(0, 1)                       # [B, E, T]


# --------------------------------------------------------------------------------------------
# Gate
# --------------------------------------------------------------------------------------------

class BidirectionalCrossAttention(nn.Module):
    """GS-MoE's gate fusion between task features ``A`` and refined expert scores ``R`` ``[B, T, c]``:
    ``O_1 = Attn(Q = A W_q, K = A W_k, V = R W_v)``, ``O_2 = Attn(Q = R U_q, K = R U_k, V = A U_v)``,
    output ``[O_1, O_2]`` ``[B, T, 2c]``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise InputError(f"gate_dim={dim} must be divisible by gate_heads={heads}")
        self.heads = heads
        self.task_qk = nn.Linear(dim, 2 * dim, bias=False)
        self.score_qk = nn.Linear(dim, 2 * dim, bias=False)
        self.task_v = nn.Linear(dim, dim, bias=False)
        self.score_v = nn.Linear(dim, dim, bias=False)

    def _attend(self, qk: Tensor, v: Tensor) -> Tensor:
        b, t, d = v.shape
        q, k = qk.view(b, t, 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        v = v.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d)

    def forward(self, task: Tensor, scores: Tensor) -> Tensor:
        return torch.cat([self._attend(self.task_qk(task), self.score_v(scores)),
                          self._attend(self.score_qk(scores), self.task_v(task))], -1)


class ExpertGate(nn.Module):
    """GS-MoE's gate over the class experts' scores ``s_t`` ``[E]`` and task features ``f_t``:

    ``g_t = SoftGate(f_t)`` (moe-core, softmax over experts), ``y_t = m_t = sum_e g_te s^e_t``.

    With ``gate_fusion``: ``r_t = W_r (g_t * s_t)`` (refined expert scores),
    ``z = BiCrossAttn(W_f f, r)``, ``y_t = sigmoid(logit(m_t) + MLP(Block(z))_t)``. The fusion
    branch (bi-directional cross-attention, Transformer block, MLP) is the paper's; adding its
    output to the logit of the soft mixture, with the MLP's last layer starting at zero, is our
    choice: the gate starts as a plain mixture of experts and learns corrections.
    Returns ``(y [B, T], g [B, T, E])``.
    """

    def __init__(self, config: GSMoEConfig) -> None:
        super().__init__()
        c = config.gate_dim
        self.soft_gate = SoftGate(config.task_dim, config.n_experts, hidden=config.gate_hidden)
        self.fusion = config.gate_fusion
        if not self.fusion:
            return
        self.refine = nn.Linear(config.n_experts, c)
        self.task_proj = nn.Linear(config.task_dim, c)
        self.cross = BidirectionalCrossAttention(c, config.gate_heads)
        self.block = MoETransformerBlock(2 * c, config.gate_heads, None, dense_hidden=2 * c, norm="layer",
                                         dropout=config.dropout)
        self.head = _mlp([2 * c, *config.gate_mlp, 1])
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, task: Tensor, expert_scores: Tensor) -> tuple[Tensor, Tensor]:
        b, e, t = expert_scores.shape
        routing = self.soft_gate(task)
        weights = routing.weights.view(b, t, e)
        scores = expert_scores.transpose(1, 2)                                        # [B, T, E]
        mixture = SoftGate.mix(scores.reshape(b * t, e, 1), routing.weights).view(b, t)
        if not self.fusion:
            return mixture, weights
        refined = self.refine(weights * scores)
        z, _ = self.block(self.cross(self.task_proj(task), refined))
        logit = torch.logit(mixture.clamp(1e-4, 1 - 1e-4)) + self.head(z).squeeze(-1)
        return torch.sigmoid(logit), weights


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------

@dataclass
class GSMoEOutput:
    """Snippet-level outputs for a batch of videos."""

    scores: Tensor          # [B, T] final anomaly score
    coarse: Tensor          # [B, T] task encoder (UR-DMU) score
    expert_scores: Tensor   # [B, E, T]
    gate_weights: Tensor    # [B, T, E] (ones for the single-expert ablation)


@register_model("gsmoe-vad", config=GSMoEConfig(), weights=DEFAULT_WEIGHTS,
                summary="GS-MoE video anomaly detection (class experts + temporal Gaussian splatting)")
class GSMoE(nn.Module):
    """GS-MoE: UR-DMU task encoder -> one expert per anomaly class -> gate fusing their scores."""

    def __init__(self, config: GSMoEConfig | None = None) -> None:
        super().__init__()
        self.config = config or GSMoEConfig()
        self.encoder = TaskEncoder(self.config)
        self.experts = ClassExperts(self.config)
        self.gate = None if self.config.single_expert else ExpertGate(self.config)
        self.feature_stats = FeatureStats(self.config.feature_dim) if self.config.scope_stats else None

    @property
    def class_names(self) -> tuple[str, ...]:
        return ("anomaly",) if self.config.single_expert else self.config.class_names

    def heads(self, task: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Experts and gate on task-aware features: ``(scores, expert_scores, gate_weights)``."""
        expert_scores = self.experts(task)
        if self.gate is None:
            ones = expert_scores.new_ones(task.shape[0], task.shape[1], 1)
            return expert_scores[:, 0], expert_scores, ones
        scores, weights = self.gate(task, expert_scores)
        return scores, expert_scores, weights

    def forward(self, features: Tensor) -> GSMoEOutput:
        """``features`` ``[B, T, D]``, or ``[B, crops, T, D]`` (outputs averaged over crops, as in
        the UCF-Crime/XD-Violence test protocol)."""
        x = _check_features(features, self.config.feature_dim)
        crops = x.shape[1] if x.dim() == 4 else 1
        x = x.reshape(-1, *x.shape[-2:])
        coarse, task = self.encoder(x)
        scores, expert_scores, weights = self.heads(task)
        if crops > 1:
            b = x.shape[0] // crops
            coarse, scores = coarse.view(b, crops, -1).mean(1), scores.view(b, crops, -1).mean(1)
            expert_scores = expert_scores.view(b, crops, *expert_scores.shape[1:]).mean(1)
            weights = weights.view(b, crops, *weights.shape[1:]).mean(1)
        return GSMoEOutput(scores, coarse, expert_scores, weights)


@dataclass(frozen=True)
class MILConfig(Config):
    """Sultani et al. (CVPR 2018): FC 4096-512-32-1 on C3D features, dropout 0.6."""

    feature_dim: int = FeatureConfig().dim
    hidden: tuple[int, ...] = (512, 32)
    dropout: float = 0.6
    features: FeatureConfig = field(default_factory=FeatureConfig)


@register_model("mil-sultani", config=MILConfig(), summary="MIL ranking baseline (Sultani et al. 2018)")
class MILRanking(nn.Module):
    """Per-segment scorer ``s = sigmoid(FC(Dropout(ReLU(FC(Dropout(ReLU(FC(x))))))))``."""

    def __init__(self, config: MILConfig | None = None) -> None:
        super().__init__()
        self.config = config or MILConfig()
        sizes = [self.config.feature_dim, *self.config.hidden, 1]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(pairwise(sizes)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers += [nn.ReLU(), nn.Dropout(self.config.dropout)]
        self.net = nn.Sequential(*layers, nn.Sigmoid())

    def forward(self, features: Tensor) -> Tensor:
        x = _check_features(features, self.config.feature_dim)
        scores = self.net(x).squeeze(-1)
        return scores.mean(1) if x.dim() == 4 else scores
