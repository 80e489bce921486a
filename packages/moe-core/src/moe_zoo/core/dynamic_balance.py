"""Balancing for dynamic-capacity (top-p) routing with always-on experts (UniMoE-Audio).

UniMoE-Audio's router scores ``N`` routed + null experts (the "dynamic" ones, raced by top-p)
and its shared experts in one softmax. Its auxiliary loss balances only the dynamic experts,
and its weight is annealed linearly over training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from moe_zoo.core.errors import InputError
from moe_zoo.core.routing import RoutingResult


def dynamic_balancing_loss(routing: RoutingResult, dynamic: Sequence[int]) -> Tensor:
    """``L = N_dyn * sum_{i in dyn} f_i * P_i`` over the dynamic experts only.

    ``f_i`` = fraction of tokens whose multi-hot selection includes ``i`` (no gradient);
    ``P_i`` = mean over tokens of the router softmax masked to the dynamic experts (the
    always-on experts' logits removed, softmax renormalised over ``dynamic``). ``N_dyn =
    len(dynamic)`` (9 in UniMoE-Audio: 8 routed + 1 null). Uniform selection and probabilities
    give ``sum_i f_i`` (the mean number of dynamic experts per token). An empty batch gives 0.
    """
    ids = torch.as_tensor(list(dynamic), dtype=torch.long, device=routing.probs.device)
    if ids.numel() == 0 or int(ids.min()) < 0 or int(ids.max()) >= routing.num_experts:
        raise InputError(f"dynamic experts must be ids in [0, {routing.num_experts}), got {list(dynamic)}")
    if routing.num_tokens == 0:
        return routing.probs.new_zeros((), dtype=torch.float32)
    source = routing.logits if routing.logits is not None else routing.probs.clamp_min(1e-30).log()
    masked = source.float()[:, ids].softmax(-1)  # [T, N_dyn]
    position = torch.full((routing.num_experts + 1,), -1, dtype=torch.long, device=ids.device)
    position[ids] = torch.arange(ids.numel(), device=ids.device)
    slot = position[routing.indices.masked_fill(routing.indices < 0, routing.num_experts)]  # [T, K]
    hits = masked.new_zeros(routing.num_tokens, ids.numel() + 1)
    hits.scatter_(1, slot.masked_fill(slot < 0, ids.numel()), 1.0)
    f = hits[:, :-1].mean(0).detach()
    return ids.numel() * (f * masked.mean(0)).sum()


@dataclass(frozen=True)
class LinearAnneal:
    """A weight annealed linearly from ``start`` to ``end`` over ``steps``, then held.

    ``w(s) = start + (end - start) * min(s, steps) / steps``; UniMoE-Audio anneals its
    auxiliary-loss weight 0.025 -> 0.001 over 10k steps.
    """

    start: float
    end: float
    steps: int

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise InputError(f"LinearAnneal.steps must be an integer >= 1, got {self.steps!r}")

    def __call__(self, step: int) -> float:
        if step < 0:
            raise InputError(f"LinearAnneal: step must be >= 0, got {step}")
        return self.start + (self.end - self.start) * min(step, self.steps) / self.steps
