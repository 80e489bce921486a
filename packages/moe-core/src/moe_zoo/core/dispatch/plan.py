"""The dispatch plan: routed assignments sorted by expert, computed once per forward."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class DispatchPlan:
    """Assignments ``(token, expert, weight)`` of the valid slots, sorted by expert.

    token_idx:  [N] token row of each assignment
    expert_idx: [N] expert of each assignment (non-decreasing)
    weight:     [N] combine weight (differentiable: gradients flow back to the router)
    slot_idx:   [N] position of the assignment in the flattened ``[T, K]`` routing
    counts:     [E] assignments per expert
    """

    num_tokens: int
    num_slots: int
    num_experts: int
    token_idx: Tensor
    expert_idx: Tensor
    weight: Tensor
    slot_idx: Tensor
    counts: Tensor

    @property
    def num_assignments(self) -> int:
        return self.token_idx.shape[0]

    def offsets(self) -> Tensor:
        """[E] int32 cumulative ends of each expert's rows (``torch._grouped_mm``'s ``offs``)."""
        return self.counts.cumsum(0).to(torch.int32)


def make_plan(indices: Tensor, weights: Tensor, num_experts: int, *, all_valid: bool = False) -> DispatchPlan:
    """Sort the slots of a ``[T, K]`` routing by expert, dropping slots outside ``[0, num_experts)``.

    ``all_valid=True`` promises every slot addresses an expert of the bank (plain dropless top-k),
    which skips the boolean filter (a host sync on GPU).
    """
    tokens, slots = indices.shape
    flat_expert = indices.reshape(-1)
    flat_weight = weights.reshape(-1)
    slot_idx = torch.arange(flat_expert.numel(), device=indices.device)
    if not all_valid:
        keep = (flat_expert >= 0) & (flat_expert < num_experts)
        flat_expert, flat_weight, slot_idx = flat_expert[keep], flat_weight[keep], slot_idx[keep]
    sorted_expert, order = torch.sort(flat_expert, stable=True)
    slot_sorted = slot_idx[order]
    counts = torch.bincount(sorted_expert, minlength=num_experts)
    return DispatchPlan(tokens, slots, num_experts, torch.div(slot_sorted, slots, rounding_mode="floor"),
                        sorted_expert, flat_weight[order], slot_sorted, counts)
