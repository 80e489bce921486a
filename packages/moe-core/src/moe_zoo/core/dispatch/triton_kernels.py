"""Triton kernels for expert dispatch (imported lazily: triton must be importable).

Two kernels cover the forward and the backward of a routed FFN (ScatterMoE's decomposition):

``grouped_gemm``   ``C[out(i)] = s_i * (A[in(i)] @ B[e(i)] + bias[e(i)])`` over rows ``i`` sorted
                   by expert, where ``in``/``out`` optionally gather/scatter rows (so the token
                   permutation is fused into the GEMM's loads and stores) and ``s_i`` optionally
                   scales a row (the combine weight, fused into the epilogue).
``grouped_wgrad``  ``dB[e] = sum_{i in e} A[in(i)]^T (s_i * G[g(i)])``, one program per expert tile,
                   looping over that expert's rows (an expert with no rows gets zeros).

Tiles never straddle experts: the host builds a tile table (expert, first row, last row) with
vectorised torch ops, over-allocated to an upper bound so no host sync is needed.
Run on CPU with ``TRITON_INTERPRET=1`` (set before import) for tests.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor

BLOCK_M = 32
BLOCK_N = 32
BLOCK_K = 32


@triton.jit
def _indirect_rows(index_ptr, rows, mask, INDIRECT: tl.constexpr):
    """``index[rows]`` when ``INDIRECT`` (a fused gather/scatter), else ``rows``."""
    if INDIRECT:
        rows = tl.load(index_ptr + rows, mask=mask, other=0)
    return rows


@triton.jit
def _grouped_gemm_kernel(
    a_ptr, b_ptr, c_ptr, bias_ptr, scale_ptr, gather_ptr, scatter_ptr,
    tile_expert_ptr, tile_start_ptr, tile_end_ptr,
    n_cols, k_dim,
    stride_am, stride_ak, stride_be, stride_bk, stride_bn, stride_cm, stride_cn, stride_bias_e,
    GATHER: tl.constexpr, SCATTER: tl.constexpr, SCALE: tl.constexpr, BIAS: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, DOT_FP32: tl.constexpr,
):
    tile = tl.program_id(0)
    pid_n = tl.program_id(1)
    expert = tl.load(tile_expert_ptr + tile)
    if expert >= 0:
        row_start = tl.load(tile_start_ptr + tile)
        row_end = tl.load(tile_end_ptr + tile)
        rows = row_start + tl.arange(0, BLOCK_M)
        row_mask = rows < row_end
        a_rows = _indirect_rows(gather_ptr, rows, row_mask, GATHER)
        cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        col_mask = cols < n_cols
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        b_base = b_ptr + expert.to(tl.int64) * stride_be
        for k0 in range(0, k_dim, BLOCK_K):
            ks = k0 + tl.arange(0, BLOCK_K)
            k_mask = ks < k_dim
            a = tl.load(a_ptr + a_rows[:, None].to(tl.int64) * stride_am + ks[None, :] * stride_ak,
                        mask=row_mask[:, None] & k_mask[None, :], other=0.0)
            b = tl.load(b_base + ks[:, None] * stride_bk + cols[None, :] * stride_bn,
                        mask=k_mask[:, None] & col_mask[None, :], other=0.0)
            if DOT_FP32:
                acc += tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
            else:
                acc += tl.dot(a, b)
        if BIAS:
            bias = tl.load(bias_ptr + expert.to(tl.int64) * stride_bias_e + cols, mask=col_mask, other=0.0)
            acc += bias[None, :].to(tl.float32)
        if SCALE:
            scale = tl.load(scale_ptr + rows, mask=row_mask, other=0.0)
            acc *= scale[:, None].to(tl.float32)
        c_rows = _indirect_rows(scatter_ptr, rows, row_mask, SCATTER)
        tl.store(c_ptr + c_rows[:, None].to(tl.int64) * stride_cm + cols[None, :] * stride_cn,
                 acc.to(c_ptr.dtype.element_ty), mask=row_mask[:, None] & col_mask[None, :])


@triton.jit
def _grouped_wgrad_kernel(
    a_ptr, g_ptr, out_ptr, scale_ptr, gather_a_ptr, gather_g_ptr, seg_start_ptr, seg_end_ptr,
    k_dim, n_cols,
    stride_am, stride_ak, stride_gm, stride_gn, stride_oe, stride_ok, stride_on,
    GATHER_A: tl.constexpr, GATHER_G: tl.constexpr, SCALE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, DOT_FP32: tl.constexpr,
):
    expert = tl.program_id(0)
    pid_k = tl.program_id(1)
    pid_n = tl.program_id(2)
    seg_start = tl.load(seg_start_ptr + expert)
    seg_end = tl.load(seg_end_ptr + expert)
    ks = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    k_mask = ks < k_dim
    col_mask = cols < n_cols
    acc = tl.zeros((BLOCK_K, BLOCK_N), dtype=tl.float32)
    for m0 in range(seg_start, seg_end, BLOCK_M):
        rows = m0 + tl.arange(0, BLOCK_M)
        row_mask = rows < seg_end
        a_rows = _indirect_rows(gather_a_ptr, rows, row_mask, GATHER_A)
        g_rows = _indirect_rows(gather_g_ptr, rows, row_mask, GATHER_G)
        a_t = tl.load(a_ptr + a_rows[None, :].to(tl.int64) * stride_am + ks[:, None] * stride_ak,
                      mask=k_mask[:, None] & row_mask[None, :], other=0.0)
        g = tl.load(g_ptr + g_rows[:, None].to(tl.int64) * stride_gm + cols[None, :] * stride_gn,
                    mask=row_mask[:, None] & col_mask[None, :], other=0.0)
        if SCALE:
            scale = tl.load(scale_ptr + rows, mask=row_mask, other=0.0)
            g = (g.to(tl.float32) * scale[:, None].to(tl.float32)).to(a_t.dtype)
        if DOT_FP32:
            acc += tl.dot(a_t.to(tl.float32), g.to(tl.float32), input_precision="ieee")
        else:
            acc += tl.dot(a_t, g)
    tl.store(out_ptr + expert.to(tl.int64) * stride_oe + ks[:, None] * stride_ok + cols[None, :] * stride_on,
             acc.to(out_ptr.dtype.element_ty), mask=k_mask[:, None] & col_mask[None, :])


def _dot_in_fp32(dtype: torch.dtype) -> bool:
    """fp32 inputs use exact IEEE dots; under ``TRITON_INTERPRET=1`` bf16/fp16 tiles are upcast too,
    because the interpreter's own low-precision ``tl.dot`` returns garbage (checked with Triton 3.7:
    a 16x16 bf16 product off by 1e10). On GPU, low-precision tiles go to the tensor cores as they are."""
    return dtype == torch.float32 or os.environ.get("TRITON_INTERPRET") == "1"


def tile_table(counts: Tensor, n_rows: int, block_m: int = BLOCK_M) -> tuple[Tensor, Tensor, Tensor]:
    """(expert, first row, end row) per tile, padded to ``cdiv(n_rows, BM) + E`` tiles (expert -1),
    an upper bound known on the host, so building the table needs no device sync."""
    n_experts = counts.numel()
    ends = counts.cumsum(0)
    tiles_per_expert = torch.div(counts + block_m - 1, block_m, rounding_mode="floor")
    tile_ends = tiles_per_expert.cumsum(0)
    tile_ids = torch.arange(triton.cdiv(n_rows, block_m) + n_experts, device=counts.device)
    expert = torch.searchsorted(tile_ends, tile_ids, right=True)
    valid = expert < n_experts
    expert = expert.clamp_max(n_experts - 1)
    first = (ends - counts)[expert] + (tile_ids - (tile_ends - tiles_per_expert)[expert]) * block_m
    last = torch.minimum(first + block_m, ends[expert])
    return torch.where(valid, expert, -1).to(torch.int32), first, last


def grouped_gemm(a: Tensor, b: Tensor, tiles: tuple[Tensor, Tensor, Tensor], *, out: Tensor,
                 gather: Tensor | None = None, scatter: Tensor | None = None, scale: Tensor | None = None,
                 bias: Tensor | None = None) -> Tensor:
    """``out[scatter[i]] = scale[i] * (a[gather[i]] @ b[e(i)] + bias[e(i)])``; ``b`` is ``[E, K, N]``
    (any strides, so a transposed view computes ``@ W^T`` without a copy)."""
    tile_expert, tile_start, tile_end = tiles
    k_dim, n_cols = b.shape[1], b.shape[2]
    dummy = tile_start
    grid = (tile_expert.numel(), triton.cdiv(n_cols, BLOCK_N))
    _grouped_gemm_kernel[grid](
        a, b, out, bias if bias is not None else a, scale if scale is not None else a,
        gather if gather is not None else dummy, scatter if scatter is not None else dummy,
        tile_expert, tile_start, tile_end, n_cols, k_dim,
        a.stride(0), a.stride(1), b.stride(0), b.stride(1), b.stride(2), out.stride(0), out.stride(1),
        bias.stride(0) if bias is not None else 0,
        GATHER=gather is not None, SCATTER=scatter is not None, SCALE=scale is not None, BIAS=bias is not None,
        BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K, DOT_FP32=_dot_in_fp32(a.dtype),
    )
    return out


def grouped_wgrad(a: Tensor, g: Tensor, counts: Tensor, *, out: Tensor, gather_a: Tensor | None = None,
                  gather_g: Tensor | None = None, scale: Tensor | None = None) -> Tensor:
    """``out[e] = sum_{rows i of e} a[gather_a[i]]^T (scale[i] * g[gather_g[i]])``; ``out`` ``[E, K, N]``."""
    n_experts, k_dim, n_cols = out.shape
    ends = counts.cumsum(0)
    starts = ends - counts
    dummy = starts
    grid = (n_experts, triton.cdiv(k_dim, BLOCK_K), triton.cdiv(n_cols, BLOCK_N))
    _grouped_wgrad_kernel[grid](
        a, g, out, scale if scale is not None else a,
        gather_a if gather_a is not None else dummy, gather_g if gather_g is not None else dummy,
        starts, ends, k_dim, n_cols,
        a.stride(0), a.stride(1), g.stride(0), g.stride(1), out.stride(0), out.stride(1), out.stride(2),
        GATHER_A=gather_a is not None, GATHER_G=gather_g is not None, SCALE=scale is not None,
        BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K, DOT_FP32=_dot_in_fp32(a.dtype),
    )
    return out
