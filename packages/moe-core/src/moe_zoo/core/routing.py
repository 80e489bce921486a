"""Routers: every one returns a :class:`RoutingResult`.

A routing is stored token-major as ``indices``/``weights`` of shape ``[tokens, slots]``; an
unused slot has index ``-1`` and weight ``0`` (top-p, expert-choice, dense-to-sparse and
capacity dropping give tokens different numbers of experts). Expert ids ``>= n_ffn`` in a
layer with zero-computation experts address those special experts (see ``layer.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moe_zoo.core.errors import InputError

SCORE_FUNCTIONS = ("softmax", "sigmoid")


@dataclass(frozen=True)
class RoutingResult:
    """One routing decision for a batch of tokens.

    indices:            [T, K] expert id per slot, -1 where a slot is unused
    weights:            [T, K] combine weight per slot (0 where unused)
    probs:              [T, E] full router probabilities (input of the balance losses)
    logits:             [T, E] raw router logits (input of the z-loss), or None
    expert_counts:      [E] number of tokens each expert received (long)
    experts_per_token:  [T] number of experts each token used (long)
    """

    indices: Tensor
    weights: Tensor
    probs: Tensor
    logits: Tensor | None
    expert_counts: Tensor
    experts_per_token: Tensor

    @property
    def num_experts(self) -> int:
        return self.probs.shape[-1]

    @property
    def num_tokens(self) -> int:
        return self.indices.shape[0]

    @classmethod
    def build(cls, indices: Tensor, weights: Tensor, probs: Tensor, logits: Tensor | None) -> RoutingResult:
        """Fill in the counts from ``indices`` (``-1`` marks unused slots)."""
        valid = indices >= 0
        n_experts = probs.shape[-1]
        flat = indices.masked_fill(~valid, n_experts).reshape(-1)
        counts = torch.bincount(flat, minlength=n_experts + 1)[:n_experts]
        weights = weights.masked_fill(~valid, 0.0)
        return cls(indices, weights, probs, logits, counts, valid.sum(-1))

    def dense_weights(self) -> Tensor:
        """[T, E] combine weights (zero for experts a token does not use)."""
        dense = self.weights.new_zeros(self.num_tokens, self.num_experts + 1)
        slot_ids = self.indices.masked_fill(self.indices < 0, self.num_experts)
        dense.scatter_add_(1, slot_ids, self.weights)
        return dense[:, : self.num_experts]


def _check_tokens(x: Tensor, d_model: int, who: str) -> Tensor:
    if x.shape[-1] != d_model:
        raise InputError(f"{who}: expected tokens with last dimension {d_model}, got shape {tuple(x.shape)}")
    return x.reshape(-1, d_model)


class LinearRouter(nn.Module):
    """Shared parts of learned routers: a bias-free linear gate computed in ``router_dtype``."""

    def __init__(self, d_model: int, n_experts: int, *, router_dtype: torch.dtype | None = torch.float32,
                 jitter: float = 0.0) -> None:
        super().__init__()
        if n_experts < 1 or d_model < 1:
            raise InputError(f"n_experts and d_model must be >= 1, got {n_experts} and {d_model}")
        if not (math.isfinite(jitter) and jitter >= 0):
            raise InputError(f"jitter must be a finite number >= 0, got {jitter}")
        self.d_model, self.n_experts = d_model, n_experts
        self.router_dtype = router_dtype
        self.jitter = jitter
        self.weight = nn.Parameter(torch.empty(n_experts, d_model))
        nn.init.normal_(self.weight, std=d_model**-0.5)

    def compute_logits(self, x: Tensor) -> Tensor:
        """``logits = x W^T`` (Switch-style multiplicative input jitter ``x * U(1-eps, 1+eps)`` in training)."""
        x = _check_tokens(x, self.d_model, type(self).__name__)
        if self.training and self.jitter > 0:
            x = x * torch.empty_like(x).uniform_(1.0 - self.jitter, 1.0 + self.jitter)
        dtype = self.router_dtype or x.dtype
        return F.linear(x.to(dtype), self.weight.to(dtype))


class TopKRouter(LinearRouter):
    """Token-choice top-k routing (Switch, GShard, Mixtral, Qwen-MoE, DeepSeek-V3).

    - ``score="softmax"``: ``p = softmax(x W^T)``; choose ``TopK(p)``; weights ``p_i`` for the
      chosen, renormalised ``p_i / sum_{j in TopK} p_j`` when ``renormalize``.
    - ``softmax_after_topk=True``: ``TopK`` on the logits, then softmax over the k chosen logits.
    - ``score="sigmoid"`` (DeepSeek-V3): ``s = sigmoid(x W^T)``; weights ``s_i`` over the chosen,
      renormalised when ``renormalize``; ``probs`` reported as ``s / sum(s)``.
    - group-limited (DeepSeek-V3): experts split into ``n_groups``; a group scores the sum of its
      top-2 selection scores; only the best ``topk_groups`` groups are eligible.
    - auxiliary-loss-free balancing (DeepSeek-V3): when ``balance_bias`` is on, selection uses
      ``TopK(s_i + b_i)`` while the weights still use ``s_i``; ``b`` is a buffer updated outside
      backprop by :meth:`update_bias` (``b_i += u * sign(mean_load - load_i)``).
    - ``always_on``: expert ids added to every token's selection (UniMoE-Audio's shared experts
      inside the router); renormalisation runs over the union.
    - ``scale``: multiplies the final weights (DeepSeek-V3's ``routed_scaling_factor``).
    """

    def __init__(self, d_model: int, n_experts: int, top_k: int, *, score: str = "softmax",
                 renormalize: bool = True, softmax_after_topk: bool = False, jitter: float = 0.0,
                 n_groups: int | None = None, topk_groups: int | None = None, balance_bias: bool = False,
                 always_on: tuple[int, ...] = (), scale: float = 1.0,
                 router_dtype: torch.dtype | None = torch.float32) -> None:
        super().__init__(d_model, n_experts, router_dtype=router_dtype, jitter=jitter)
        if score not in SCORE_FUNCTIONS:
            raise InputError(f"score must be one of {SCORE_FUNCTIONS}, got {score!r}")
        if not (math.isfinite(scale) and scale > 0):
            raise InputError(f"scale must be a finite number > 0, got {scale}")
        selectable = n_experts - len(always_on)
        if not 1 <= top_k <= selectable:
            raise InputError(f"top_k must be in [1, {selectable}], got {top_k}")
        if n_groups is not None:
            if n_experts % n_groups or not (topk_groups and 1 <= topk_groups <= n_groups):
                raise InputError(f"n_groups={n_groups} must divide n_experts={n_experts}, 1<=topk_groups<=n_groups")
            if always_on:
                raise InputError("group-limited routing and always_on experts cannot be combined")
        if softmax_after_topk and score != "softmax":
            raise InputError("softmax_after_topk needs score='softmax'")
        if any(not 0 <= i < n_experts for i in always_on):
            raise InputError(f"always_on ids must be in [0, {n_experts}), got {always_on}")
        self.top_k, self.score, self.renormalize = top_k, score, renormalize
        self.softmax_after_topk, self.scale = softmax_after_topk, scale
        self.n_groups, self.topk_groups = n_groups, topk_groups
        self.always_on = tuple(always_on)
        self.register_buffer("expert_bias", torch.zeros(n_experts) if balance_bias else None, persistent=True)
        self.register_buffer("load_accumulator", torch.zeros(n_experts) if balance_bias else None, persistent=False)

    def forward(self, x: Tensor) -> RoutingResult:
        logits = self.compute_logits(x)
        if self.score == "softmax":
            scores = logits.softmax(-1)
            probs = scores
        else:
            scores = logits.sigmoid()
            probs = scores / scores.sum(-1, keepdim=True)
        choice = scores.detach()
        if self.expert_bias is not None:
            choice = choice + self.expert_bias
        if self.always_on:
            choice = choice.index_fill(-1, torch.tensor(self.always_on, device=x.device), float("-inf"))
        if self.n_groups is not None:
            choice = self._mask_groups(choice)
        indices = choice.topk(self.top_k, dim=-1).indices
        if self.always_on:
            extra = torch.tensor(self.always_on, device=x.device).expand(indices.shape[0], -1)
            indices = torch.cat([indices, extra], dim=-1)
        if self.softmax_after_topk:
            weights = logits.gather(-1, indices).softmax(-1)
        else:
            weights = scores.gather(-1, indices)
            if self.renormalize:
                weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
        if self.scale != 1.0:
            weights = weights * self.scale
        result = RoutingResult.build(indices, weights, probs, logits)
        if self.load_accumulator is not None and self.training:
            self.load_accumulator += result.expert_counts.to(self.load_accumulator.dtype)
        return result

    def _mask_groups(self, choice: Tensor) -> Tensor:
        grouped = choice.view(choice.shape[0], self.n_groups, -1)
        group_scores = grouped.topk(min(2, grouped.shape[-1]), dim=-1).values.sum(-1)
        keep = torch.zeros_like(group_scores, dtype=torch.bool)
        keep.scatter_(1, group_scores.topk(self.topk_groups, dim=-1).indices, True)
        return grouped.masked_fill(~keep[..., None], float("-inf")).view_as(choice)

    @torch.no_grad()
    def update_bias(self, counts: Tensor | None = None, rate: float = 1e-3) -> None:
        """Auxiliary-loss-free update ``b_i += rate * sign(mean(load) - load_i)``.

        ``counts`` defaults to the loads accumulated by training forwards since the last update
        (then reset). Call it after ``optimizer.step()`` or from :func:`attach_bias_updates`.
        """
        if self.expert_bias is None:
            raise InputError("update_bias needs a router built with balance_bias=True")
        load = self.load_accumulator if counts is None else counts.to(self.expert_bias)
        if load.sum() > 0:
            self.expert_bias += rate * torch.sign(load.mean() - load)
            self.expert_bias -= self.expert_bias.mean()  # only differences matter; keep it centred
        if counts is None:
            self.load_accumulator.zero_()


class TopPRouter(LinearRouter):
    """Dynamic top-p routing ("Harder Tasks Need More Experts"; UniMoE-Audio).

    ``p = softmax(x W^T)``; sort descending; keep the smallest prefix whose cumulative
    probability reaches ``top_p``: expert ``j`` (in sorted order) is kept iff
    ``sum_{i<j} p_(i) < top_p``, capped at ``max_k`` experts. Weights are the raw probabilities
    (``renormalize=False``, as in Dynamic-MoE) or renormalised over the selected set (UniMoE).
    ``always_on`` experts are excluded from the top-p race and added to every token.
    """

    def __init__(self, d_model: int, n_experts: int, top_p: float, *, max_k: int | None = None,
                 renormalize: bool = True, jitter: float = 0.0, always_on: tuple[int, ...] = (),
                 router_dtype: torch.dtype | None = torch.float32) -> None:
        super().__init__(d_model, n_experts, router_dtype=router_dtype, jitter=jitter)
        if not 0.0 < top_p <= 1.0:
            raise InputError(f"top_p must be in (0, 1], got {top_p}")
        dynamic = n_experts - len(always_on)
        max_k = dynamic if max_k is None else max_k
        if not 1 <= max_k <= dynamic:
            raise InputError(f"max_k must be in [1, {dynamic}], got {max_k}")
        self.top_p, self.max_k, self.renormalize = top_p, max_k, renormalize
        self.always_on = tuple(always_on)

    def forward(self, x: Tensor) -> RoutingResult:
        logits = self.compute_logits(x)
        probs = logits.softmax(-1)
        race = probs.detach()
        if self.always_on:
            race = race.index_fill(-1, torch.tensor(self.always_on, device=x.device), -1.0)
        sorted_p, order = race.sort(dim=-1, descending=True)
        sorted_p, order = sorted_p[:, : self.max_k], order[:, : self.max_k]
        before = sorted_p.cumsum(-1) - sorted_p
        keep = before < self.top_p
        indices = order.masked_fill(~keep, -1)
        if self.always_on:
            extra = torch.tensor(self.always_on, device=x.device).expand(indices.shape[0], -1)
            indices = torch.cat([indices, extra], dim=-1)
            keep = torch.cat([keep, torch.ones_like(extra, dtype=torch.bool)], dim=-1)
        weights = probs.gather(-1, indices.clamp_min(0)) * keep
        if self.renormalize:
            weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
        return RoutingResult.build(indices, weights, probs, logits)


class ExpertChoiceRouter(LinearRouter):
    """Expert-choice routing (Zhou et al., 2022): each expert takes its top-``C`` tokens.

    ``S = softmax(X W^T)`` over experts, ``[T, E]``; ``G, I = TopK(S^T, C)`` per expert with
    capacity ``C = ceil(T * capacity_factor / E)`` (``capacity_factor`` = average experts per
    token). A token's weight for expert ``e`` is ``S[t, e]`` when ``e`` chose it; a token may be
    chosen by zero or several experts.
    """

    def __init__(self, d_model: int, n_experts: int, capacity_factor: float = 2.0, *,
                 router_dtype: torch.dtype | None = torch.float32) -> None:
        super().__init__(d_model, n_experts, router_dtype=router_dtype)
        if capacity_factor <= 0:
            raise InputError(f"capacity_factor must be > 0, got {capacity_factor}")
        self.capacity_factor = capacity_factor

    def forward(self, x: Tensor) -> RoutingResult:
        logits = self.compute_logits(x)
        probs = logits.softmax(-1)
        return routing_from_mask(self.select(probs.detach()), probs, logits)

    def select(self, probs: Tensor) -> Tensor:
        """``[T, E]`` mask of the tokens each expert takes: its top ``C`` of ``probs`` (the batch-wide
        decision; expert parallelism calls it on every rank's probabilities at once)."""
        tokens = probs.shape[0]
        capacity = min(tokens, max(1, math.ceil(tokens * self.capacity_factor / self.n_experts)))
        chosen = probs.t().topk(capacity, dim=-1).indices  # [E, C]
        mask = torch.zeros_like(probs, dtype=torch.bool)
        mask.scatter_(0, chosen.t(), True)
        return mask


def routing_from_mask(mask: Tensor, probs: Tensor, logits: Tensor | None, weights: Tensor | None = None) -> RoutingResult:
    """Token-major routing from a dense ``[T, E]`` selection mask (weights default to ``probs``)."""
    per_token = mask.sum(-1)
    slots = max(int(per_token.max().item()) if per_token.numel() else 0, 1)
    order = mask.to(torch.int8).argsort(dim=-1, descending=True, stable=True)[:, :slots]
    valid = mask.gather(-1, order)
    source = probs if weights is None else weights
    return RoutingResult.build(order.masked_fill(~valid, -1), source.gather(-1, order) * valid, probs, logits)


class HashRouter(nn.Module):
    """Hash routing (Roller et al., 2021): a fixed, parameter-free map to one expert.

    ``mode="token_id"``: ``expert = table[token_id]`` with a random balanced table (token ids
    are dealt round-robin to experts after a seeded random permutation). ``mode="feature"``:
    a locality-sensitive hash ``expert = bits(sign(x R)) mod E`` with a fixed Gaussian ``R``.
    Weights are 1; there is nothing to balance or learn.
    """

    def __init__(self, n_experts: int, *, mode: str = "token_id", vocab_size: int | None = None,
                 d_model: int | None = None, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.n_experts, self.mode = n_experts, mode
        if mode == "token_id":
            if not vocab_size:
                raise InputError("HashRouter(mode='token_id') needs vocab_size")
            table = torch.empty(vocab_size, dtype=torch.long)
            table[torch.randperm(vocab_size, generator=generator)] = torch.arange(vocab_size) % n_experts
            self.register_buffer("table", table)
        elif mode == "feature":
            if not d_model:
                raise InputError("HashRouter(mode='feature') needs d_model")
            bits = max(1, math.ceil(math.log2(n_experts)) + 4)
            self.register_buffer("projection", torch.randn(d_model, bits, generator=generator))
            self.register_buffer("powers", 2 ** torch.arange(bits))
        else:
            raise InputError(f"HashRouter mode must be 'token_id' or 'feature', got {mode!r}")

    def forward(self, x: Tensor, token_ids: Tensor | None = None) -> RoutingResult:
        if self.mode == "token_id":
            if token_ids is None:
                raise InputError("HashRouter(mode='token_id') needs token_ids")
            ids = token_ids.reshape(-1)
            if ids.numel() and (ids.min() < 0 or ids.max() >= self.table.numel()):
                raise InputError(f"token ids must be in [0, {self.table.numel()})")
            experts = self.table[ids]
        else:
            flat = _check_tokens(x, self.projection.shape[0], "HashRouter")
            code = ((flat.detach().to(self.projection) @ self.projection) > 0).long() @ self.powers
            experts = code % self.n_experts
        probs = F.one_hot(experts, self.n_experts).to(torch.float32)
        return RoutingResult.build(experts[:, None], torch.ones_like(probs[:, :1]), probs, None)


class DenseToSparseRouter(LinearRouter):
    """EvoMoE's dense-to-sparse gate (DTS-Gate).

    ``g = GumbelSoftmax(log softmax(x W^T), tau)``; gate values below ``threshold`` are zeroed,
    so with a high temperature every expert is active (dense) and as ``tau`` falls the gate
    becomes sparse. ``tau`` follows a cosine schedule from ``tau_max`` to ``tau_min`` over
    ``anneal_steps`` calls of :meth:`step`: ``tau_t = tau_min + (tau_max - tau_min) (1 + cos(pi t / T)) / 2``.
    In eval mode the gate falls back to top-1 on the plain softmax.
    """

    def __init__(self, d_model: int, n_experts: int, *, tau_max: float = 2.0, tau_min: float = 0.3,
                 threshold: float = 0.02, anneal_steps: int = 10_000,
                 router_dtype: torch.dtype | None = torch.float32) -> None:
        super().__init__(d_model, n_experts, router_dtype=router_dtype)
        if not 0 < tau_min <= tau_max or anneal_steps < 1 or not 0 <= threshold < 1:
            raise InputError("need 0 < tau_min <= tau_max, anneal_steps >= 1, 0 <= threshold < 1")
        self.tau_max, self.tau_min, self.threshold, self.anneal_steps = tau_max, tau_min, threshold, anneal_steps
        self.register_buffer("progress", torch.zeros((), dtype=torch.long))

    @property
    def temperature(self) -> float:
        frac = min(int(self.progress), self.anneal_steps) / self.anneal_steps
        return self.tau_min + (self.tau_max - self.tau_min) * 0.5 * (1.0 + math.cos(math.pi * frac))

    def step(self, n: int = 1) -> None:
        """Advance the temperature schedule (call once per optimizer step)."""
        self.progress += n

    def forward(self, x: Tensor) -> RoutingResult:
        logits = self.compute_logits(x)
        probs = logits.softmax(-1)
        if not self.training:
            top = probs.max(-1)
            return RoutingResult.build(top.indices[:, None], top.values[:, None], probs, logits)
        gates = F.gumbel_softmax(logits.log_softmax(-1), tau=self.temperature, hard=False)
        mask = gates >= self.threshold
        mask.scatter_(-1, gates.argmax(-1, keepdim=True), True)  # never leave a token without an expert
        return routing_from_mask(mask, probs, logits, weights=gates)


class SoftGate(nn.Module):
    """Dense softmax gate over whole experts (MMoE / PLE task gates, DriftMoE's router).

    ``g(x) = softmax(MLP(x) / T)`` with every expert active; ``hidden`` gives the MLP's hidden
    widths (``()``: one linear layer, ``(256, 128)``: Linear-ReLU-Dropout-Linear-ReLU-Linear).
    ``result.weights``/``probs`` are ``[B, E]``, ``result.logits`` the raw scores, and
    ``result.indices[b] = (0..E-1)``; :meth:`mix` combines stacked expert outputs.
    """

    def __init__(self, d_in: int, n_experts: int, *, hidden: int | tuple[int, ...] = (), temperature: float = 1.0,
                 dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise InputError(f"temperature must be > 0, got {temperature}")
        self.d_in, self.n_experts, self.temperature = d_in, n_experts, temperature
        widths = (hidden,) if isinstance(hidden, int) else tuple(hidden)
        layers: list[nn.Module] = []
        previous = d_in
        for i, width in enumerate(widths):
            layers += [nn.Linear(previous, width), nn.ReLU()]
            if dropout and i == 0:
                layers.append(nn.Dropout(dropout))
            previous = width
        layers.append(nn.Linear(previous, n_experts, bias=bias))
        self.proj = nn.Sequential(*layers) if len(layers) > 1 else layers[0]

    def forward(self, x: Tensor) -> RoutingResult:
        flat = _check_tokens(x, self.d_in, "SoftGate")
        logits = self.proj(flat)
        probs = (logits / self.temperature).softmax(-1)
        indices = torch.arange(self.n_experts, device=x.device).expand(flat.shape[0], -1)
        return RoutingResult(indices, probs, probs, logits,
                             torch.full((self.n_experts,), flat.shape[0], device=x.device),
                             torch.full((flat.shape[0],), self.n_experts, device=x.device))

    @staticmethod
    def mix(expert_outputs: Tensor, weights: Tensor) -> Tensor:
        """``y = sum_e g_e * f_e(x)``: ``expert_outputs`` ``[B, E, ...]``, ``weights`` ``[B, E]``."""
        shape = weights.shape + (1,) * (expert_outputs.dim() - weights.dim())
        return (expert_outputs * weights.reshape(shape)).sum(1)


def limit_capacity(routing: RoutingResult, capacity_factor: float, n_experts: int | None = None) -> RoutingResult:
    """Token dropping with a capacity factor (GShard/Tutel, batch-prioritised).

    ``C = k * int(cf * ceil(T / E))`` slots per expert; when an expert is over capacity it keeps
    its ``C`` most confident assignments (highest combine weight) and the others are dropped
    (index -1, weight 0); a dropped token's MoE output is zero for that slot.
    """
    drop = capacity_drop(routing.indices, routing.weights.detach(), capacity_factor, n_experts or routing.num_experts)
    return drop_assignments(routing, drop)


def capacity_drop(indices: Tensor, weights: Tensor, capacity_factor: float, n_experts: int) -> Tensor:
    """``[T, K]`` mask of the assignments :func:`limit_capacity` drops (the batch-wide decision;
    ties in weight go to the earlier token, then the earlier slot)."""
    tokens, slots = indices.shape
    k = max(1, slots)
    capacity = k * max(1, int(min(capacity_factor * math.ceil(tokens / n_experts), tokens)))  # >= T*k drops nothing
    flat_idx = indices.reshape(-1)
    valid = (flat_idx >= 0) & (flat_idx < n_experts)
    key_expert = flat_idx.masked_fill(~valid, n_experts)
    # order by expert, most confident first inside an expert: rank there = position in its run
    by_weight = torch.argsort(weights.reshape(-1), descending=True, stable=True)
    order = by_weight[torch.argsort(key_expert[by_weight], stable=True)]
    sorted_expert = key_expert[order]
    rank = torch.arange(order.numel(), device=order.device) - torch.searchsorted(sorted_expert, sorted_expert)
    drop = torch.zeros_like(valid)
    drop[order] = valid[order] & (rank >= capacity)
    return drop.view(tokens, slots)


def drop_assignments(routing: RoutingResult, drop: Tensor) -> RoutingResult:
    """``routing`` without the ``[T, K]`` assignments marked in ``drop`` (index -1, weight 0)."""
    return RoutingResult.build(routing.indices.masked_fill(drop, -1), routing.weights.masked_fill(drop, 0.0),
                               routing.probs, routing.logits)
