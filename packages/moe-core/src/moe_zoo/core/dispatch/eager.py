"""Reference backend: a per-expert loop with masks and plain autograd (HF-eager style).

Written for clarity, not speed; every other backend is tested against it.
"""

from __future__ import annotations

from torch import Tensor

from moe_zoo.core.dispatch.plan import DispatchPlan
from moe_zoo.core.experts import ExpertBank


def eager_expert_ffn(x: Tensor, bank: ExpertBank, plan: DispatchPlan) -> Tensor:
    """``y_t = sum_{(t, e, w) in plan} w * FFN_e(x_t)``."""
    out = x.new_zeros(plan.num_tokens, bank.d_model)
    for e in range(bank.n_experts):
        mask = plan.expert_idx == e
        if not bool(mask.any()):
            continue
        rows = plan.token_idx[mask]
        y = bank.expert_forward(e, x[rows]) * plan.weight[mask, None].to(x.dtype)
        out = out.index_add(0, rows, y)
    return out
