"""Padded backend: every expert's rows padded to the largest count, two ``torch.bmm`` calls.

For small batches on CPU the per-expert GEMMs have few rows (16 at 64 tokens, top-2 of 8), where
one ``bmm`` over ``[E, C, d]`` (threads split by expert) beats a loop of small GEMMs
(``benchmarks/small_batch_memory.py``). The price is ``E * C`` rows of compute and memory with
``C = max_e count_e``: balanced routings pay little, a skewed one up to ``E`` times the work, so
this backend is for small batches, not the default.

    slot(t, e) = e * C + (rank of the assignment within expert e's sorted rows)
    X_pad[slot] = x_t  (zeros elsewhere),  Y_pad = act(X_pad W_in + b_in) W_out + b_out  (bmm)
    out_t += w * Y_pad[slot(t, e)]

Padded rows are never read back, so they get no gradient and add nothing to the weight gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

from moe_zoo.core.activations import activate
from moe_zoo.core.dispatch.plan import DispatchPlan
from moe_zoo.core.experts import ExpertBank


def padded_expert_ffn(x: Tensor, bank: ExpertBank, plan: DispatchPlan) -> Tensor:
    out = x.new_zeros(plan.num_tokens, bank.d_model)
    if plan.num_assignments == 0:
        return out
    w_in, w_out, b_in, b_out = bank.weights_as(x.dtype)
    experts, capacity = plan.num_experts, int(plan.counts.max())
    first_row = plan.counts.cumsum(0) - plan.counts
    rank = torch.arange(plan.num_assignments, device=x.device) - first_row[plan.expert_idx]
    slot = plan.expert_idx * capacity + rank
    rows = x.new_zeros(experts * capacity, x.shape[1]).index_copy(0, slot, x.index_select(0, plan.token_idx))
    h = torch.bmm(rows.view(experts, capacity, -1), w_in)
    if b_in is not None:
        h = h + b_in[:, None]
    y = torch.bmm(activate(h, bank.activation), w_out)
    if b_out is not None:
        y = y + b_out[:, None]
    y = y.view(experts * capacity, -1).index_select(0, slot) * plan.weight[:, None].to(y.dtype)
    return out.index_add(0, plan.token_idx, y)
