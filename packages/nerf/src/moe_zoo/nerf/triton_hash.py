"""Fused Triton kernel of the hash-grid bank: encoding and expert dispatch in one launch.

Each program encodes ``BLOCK`` rows; row ``i`` reads its expert's grid ``g_i`` (resolution,
index coefficients, mask and table offset per level, all gathered by ``g_i`` inside the kernel),
so every expert's rows are encoded by the same launch without splitting the batch by expert (the
fused dispatch of Switch-NeRF++). The formula is :mod:`moe_zoo.nerf.hashgrid`'s::

    p = x N_l,  c = min(floor(p), N_l - 1) + v,  w = prod_d (w_d if v_d else 1 - w_d)
    idx = ((c_0 a_0 xor c_1 a_1 xor c_2 a_2) and mask_l) + offset_l
    out[i, l F + f] = sum_v w_v table[idx_v, f]

The backward scatters ``w_v * dL/dout`` into the table with atomic adds (the gradient of the
positions is not computed: sample positions are inputs, not parameters). Rows may come in any
order; :func:`encode` sorts them by expert first so that one expert's table rows stay in cache.
Run on CPU under ``TRITON_INTERPRET=1`` (set before importing triton) in the tests.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from moe_zoo.nerf.hashgrid import HashGrids

BLOCK = 64


@triton.jit
def _corner(x_ptr, rows, mask_rows, res, a0, a1, a2, level_mask, offset, v: tl.constexpr):
    """Table row and trilinear weight of corner ``v`` for ``BLOCK`` rows at one level."""
    idx = tl.zeros_like(rows).to(tl.int64)
    w = tl.full(rows.shape, 1.0, tl.float32)
    for d in tl.static_range(3):
        x = tl.load(x_ptr + rows * 3 + d, mask=mask_rows, other=0.0)
        pos = tl.minimum(tl.maximum(x, 0.0), 1.0) * res.to(tl.float32)
        base = tl.minimum(tl.floor(pos), (tl.maximum(res - 1, 0)).to(tl.float32))
        frac = pos - base
        bit = (v >> (2 - d)) & 1
        c = base.to(tl.int64) + bit
        coeff = a0 if d == 0 else (a1 if d == 1 else a2)
        idx = idx ^ (c * coeff)
        w = w * (frac if bit == 1 else 1.0 - frac)
    return (idx & level_mask) + offset, w


@triton.jit
def _level_params(grid, res_ptr, coeff_ptr, mask_ptr, offset_ptr, level, L: tl.constexpr, mask_rows):
    gl = grid * L + level
    res = tl.load(res_ptr + gl, mask=mask_rows, other=1)
    a0 = tl.load(coeff_ptr + gl * 3, mask=mask_rows, other=0)
    a1 = tl.load(coeff_ptr + gl * 3 + 1, mask=mask_rows, other=0)
    a2 = tl.load(coeff_ptr + gl * 3 + 2, mask=mask_rows, other=0)
    level_mask = tl.load(mask_ptr + gl, mask=mask_rows, other=0)
    offset = tl.load(offset_ptr + gl, mask=mask_rows, other=0)
    return res, a0, a1, a2, level_mask, offset


@triton.jit
def _hash_kernel(x_ptr, grid_ptr, table_ptr, values_ptr, res_ptr, coeff_ptr, mask_ptr, offset_ptr, n_rows,
                 L: tl.constexpr, F: tl.constexpr, BLOCK_ROWS: tl.constexpr, BACKWARD: tl.constexpr):
    """Forward: ``values = out [N, L F]`` from ``table``. Backward: ``values = dL/dout`` atomically
    scattered into ``table`` (the table's gradient buffer)."""
    rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    mask_rows = rows < n_rows
    grid = tl.load(grid_ptr + rows, mask=mask_rows, other=0)
    for level in tl.static_range(L):
        res, a0, a1, a2, level_mask, offset = _level_params(grid, res_ptr, coeff_ptr, mask_ptr, offset_ptr, level, L,
                                                            mask_rows)
        for f in tl.static_range(F):
            where = values_ptr + rows * (L * F) + level * F + f
            acc = tl.load(where, mask=mask_rows, other=0.0) if BACKWARD else tl.zeros(rows.shape, tl.float32)
            for v in tl.static_range(8):
                idx, w = _corner(x_ptr, rows, mask_rows, res, a0, a1, a2, level_mask, offset, v)
                if BACKWARD:
                    tl.atomic_add(table_ptr + idx * F + f, w * acc, mask=mask_rows)
                else:
                    acc += w * tl.load(table_ptr + idx * F + f, mask=mask_rows, other=0.0)
            if not BACKWARD:
                tl.store(where, acc, mask=mask_rows)


def _launch(grids: HashGrids, x: Tensor, grid: Tensor, table: Tensor, values: Tensor, backward: bool) -> None:
    n = x.shape[0]
    _hash_kernel[(triton.cdiv(n, BLOCK),)](x, grid, table, values, grids.resolution, grids.coeff, grids.mask,
                                           grids.offset, n, L=grids.n_levels, F=grids.n_features, BLOCK_ROWS=BLOCK,
                                           BACKWARD=backward)


class _FusedEncode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table: Tensor, x: Tensor, grid: Tensor, grids: HashGrids) -> Tensor:
        out = torch.empty(x.shape[0], grids.out_dim, device=x.device, dtype=torch.float32)
        _launch(grids, x, grid, table, out, backward=False)
        ctx.save_for_backward(x, grid)
        ctx.grids, ctx.table_shape = grids, table.shape
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, grid = ctx.saved_tensors
        grids = ctx.grids
        grad_table = torch.zeros(ctx.table_shape, device=x.device, dtype=torch.float32)
        _launch(grids, x, grid, grad_table, grad_out.contiguous().float(), backward=True)
        return grad_table, None, None, None


def encode(grids: HashGrids, x: Tensor, grid: Tensor | None = None) -> Tensor:
    """``grids(x, grid)`` computed by the fused kernel (float32 tables), rows sorted by expert inside."""
    grid = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device) if grid is None else grid.long()
    order = torch.argsort(grid, stable=True)
    out = _FusedEncode.apply(grids.table, x.float()[order].contiguous(), grid[order].contiguous(), grids)
    return torch.empty_like(out).index_copy(0, order, out)
