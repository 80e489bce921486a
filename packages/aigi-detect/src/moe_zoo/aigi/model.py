"""OmniAID (arXiv 2511.08423): semantic SVD-subspace experts chosen per image by a router, plus a
universal artifact expert that is always on; registered in the zoo.

For an image ``x`` (normalised for the backbone):

1. routing feature ``f = pool(B_frozen(x))`` from the untouched pretrained backbone (no gradient);
2. router ``z = W_2 ReLU(W_1 f + b_1)`` (hidden 64), semantic experts ``S = TopK(z, k)`` with gates
   ``g_s = softmax(z_S)_s`` (softmax over the chosen logits, moe-core ``TopKRouter``
   with ``softmax_after_topk``); the artifact expert (the last one) gets ``g_A = 1``;
3. every adapted map of the trainable copy computes ``y = x W_main^T + sum_{k in S + {A}} g_k
   ((x V_k^T) * S_k) U_k^T + b`` (:class:`~moe_zoo.aigi.svd.SVDExpertLinear`), one decision per
   image for every layer; by default minus ``(G - 1) ((x V_c^T) * S_c) U_c^T`` with ``G = sum_k
   g_k`` and ``(U_c, S_c, V_c)`` the initial residual chunk, so that the chunk is counted once
   (``chunk_once``; identical to the official formula when ``G = 1``, see ``svd.py``);
4. ``logits = W_h pool(B_adapted(x)) + b_h`` (2 classes: real, AI-generated).

Stage 1 ("hard sampling") replaces step 2 by ``g_e = 1`` for the expert being trained. Variants
of the same class give the benchmark's ablations: ``artifact_expert=False`` (semantic experts
only) and ``domains=()`` (one always-on low-rank adapter, no router).
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from moe_zoo.aigi.backbones import adapted_copy, build_backbone
from moe_zoo.aigi.svd import replace_layers
from moe_zoo.core import Config, InputError, RoutingResult, TopKRouter, register_model
from moe_zoo.core.checks import check_ints, check_reals

WEIGHTS = "moe_zoo.aigi:weights/omniaid-mnv2.safetensors"
DEFAULT_DOMAINS = ("human_animal", "nature", "urban_object")
_TRAINED = (".U_experts.", ".S_experts.", ".V_experts.")
_TRAINED_PREFIXES = ("router_mlp.", "router.", "head.")


@dataclass(frozen=True)
class OmniAIDConfig(Config):
    """OmniAID hyper-parameters; defaults are the paper's GenImage config (rank 4, top-1, router
    hidden 64, lambda_orth 0.01, lambda_balance 0.1, lambda_router 0.1) with three semantic domains."""

    backbone: str = "mobilenet_v2"
    backbone_weights: str = ""
    backbone_options: str = "{}"
    backbone_seed: int = 0
    image_size: int = 64
    domains: tuple[str, ...] = DEFAULT_DOMAINS
    artifact_expert: bool = True
    chunk_once: bool = True        # False: the official sum, which counts the residual chunk per expert (svd.py)
    rank: int = 4
    top_k: int = 1
    router_hidden: int = 64
    label_smoothing: float = 0.1
    lambda_orth: float = 0.01
    lambda_balance: float = 0.1
    lambda_router: float = 0.1

    def __post_init__(self) -> None:
        check_ints("OmniAIDConfig", self, {"image_size": 16, "rank": 1, "top_k": 1, "router_hidden": 1,
                                           "backbone_seed": 0})
        check_reals("OmniAIDConfig", self, non_negative=("label_smoothing", "lambda_orth", "lambda_balance",
                                                          "lambda_router"))
        if self.label_smoothing >= 1:
            raise InputError(f"OmniAIDConfig.label_smoothing must be < 1, got {self.label_smoothing}")
        if not self.domains and not self.artifact_expert:
            raise InputError("OmniAID needs at least one expert: give domains or keep the artifact expert")
        if len(set(self.domains)) != len(self.domains):
            raise InputError(f"domains must be distinct, got {self.domains}")
        if self.domains and self.top_k > len(self.domains):
            raise InputError(f"top_k must be <= the number of semantic domains ({len(self.domains)}), got {self.top_k}")

    @property
    def n_semantic(self) -> int:
        return len(self.domains)

    @property
    def n_experts(self) -> int:
        return self.n_semantic + int(self.artifact_expert)

    @property
    def artifact_index(self) -> int | None:
        return self.n_semantic if self.artifact_expert else None


@dataclass
class DetectorOutput:
    """``logits [B, 2]`` (real, fake); ``gates [B, E]`` applied to the experts (semantic then
    artifact); ``routing`` over the semantic experts (None in stage 1 or without a router)."""

    logits: Tensor
    gates: Tensor
    routing: RoutingResult | None = None
    extras: dict = field(default_factory=dict)

    @property
    def prob_fake(self) -> Tensor:
        return self.logits.softmax(-1)[:, 1]


class OmniAID(nn.Module):
    """OmniAID detector (see the module docstring). ``forward(images)`` takes ``float [B, 3, H, W]``
    in [0, 1] at ``config.image_size``. Its ``state_dict`` holds only the trained tensors (expert
    ``U, S, V``, router, head): the frozen backbone is rebuilt from the config."""

    def __init__(self, config: OmniAIDConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or OmniAIDConfig()
        backbone = build_backbone(config.backbone, config.backbone_weights, config.backbone_options,
                                  config.backbone_seed)
        self._pool, self.dim = backbone.pool, backbone.dim
        self.frozen = backbone.network
        self.adapted = adapted_copy(backbone)
        self.svd_layers = replace_layers(self.adapted, backbone.select, config.n_experts, config.rank,
                                         config.chunk_once)
        self.register_buffer("mean", torch.tensor(backbone.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(backbone.std).view(1, 3, 1, 1), persistent=False)
        if config.n_semantic:
            self.router_mlp = nn.Sequential(nn.Linear(self.dim, config.router_hidden), nn.ReLU())
            self.router = TopKRouter(config.router_hidden, config.n_semantic, config.top_k, softmax_after_topk=True)
        self.head = nn.Linear(self.dim, 2)
        self.hard_expert: int | None = None
        self.registry_name = "omniaid-mnv2"   # any OmniAID name rebuilds it: the stored config decides

    # -- the trained tensors only -------------------------------------------------------------
    @staticmethod
    def is_trained_key(key: str) -> bool:
        return any(part in key for part in _TRAINED) or key.startswith(_TRAINED_PREFIXES)

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        full = super().state_dict(*args, destination=None, prefix=prefix, keep_vars=keep_vars)
        kept = OrderedDict((k, v) for k, v in full.items() if self.is_trained_key(k[len(prefix):]))
        if destination is not None:
            destination.update(kept)
            return destination
        return kept

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        expected = set(self.state_dict())
        if strict and set(state_dict) != expected:
            missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
            raise RuntimeError(f"OmniAID state mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
        result = super().load_state_dict(state_dict, strict=False, assign=assign)
        return result._replace(missing_keys=[k for k in result.missing_keys if k in expected])

    def train(self, mode: bool = True) -> OmniAID:
        super().train(mode)
        self.frozen.eval()        # batch norm statistics of the pretrained backbone stay as they are
        self.adapted.eval()
        return self

    # -- stages -------------------------------------------------------------------------------
    @contextmanager
    def hard_sampling(self, expert: int):
        """Stage 1: every image uses expert ``expert`` alone with gate 1."""
        if not 0 <= expert < self.config.n_experts:
            raise InputError(f"expert must be in [0, {self.config.n_experts}), got {expert}")
        previous, self.hard_expert = self.hard_expert, expert
        try:
            yield self
        finally:
            self.hard_expert = previous

    def expert_parameters(self, expert: int) -> list[nn.Parameter]:
        """Expert ``expert``'s ``U, S, V`` in every adapted layer."""
        return [p for layer in self.svd_layers for p in layer.expert_parameters(expert)]

    def router_parameters(self) -> list[nn.Parameter]:
        return list(self.router_mlp.parameters()) + list(self.router.parameters()) if self.config.n_semantic else []

    # -- forward ------------------------------------------------------------------------------
    def normalise(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise InputError(f"OmniAID expects images [B, 3, H, W], got shape {tuple(images.shape)}")
        return (images - self.mean) / self.std

    def route(self, x: Tensor) -> tuple[Tensor, RoutingResult | None]:
        """Gates ``[B, E]`` for normalised images ``x`` (stage-1 one-hot, or router + artifact)."""
        config, batch = self.config, x.shape[0]
        gates = x.new_zeros(batch, config.n_experts)
        if self.hard_expert is not None:
            gates[:, self.hard_expert] = 1.0
            return gates, None
        routing = None
        if config.n_semantic:
            with torch.no_grad():
                feature = self._pool(self.frozen, x)
            routing = self.router(self.router_mlp(feature))
            gates = torch.cat([routing.dense_weights().to(x.dtype), gates[:, config.n_semantic:]], dim=1)
        if config.artifact_expert:
            gates = gates.index_fill(1, torch.tensor([config.n_semantic], device=x.device), 1.0)
        return gates, routing

    def _adapted_pass(self, x: Tensor, gates: Tensor) -> Tensor:
        for layer in self.svd_layers:
            layer.gates = gates
        try:
            return self._pool(self.adapted, x)
        finally:
            for layer in self.svd_layers:
                layer.gates = None

    def adapted_features(self, x: Tensor, gates: Tensor) -> Tensor:
        """``pool(B_adapted(x))`` with per-image ``gates [B, E]``. Images that share a gate row (stage
        1; the router's top-1 choices) run as one group with merged weights (plain convolutions,
        :class:`~moe_zoo.aigi.svd.SVDExpertLinear`); the adapted network's batch norms use their
        stored statistics, so grouping changes nothing but float rounding. When the gates carry
        gradients, or every image has its own row, the per-image low-rank path runs instead."""
        if gates.requires_grad and torch.is_grad_enabled():
            return self._adapted_pass(x, gates)
        rows, inverse = torch.unique(gates.detach(), dim=0, return_inverse=True)
        if len(rows) == len(gates) > 1:
            return self._adapted_pass(x, gates)
        if len(rows) == 1:
            return self._adapted_pass(x, rows)
        members = [torch.nonzero(inverse == i).squeeze(1) for i in range(len(rows))]
        features = torch.cat([self._adapted_pass(x[m], rows[i:i + 1]) for i, m in enumerate(members)])
        return features[torch.argsort(torch.cat(members))]

    def forward(self, images: Tensor) -> DetectorOutput:
        x = self.normalise(images)
        gates, routing = self.route(x)
        return DetectorOutput(self.head(self.adapted_features(x, gates)), gates, routing)


register_model("omniaid-mnv2", config=OmniAIDConfig(), weights=WEIGHTS,
               summary="OmniAID on ImageNet MobileNetV2 (3 semantic experts + artifact expert, rank 4, top-1)")(OmniAID)
register_model("omniaid-clip", config=OmniAIDConfig(backbone="hf-clip", image_size=224),
               summary="OmniAID on a transformers CLIP vision tower (pass backbone_weights=<folder>)")(OmniAID)
register_model("omniaid-vit", config=OmniAIDConfig(backbone="timm:vit_base_patch16_224", image_size=224),
               summary="OmniAID on a timm ViT (pass backbone_weights=<checkpoint>)")(OmniAID)
