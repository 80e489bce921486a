"""The vectorised hash encoding against the direct (slow) formula, and its gradients."""

from __future__ import annotations

import math

import pytest
import torch

from moe_zoo.core import InputError
from moe_zoo.nerf.hashgrid import PRIMES, GridSpec, HashGrids, interpolate


def direct_encoding(grids: HashGrids, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Point by point, level by level, corner by corner, with Python integers (module docstring's formula)."""
    out = torch.zeros(x.shape[0], grids.out_dim, dtype=torch.float64)
    table = grids.table.detach().double()
    offset = 0
    offsets = []
    for spec in grids.specs:
        row = []
        for size in spec.level_sizes(grids.n_levels):
            row.append(offset)
            offset += size
        offsets.append(row)
    for n in range(x.shape[0]):
        g = int(grid[n])
        spec = grids.specs[g]
        levels = zip(spec.resolutions(grids.n_levels), spec.level_sizes(grids.n_levels), spec.level_strides(grids.n_levels))
        for level, (res, size, stride) in enumerate(levels):
            pos = [min(max(float(v), 0.0), 1.0) * res for v in x[n]]
            base = [min(math.floor(p), res - 1) for p in pos]
            frac = [p - b for p, b in zip(pos, base)]
            for v in range(8):
                bits = ((v >> 2) & 1, (v >> 1) & 1, v & 1)
                c = [b + bit for b, bit in zip(base, bits)]
                if stride:
                    assert stride > res and stride**3 == size <= 2**spec.log2_table
                    idx = c[0] + c[1] * stride + c[2] * stride**2
                else:
                    idx = ((c[0] * PRIMES[0]) ^ (c[1] * PRIMES[1]) ^ (c[2] * PRIMES[2])) % size
                w = math.prod(f if bit else 1 - f for f, bit in zip(frac, bits))
                out[n, level * grids.n_features:(level + 1) * grids.n_features] += w * table[offsets[g][level] + idx]
    return out


def test_matches_direct_formula_dense_and_hashed_levels():
    torch.manual_seed(0)
    grids = HashGrids([GridSpec(2, 16, 10), GridSpec(4, 300, 12)], n_levels=5, n_features=3, init_scale=1.0)
    strides = [s for spec in grids.specs for s in spec.level_strides(5)]
    assert 0 in strides and any(strides)               # both dense and hashed levels are exercised
    x = torch.rand(40, 3, dtype=torch.float64)
    x[0] = torch.tensor([1.0, 0.0, 1.0])               # the cube's faces
    grid = torch.randint(0, 2, (40,))
    got = grids.double()(x, grid)
    assert torch.allclose(got, direct_encoding(grids, x, grid), atol=1e-12)


def test_level_resolutions_follow_the_geometric_growth():
    spec = GridSpec(16, 512, 14)
    res = spec.resolutions(8)
    assert res[0] == 16 and res[-1] == 512
    growth = math.exp(math.log(512 / 16) / 7)
    assert res == [math.floor(16 * growth**level + 1e-6) for level in range(8)]
    assert spec.level_strides(8)[0] == 0 and spec.level_sizes(8) == [2**14] * 8  # 32^3 > 2^14: all hashed
    coarse = GridSpec(7, 64, 14).level_strides(4)                                # resolutions 7, 14, 29, 64
    assert coarse == [8, 16, 0, 0] and GridSpec(7, 64, 14).level_sizes(4) == [8**3, 16**3, 2**14, 2**14]


def test_gradients_reach_only_the_touched_rows_and_match_finite_differences():
    torch.manual_seed(1)
    grids = HashGrids([GridSpec(2, 64, 5)], n_levels=3, n_features=2, init_scale=1.0).double()
    x = torch.rand(3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: grids(p), (x,))           # d enc / d x (trilinear)
    grids.table.grad = None
    grids(x.detach()).square().sum().backward()
    touched = grids.table.grad.abs().sum(1) > 0
    assert 0 < int(touched.sum()) <= 3 * 3 * 8 < grids.table.shape[0]
    idx, w = grids.corner_indices(x.detach(), None)
    table = grids.table.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t, ww: interpolate(t, idx, ww), (table, w.clone().requires_grad_()))


def test_bad_input():
    with pytest.raises(InputError, match="points"):
        HashGrids([GridSpec()])(torch.rand(4, 2))
    with pytest.raises(InputError, match="bad grid"):
        HashGrids([GridSpec(64, 16, 12)])
