"""Multi-resolution hash encoding (Instant-NGP), for one grid or a bank of grids of different shapes.

For a point ``x`` in the unit cube and level ``l`` of grid ``g`` (resolution ``N_gl``, table
``theta_gl`` of ``T_gl`` rows of ``F`` features)::

    N_gl  = floor(N_min_g * b_g^l),   b_g = exp((ln N_max_g - ln N_min_g) / (L - 1))
    p     = x * N_gl,   c = floor(p) + v  for the 8 corners v in {0,1}^3,   w = p - floor(p)
    idx(c) = (c_0 * a_0  xor  c_1 * a_1  xor  c_2 * a_2)  and  (S - 1)
      hashed level:  a = (1, 2654435761, 805459861), S = T                    (Instant-NGP's hash)
      dense level:   a = (1, P, P^2), S = P^3 with P = 2^ceil(log2(N + 1)), when P^3 <= T
                     (power-of-two strides: the xor of the disjoint bit fields is their sum,
                     ``c_0 + c_1 P + c_2 P^2``, a one-to-one index)
    enc_l(x) = sum_v  prod_d (w_d if v_d else 1 - w_d) * theta_gl[idx(c)]
    Hash_g(x) = concat_l enc_l(x)                                 [L * F]

Every grid of a bank has the same ``L`` and ``F`` (so every expert's encoding has the same width)
but its own resolution range and table size (the heterogeneous experts of Switch-NeRF++). All
tables live in one flat parameter; ``encode(x, grid)`` encodes each row with its own grid in one
vectorised pass (:mod:`moe_zoo.nerf.triton_hash` is the fused GPU kernel of the same formula).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moe_zoo.core import InputError

PRIMES = (1, 2654435761, 805459861)


@dataclass(frozen=True)
class GridSpec:
    """One hash grid: ``n_levels`` levels from ``min_res`` to ``max_res``, ``2**log2_table`` rows per level."""

    min_res: int = 16
    max_res: int = 512
    log2_table: int = 14

    def resolutions(self, n_levels: int) -> list[int]:
        if n_levels == 1:
            return [self.min_res]
        growth = math.exp((math.log(self.max_res) - math.log(self.min_res)) / (n_levels - 1))
        return [math.floor(self.min_res * growth**level + 1e-6) for level in range(n_levels)]

    def level_strides(self, n_levels: int) -> list[int]:
        """``P`` of each level (module docstring), 0 for a hashed level."""
        pads = [1 << r.bit_length() for r in self.resolutions(n_levels)]  # 2^ceil(log2(r + 1))
        return [p if p**3 <= 2**self.log2_table else 0 for p in pads]

    def level_sizes(self, n_levels: int) -> list[int]:
        return [p**3 if p else 2**self.log2_table for p in self.level_strides(n_levels)]


def check_specs(specs: list[GridSpec], n_levels: int, n_features: int) -> None:
    if not specs:
        raise InputError("a hash encoding needs at least one grid")
    if n_levels < 1 or n_features < 1:
        raise InputError(f"n_levels and n_features must be >= 1, got {n_levels}, {n_features}")
    for spec in specs:
        if not (1 <= spec.min_res <= spec.max_res <= 2**16 and 4 <= spec.log2_table <= 24):
            raise InputError(f"bad grid {spec}: need 1 <= min_res <= max_res <= 65536 and 4 <= log2_table <= 24")


class HashGrids(nn.Module):
    """A bank of multi-resolution hash grids; ``forward(x, grid)`` encodes row ``i`` with grid ``grid[i]``."""

    def __init__(self, specs: list[GridSpec], n_levels: int = 8, n_features: int = 2, init_scale: float = 1e-4) -> None:
        super().__init__()
        check_specs(specs, n_levels, n_features)
        self.specs, self.n_levels, self.n_features = list(specs), n_levels, n_features
        sizes = [spec.level_sizes(n_levels) for spec in specs]
        flat = [s for row in sizes for s in row]
        if sum(flat) >= 2**31:
            raise InputError(f"the grids' tables have {sum(flat)} rows in all; at most 2^31 - 1 (int32 indices)")
        offsets = torch.tensor([0, *flat[:-1]], dtype=torch.int64).cumsum(0).view(len(specs), n_levels)
        self.register_buffer("resolution", torch.tensor([s.resolutions(n_levels) for s in specs], dtype=torch.int64),
                             persistent=False)
        strides = torch.tensor([s.level_strides(n_levels) for s in specs], dtype=torch.int64)
        primes = torch.tensor(PRIMES, dtype=torch.int64)
        dense = torch.stack([torch.ones_like(strides), strides, strides * strides], -1)
        self.register_buffer("coeff", torch.where(strides[..., None] > 0, dense, primes), persistent=False)  # [G, L, 3]
        self.register_buffer("mask", torch.tensor(sizes, dtype=torch.int64) - 1, persistent=False)
        self.register_buffer("offset", offsets, persistent=False)
        # the CPU path (corner_indices): per level and grid, resolution, the 3 index coefficients
        # (int32, wrapped modulo 2^32), mask and table offset: [G, L * 6]
        wrapped = torch.where(self.coeff >= 2**31, self.coeff - 2**32, self.coeff)
        level_params = torch.cat([self.resolution[..., None], wrapped, self.mask[..., None], self.offset[..., None]], -1)
        self.register_buffer("level_params", level_params.flatten(1).int(), persistent=False)
        self.table = nn.Parameter(torch.empty(sum(flat), n_features).uniform_(-init_scale, init_scale))

    @property
    def n_grids(self) -> int:
        return len(self.specs)

    @property
    def out_dim(self) -> int:
        return self.n_levels * self.n_features

    def grid_params(self, grid: int) -> int:
        """Number of table entries (x features) that belong to ``grid``."""
        return (int(self.mask[grid].sum()) + self.n_levels) * self.n_features

    def corner_indices(self, x: Tensor, grid: Tensor | None) -> tuple[Tensor, Tensor]:
        """Flat table rows ``[L, 8, N]`` (int32) of the 8 corners and their trilinear weights ``[L, 8, N]``.

        Laid out level x corner x row, so every elementwise step runs over a contiguous row axis
        (each row's grid constants come with one gather; without ``grid`` they broadcast). Per axis
        the two corner terms ``(c_d a_d) and mask`` are computed once (``[L, 3, 2, N]``; ``and``
        distributes over ``xor``) and the 8 corners combined by broadcasting xors, corner
        ``v = 4 v_0 + 2 v_1 + v_2``. The integer arithmetic is int32 with the primes stored modulo
        2^32 (two's-complement wrap-around): the index keeps only the low ``log2 T <= 24`` bits, and
        those of ``c * a mod 2^32`` equal those of ``c * a``.
        """
        n_levels = self.n_levels
        rows = self.level_params[:1] if grid is None else self.level_params.index_select(0, grid)  # [N or 1, L * 6]
        params = rows.T.contiguous().view(n_levels, 6, -1)                # [L, 6, N or 1]
        res = params[:, 0].to(x.dtype)                                    # [L, N]
        pos = x.clamp(0.0, 1.0).T[None] * res[:, None]                     # [L, 3, N]
        base = torch.minimum(pos.floor(), (res - 1).clamp_min(0)[:, None])  # x = 1: last cell
        frac = pos - base
        a, mask = params[:, 1:4], params[:, 4:5]
        low = base.int() * a
        h = torch.stack([low & mask, (low + a) & mask], 2)                # [L, 3, 2, N]
        idx = (h[:, 0, :, None] ^ h[:, 1, None, :]).view(n_levels, 4, 1, -1) ^ h[:, 2, None, :]
        idx = idx.view(n_levels, 8, -1) + params[:, 5:6]
        wt = torch.stack([1 - frac, frac], 2)                             # [L, 3, 2, N]
        w = (wt[:, 0, :, None] * wt[:, 1, None, :]).view(n_levels, 4, 1, -1) * wt[:, 2, None, :]
        return idx, w.view(n_levels, 8, -1)

    def forward(self, x: Tensor, grid: Tensor | None = None) -> Tensor:
        """``x [N, 3]`` in the unit cube, ``grid [N]`` (default: grid 0) -> ``[N, L * F]``."""
        if x.ndim != 2 or x.shape[-1] != 3:
            raise InputError(f"hash encoding expects points [N, 3], got {tuple(x.shape)}")
        idx, w = self.corner_indices(x, grid)
        out = interpolate(self.table, idx, w.to(self.table.dtype))        # [L, N, F]
        return out.transpose(0, 1).reshape(x.shape[0], self.out_dim)


class _Interpolate(torch.autograd.Function):
    """``out[l, n] = sum_v w[l, v, n] * table[idx[l, v, n]]`` -> ``[L, N, F]``.

    Forward: one ``embedding_bag`` (gather, weighting and sum fused, bags of 8 corners). Backward:
    one flat ``scatter_add`` per feature column for the table (autograd's own backward of a row
    gather is ``index_add_`` of rows F wide, about 10x slower on CPU), and ``dL/dw`` only when asked.
    """

    @staticmethod
    def forward(ctx, table: Tensor, idx: Tensor, w: Tensor) -> Tensor:
        n_levels, corners, n = idx.shape
        ctx.save_for_backward(table, idx, w)
        out = F.embedding_bag(idx.transpose(1, 2).reshape(-1, corners), table, mode="sum",
                              per_sample_weights=w.transpose(1, 2).reshape(-1, corners))
        return out.view(n_levels, n, table.shape[1])

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, Tensor | None]:
        table, idx, w = ctx.saved_tensors
        flat = idx.flatten().long()
        grad_table = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_table = torch.stack([table.new_zeros(table.shape[0]).scatter_add_(0, flat, (w * grad[:, None, :, f]).flatten())
                                      for f in range(table.shape[1])], 1)
        if ctx.needs_input_grad[2]:
            grad_w = (table.index_select(0, flat).view(*idx.shape, -1) * grad[:, None]).sum(-1)
        return grad_table, None, grad_w


def interpolate(table: Tensor, idx: Tensor, w: Tensor) -> Tensor:
    """Trilinear interpolation of ``table [R, F]`` rows ``idx [L, 8, N]`` with weights ``w [L, 8, N]`` -> ``[L, N, F]``."""
    return _Interpolate.apply(table, idx, w)
