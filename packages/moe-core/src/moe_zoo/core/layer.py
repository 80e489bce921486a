"""The MoE layer: router + expert bank (+ shared and zero-computation experts) + dispatch."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor, nn

from moe_zoo.core.balance import load_balancing_loss, router_z_loss
from moe_zoo.core.config import Config
from moe_zoo.core.dispatch import expert_ffn, make_plan, resolve_backend
from moe_zoo.core.errors import InputError
from moe_zoo.core.experts import ExpertBank, SharedExperts, ZeroComputeExperts
from moe_zoo.core.moe_config_checks import check_moe_config
from moe_zoo.core.routing import (
    DenseToSparseRouter,
    ExpertChoiceRouter,
    HashRouter,
    RoutingResult,
    TopKRouter,
    TopPRouter,
    limit_capacity,
)


@dataclass(frozen=True)
class MoEConfig(Config):
    """Everything that defines an :class:`MoELayer`.

    The router sees ``n_experts + n_zero + n_copy + n_constant`` experts; ids past the FFN
    experts are MoE++ zero-computation experts (``n_zero`` doubles as UniMoE's null experts).
    """

    d_model: int
    d_hidden: int
    n_experts: int
    top_k: int = 2
    router: str = "topk"
    # top-k options
    score: str = "softmax"
    renormalize: bool = True
    softmax_after_topk: bool = False
    n_groups: int | None = None
    topk_groups: int | None = None
    routed_scale: float = 1.0
    balance_bias: bool = False
    jitter: float = 0.0
    always_on: tuple[int, ...] = ()
    # top-p / expert-choice / hash / dense-to-sparse options
    top_p: float = 0.7
    max_k: int | None = None
    expert_capacity: float = 2.0
    hash_vocab_size: int | None = None
    dts_anneal_steps: int = 10_000
    # experts
    activation: str = "swiglu"
    bias: bool = False
    n_shared_experts: int = 0
    shared_hidden: int | None = None
    shared_gate: bool = False
    n_zero: int = 0
    n_copy: int = 0
    n_constant: int = 0
    # dispatch
    capacity_factor: float | None = None
    backend: str = "auto"

    def __post_init__(self) -> None:
        check_moe_config(self)

    @property
    def n_routed(self) -> int:
        """Experts the router chooses among (FFN + zero-computation)."""
        return self.n_experts + self.n_zero + self.n_copy + self.n_constant


@dataclass
class MoEOutput:
    """What an MoE layer returns: the output and the routing; ``losses`` are computed on first use
    (``"balance"``: Switch load-balancing loss, ``"z"``: router z-loss), so inference pays nothing."""

    output: Tensor
    routing: RoutingResult

    @cached_property
    def losses(self) -> dict[str, Tensor]:
        losses = {"balance": load_balancing_loss(self.routing)}
        if self.routing.logits is not None:
            losses["z"] = router_z_loss(self.routing.logits)
        return losses

    def aux_loss(self, balance: float = 0.01, z: float = 0.0) -> Tensor:
        """``balance * L_balance + z * L_z``."""
        total = self.output.new_zeros((), dtype=torch.float32)
        if balance:
            total = total + balance * self.losses["balance"]
        if z and "z" in self.losses:
            total = total + z * self.losses["z"]
        return total


def build_router(config: MoEConfig) -> nn.Module:
    n, d = config.n_routed, config.d_model
    if config.router == "topk":
        return TopKRouter(d, n, config.top_k, score=config.score, renormalize=config.renormalize,
                          softmax_after_topk=config.softmax_after_topk, jitter=config.jitter,
                          n_groups=config.n_groups, topk_groups=config.topk_groups,
                          balance_bias=config.balance_bias, always_on=config.always_on, scale=config.routed_scale)
    if config.router == "topp":
        return TopPRouter(d, n, config.top_p, max_k=config.max_k, renormalize=config.renormalize,
                          jitter=config.jitter, always_on=config.always_on)
    if config.router == "expert_choice":
        return ExpertChoiceRouter(d, n, config.expert_capacity)
    if config.router == "hash":
        mode = "token_id" if config.hash_vocab_size else "feature"
        return HashRouter(n, mode=mode, vocab_size=config.hash_vocab_size, d_model=d)
    return DenseToSparseRouter(d, n, anneal_steps=config.dts_anneal_steps)


class MoELayer(nn.Module):
    """A sparse MoE feed-forward layer: ``y = sum_{e in S(x)} g_e(x) E_e(x) (+ shared(x))``.

    ``forward(x)`` takes ``[..., d_model]`` and returns :class:`MoEOutput` whose ``output`` has
    the input's shape; ``losses`` holds the balance loss (``"balance"``, over the routed FFN and
    zero-computation experts) and the router z-loss (``"z"``) as values, not module state.
    """

    def __init__(self, config: MoEConfig, *, n_local_experts: int | None = None) -> None:
        """``n_local_experts``: experts held by this module (expert parallelism); default all."""
        super().__init__()
        self.config = config
        self.router = build_router(config)
        self.experts = ExpertBank(n_local_experts or config.n_experts, config.d_model, config.d_hidden,
                                  activation=config.activation, bias=config.bias)
        special = config.n_zero + config.n_copy + config.n_constant
        self.zero_compute = (ZeroComputeExperts(config.d_model, n_zero=config.n_zero, n_copy=config.n_copy,
                                                n_constant=config.n_constant) if special else None)
        self.shared = (SharedExperts(config.d_model, config.shared_hidden or config.d_hidden,
                                     config.n_shared_experts, activation=config.activation,
                                     gated=config.shared_gate, bias=config.bias)
                       if config.n_shared_experts else None)
        # Plain dropless top-k over FFN experts only: every slot is valid, no filtering needed.
        self._all_valid = config.router in ("topk", "hash") and not special and config.capacity_factor is None

    def route(self, x: Tensor, token_ids: Tensor | None = None) -> RoutingResult:
        routing = self.router_decision(x, token_ids)
        if self.config.capacity_factor is not None:
            routing = limit_capacity(routing, self.config.capacity_factor, self.config.n_experts)
        return routing

    def router_decision(self, x: Tensor, token_ids: Tensor | None = None) -> RoutingResult:
        """The router's own choice for tokens ``x`` ``[T, d]``, before any capacity limit."""
        return self.router(x, token_ids) if isinstance(self.router, HashRouter) else self.router(x)

    def check_input(self, x: Tensor) -> None:
        """An :class:`InputError` unless ``x`` is floating-point ``[..., d_model]``."""
        if not x.is_floating_point():
            raise InputError(f"{type(self).__name__}: expected floating-point tokens, got dtype {x.dtype}")
        if x.shape[-1] != self.config.d_model:
            raise InputError(f"{type(self).__name__}: expected last dimension {self.config.d_model}, "
                             f"got shape {tuple(x.shape)}")

    def forward(self, x: Tensor, token_ids: Tensor | None = None, routing: RoutingResult | None = None) -> MoEOutput:
        self.check_input(x)
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        routing = routing if routing is not None else self.route(flat, token_ids)
        plan = make_plan(routing.indices, routing.weights, self.config.n_experts, all_valid=self._all_valid)
        out = self._add_unsharded_experts(flat, routing, expert_ffn(flat, self.experts, plan, self.config.backend))
        return MoEOutput(out.reshape(shape), routing)

    def _add_unsharded_experts(self, flat: Tensor, routing: RoutingResult, out: Tensor) -> Tensor:
        """Add the zero-computation experts' and the shared experts' contributions."""
        if self.zero_compute is not None:
            n = self.config.n_experts
            local = (routing.indices - n).masked_fill(routing.indices < n, -1)
            out = out + self.zero_compute(flat, local, routing.weights.to(flat.dtype))
        if self.shared is not None:
            out = out + self.shared(flat)
        return out

    def backend_for(self, x: Tensor) -> str:
        """The dispatch backend this layer will use for ``x`` (resolves ``"auto"``)."""
        return resolve_backend(self.config.backend, self.experts, x.device, x.dtype)
