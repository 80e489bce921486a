"""Triton backend: the routed FFN as gather-GEMM, activation, GEMM-scatter, with a Triton backward.

Forward (rows sorted by expert, tokens never copied into a permuted buffer)::

    h[i]          = x[token(i)] @ W_in[e(i)] (+ b_in)                 grouped_gemm, gather fused
    a             = act(h)
    y_slot[s(i)]  = w_i * (a[i] @ W_out[e(i)] (+ b_out))              grouped_gemm, scale + scatter fused
    out[t]        = sum_k y_slot[t, k]                                 (no atomics)

Backward::

    ga[i]   = g[token(i)] @ W_out[e(i)]^T                              grouped_gemm (gather)
    dL/dw_i = rowsum(ga[i] * a[i]) (+ g . b_out)
    dW_out  = a^T (w * g[token])                                       grouped_wgrad (gather, scale)
    dh      = act'(h) * (w * ga)
    dW_in   = x[token]^T dh                                            grouped_wgrad (gather)
    dx[t]   = sum_k (dh @ W_in^T)[slot]                                grouped_gemm (scatter)
"""

from __future__ import annotations

import torch
from torch import Tensor

from moe_zoo.core.activations import activate, activation_grads
from moe_zoo.core.dispatch import triton_kernels as tk
from moe_zoo.core.dispatch.plan import DispatchPlan
from moe_zoo.core.experts import ExpertBank


def _sum_slots(buffer: Tensor, tokens: int, slots: int) -> Tensor:
    return buffer.view(tokens, slots, -1).sum(1)


class _TritonFFN(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, w_in, w_out, b_in, b_out, plan_tensors, shape, activation):  # type: ignore[override]
        token_idx, slot_idx, counts = plan_tensors
        tokens, slots = shape
        x = x.contiguous()
        n_rows = token_idx.shape[0]
        tiles = tk.tile_table(counts, n_rows)
        h = x.new_empty(n_rows, w_in.shape[-1])
        tk.grouped_gemm(x, w_in, tiles, out=h, gather=token_idx, bias=b_in)
        a = activate(h, activation)
        weight_x = weight.to(x.dtype).contiguous()
        y_slots = x.new_zeros(tokens * slots, w_out.shape[-1])
        tk.grouped_gemm(a, w_out, tiles, out=y_slots, scatter=slot_idx, scale=weight_x, bias=b_out)
        ctx.save_for_backward(x, weight_x, w_in, w_out, b_in, b_out, token_idx, slot_idx, counts, h,
                              *tiles)
        ctx.shape, ctx.activation = shape, activation
        return _sum_slots(y_slots, tokens, slots)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        (x, weight, w_in, w_out, b_in, b_out, token_idx, slot_idx, counts, h, *tiles) = ctx.saved_tensors
        tokens, slots = ctx.shape
        need_x, need_w, need_win, need_wout, need_bin, need_bout = ctx.needs_input_grad[:6]
        grad_out = grad_out.contiguous().to(x.dtype)
        n_rows = token_idx.shape[0]
        grad_a = x.new_empty(n_rows, w_out.shape[1])
        tk.grouped_gemm(grad_out, w_out.transpose(1, 2), tiles, out=grad_a, gather=token_idx)
        grad_h, a = activation_grads(h, grad_a, ctx.activation, scale=weight[:, None])
        grad_weight = grad_w_in = grad_w_out = grad_b_in = grad_b_out = grad_x = None
        expert_of_row = torch.repeat_interleave(counts, output_size=n_rows) if b_in is not None or b_out is not None else None
        if need_w:
            grad_weight = (grad_a.float() * a.float()).sum(-1)
            if b_out is not None:
                grad_weight += (grad_out.index_select(0, token_idx).float() * b_out.float()[expert_of_row]).sum(-1)
        if need_wout:
            grad_w_out = tk.grouped_wgrad(a, grad_out, counts, out=torch.empty_like(w_out),
                                          gather_g=token_idx, scale=weight)
        if need_bout:
            grad_b_out = torch.zeros_like(b_out).index_add_(
                0, expert_of_row, grad_out.index_select(0, token_idx) * weight[:, None])
        if need_win:
            grad_w_in = tk.grouped_wgrad(x, grad_h, counts, out=torch.empty_like(w_in), gather_a=token_idx)
        if need_bin:
            grad_b_in = torch.zeros_like(b_in).index_add_(0, expert_of_row, grad_h)
        if need_x:
            dx_slots = x.new_zeros(tokens * slots, x.shape[1])
            tk.grouped_gemm(grad_h, w_in.transpose(1, 2), tiles, out=dx_slots, scatter=slot_idx)
            grad_x = _sum_slots(dx_slots, tokens, slots)
        return grad_x, grad_weight, grad_w_in, grad_w_out, grad_b_in, grad_b_out, None, None, None


def triton_expert_ffn(x: Tensor, bank: ExpertBank, plan: DispatchPlan) -> Tensor:
    return _TritonFFN.apply(x, plan.weight, *bank.weights_as(x.dtype), (plan.token_idx, plan.slot_idx, plan.counts), (plan.num_tokens, plan.num_slots),
                            bank.activation)
