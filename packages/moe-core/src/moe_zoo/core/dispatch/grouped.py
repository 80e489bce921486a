"""Grouped backend: sort by expert, one ``torch._grouped_mm`` per projection, weighted scatter.

No Python loop over experts; autograd flows through ``torch._grouped_mm``. It needs 16-byte
aligned rows (fp32: widths divisible by 4; bf16: by 8).
"""

from __future__ import annotations

import torch
from torch import Tensor

from moe_zoo.core.activations import activate
from moe_zoo.core.dispatch.plan import DispatchPlan
from moe_zoo.core.experts import ExpertBank


def grouped_available(bank: ExpertBank, dtype: torch.dtype) -> str | None:
    """None when usable, else the reason."""
    if not hasattr(torch, "_grouped_mm"):
        return "torch._grouped_mm is not available in this torch build"
    align = 16 // torch.empty((), dtype=dtype).element_size()
    widths = (bank.d_model, bank.w_in.shape[-1], bank.d_hidden)
    if any(w % align for w in widths):
        return f"torch._grouped_mm needs widths divisible by {align} for {dtype}, got {widths}"
    return None


def grouped_expert_ffn(x: Tensor, bank: ExpertBank, plan: DispatchPlan) -> Tensor:
    offsets = plan.offsets()
    rows = x.index_select(0, plan.token_idx)
    h = torch._grouped_mm(rows, bank.w_in.to(x.dtype), offs=offsets)
    if bank.b_in is not None:
        h = h + bank.b_in.to(x.dtype).repeat_interleave(plan.counts, dim=0, output_size=rows.shape[0])
    y = torch._grouped_mm(activate(h, bank.activation), bank.w_out.to(x.dtype), offs=offsets)
    if bank.b_out is not None:
        y = y + bank.b_out.to(x.dtype).repeat_interleave(plan.counts, dim=0, output_size=rows.shape[0])
    y = y * plan.weight[:, None].to(y.dtype)
    return x.new_zeros(plan.num_tokens, bank.d_model).index_add(0, plan.token_idx, y)
