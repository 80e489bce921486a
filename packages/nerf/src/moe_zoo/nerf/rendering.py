"""Rays, scene contraction, the occupancy grid and volume rendering.

- Rays of a pinhole camera with an OpenGL-convention camera-to-world ``c2w`` (x right, y up,
  camera looking down -z): ``d = R [(u - cx) / fx, -(v - cy) / fy, -1]``, ``o = t``.
- Scene contraction (mip-NeRF 360, with the inf-norm as in Instant-NGP / nerfacto) of a point
  already scaled so that the detailed region is ``|x|_inf <= 1``::

      contract(x) = x                                  if |x|_inf <= 1
                  = (2 - 1 / |x|_inf) * x / |x|_inf    otherwise        (so |contract(x)|_inf < 2)

  and ``u = (contract(x) + 2) / 4`` in the unit cube is what the hash grids read.
- Volume rendering (NeRF): ``alpha_i = 1 - exp(-sigma_i delta_i)``,
  ``T_i = prod_{j<i} (1 - alpha_j)``, ``C = sum_i T_i alpha_i c_i + (1 - sum_i T_i alpha_i) c_bg``.
- Occupancy grid (Instant-NGP): a boolean grid over the unit cube of contracted space; a sample in
  an empty cell is not evaluated (its density is 0). Refreshed from the model's density with an
  exponential decay ``d <- max(decay * d, sigma(cell))``, then thresholded.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def camera_rays(c2w: Tensor, intrinsics: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Origins and unit directions ``[H * W, 3]`` through the pixel centres of one camera."""
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float32) + 0.5,
                          torch.arange(width, dtype=torch.float32) + 0.5, indexing="ij")
    dirs = torch.stack([(u - cx) / fx, -(v - cy) / fy, -torch.ones_like(u)], -1).reshape(-1, 3)
    dirs = dirs @ c2w[:3, :3].float().T
    dirs = F.normalize(dirs, dim=-1)
    return c2w[:3, 3].float().expand_as(dirs).contiguous(), dirs


def contract(x: Tensor) -> Tensor:
    """Scene contraction into ``|.|_inf < 2`` (formula in the module docstring)."""
    norm = x.abs().amax(-1, keepdim=True).clamp_min(1e-9)
    return torch.where(norm <= 1, x, (2 - 1 / norm) * x / norm)


def to_unit(x: Tensor, center: Tensor, radius: float) -> Tensor:
    """World points -> contracted unit-cube coordinates ``(contract((x - c) / r) + 2) / 4``."""
    return (contract((x - center) / radius) + 2) / 4


def sample_along_rays(origins: Tensor, dirs: Tensor, near: float, far: float, n_samples: int,
                      *, jitter: bool, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Stratified depths ``t [R, S]`` in ``[near, far]`` and the spacing ``delta [R, S]``."""
    edges = torch.linspace(near, far, n_samples + 1, device=origins.device)
    lower, width = edges[:-1], edges[1:] - edges[:-1]
    offset = (torch.rand(origins.shape[0], n_samples, generator=generator, device=origins.device)
              if jitter else torch.full((origins.shape[0], n_samples), 0.5, device=origins.device))
    t = lower + offset * width
    return t, width.expand_as(t)


def composite(sigma: Tensor, rgb: Tensor, delta: Tensor, background: Tensor | float = 0.0) -> dict[str, Tensor]:
    """Volume rendering of ``sigma [R, S]``, ``rgb [R, S, 3]`` (formula in the module docstring).

    Returns ``rgb [R, 3]``, ``opacity [R]`` and ``weights [R, S]`` (``T_i alpha_i``).
    """
    alpha = 1 - torch.exp(-sigma * delta)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha + 1e-10], -1), -1)[:, :-1]
    weights = trans * alpha
    opacity = weights.sum(-1)
    color = (weights[..., None] * rgb).sum(1) + (1 - opacity[:, None]) * background
    return {"rgb": color, "opacity": opacity, "weights": weights}


class OccupancyGrid(nn.Module):
    """A ``res^3`` grid over the contracted unit cube (buffers, so it is saved with the model).

    ``density`` is ``-1`` in cells never measured; every cell starts occupied.
    """

    def __init__(self, resolution: int = 32, decay: float = 0.6, threshold: float = 0.01) -> None:
        super().__init__()
        self.resolution, self.decay, self.threshold = resolution, decay, threshold
        self.register_buffer("density", torch.full((resolution,) * 3, -1.0))
        self.register_buffer("occupied", torch.ones((resolution,) * 3, dtype=torch.bool))

    def lookup(self, u: Tensor) -> Tensor:
        """Whether each unit-cube point ``u [..., 3]`` lies in an occupied cell."""
        cell = (u * self.resolution).long().clamp(0, self.resolution - 1)
        return self.occupied[cell[..., 0], cell[..., 1], cell[..., 2]]

    def cell_points(self, generator: torch.Generator | None = None) -> Tensor:
        """One jittered point per cell, ``[res^3, 3]`` in the unit cube (x-major order)."""
        r = self.resolution
        idx = torch.stack(torch.meshgrid(*(torch.arange(r),) * 3, indexing="ij"), -1).reshape(-1, 3).float()
        return ((idx + torch.rand(idx.shape, generator=generator)) / r).to(self.density.device)

    @torch.no_grad()
    def update(self, sigma: Tensor, step_size: float) -> None:
        """Fold the cells' new densities ``sigma [res^3]`` in and re-threshold (alpha of one step,
        ``1 - exp(-sigma * step_size) > threshold``, i.e. ``sigma > -ln(1 - threshold) / step_size``).

        A cell stays occupied when it or a neighbour is (3x3x3 max-pool), so thin surfaces that
        the jittered probe missed once are not carved away.
        """
        new = sigma.detach().float().view((self.resolution,) * 3)
        old = torch.where(self.density < 0, new, self.density)
        self.density.copy_(torch.maximum(self.decay * old, new))
        # alpha of one step above the threshold, or (nerfacc's guard against an empty grid) a density
        # at least the grid's mean when even that is below the threshold
        sigma_threshold = min(-math.log(1 - self.threshold) / step_size, float(self.density.mean()))
        occupied = (self.density >= sigma_threshold).float()[None, None]
        self.occupied.copy_(F.max_pool3d(occupied, 3, stride=1, padding=1)[0, 0].bool())

    @property
    def fraction(self) -> float:
        return float(self.occupied.float().mean())
