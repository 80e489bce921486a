"""Vectorised Monte Carlo photon transport (NumPy, CPU): the check on the diffusion model.

Photon packets random-walk in a semi-infinite medium (``z > 0``) with scattering coefficient
``mu_s = mu_s' / (1 - g)`` and Henyey-Greenstein phase function (anisotropy ``g``); at the
surface a packet is reflected with the Fresnel probability ``R_F(cos theta)`` (index ``n`` to
air) and otherwise leaves, and its exit time ``L / c`` (path length ``L``, ``c = c0 / n``) and
radial distance are tallied. Absorption is applied afterwards as the weight
``exp(-mu_a L)`` (microscopic Beer-Lambert law, exact in a homogeneous medium), so one run
serves every ``mu_a``. All live packets advance together, one scattering event per iteration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from moe_zoo.core import InputError
from moe_zoo.flidar.physics import C0_MM_PER_PS, fresnel_reflectance


@dataclass(frozen=True)
class ExitTally:
    """Packets that left the surface: exit time (ps), radial distance (mm); ``launched`` in all."""

    time_ps: np.ndarray
    rho_mm: np.ndarray
    launched: int
    refractive_index: float

    def histogram(self, edges_ps: np.ndarray, mu_a: float, rho_range: tuple[float, float] = (0.0, math.inf)) -> np.ndarray:
        """Fraction of launched photons leaving in each time bin (within ``rho_range``), with absorption."""
        keep = (self.rho_mm >= rho_range[0]) & (self.rho_mm < rho_range[1])
        path = self.time_ps[keep] * C0_MM_PER_PS / self.refractive_index
        counts, _ = np.histogram(self.time_ps[keep], bins=edges_ps, weights=np.exp(-mu_a * path))
        return counts / self.launched


def _henyey_greenstein_cos(g: float, u: np.ndarray) -> np.ndarray:
    """Inverse CDF of HG: ``cos = (1 + g^2 - ((1 - g^2) / (1 - g + 2 g u))^2) / (2 g)`` (``2u - 1`` if g = 0)."""
    if abs(g) < 1e-6:
        return 2.0 * u - 1.0
    return (1.0 + g * g - ((1.0 - g * g) / (1.0 - g + 2.0 * g * u)) ** 2) / (2.0 * g)


def _scatter(direction: np.ndarray, g: float, rng: np.random.Generator) -> np.ndarray:
    """Rotate unit vectors by a HG polar angle and a uniform azimuth (the usual MCML update)."""
    n = direction.shape[0]
    cos_t = _henyey_greenstein_cos(g, rng.random(n))
    sin_t = np.sqrt(np.clip(1.0 - cos_t**2, 0.0, None))
    phi = 2.0 * math.pi * rng.random(n)
    cos_p, sin_p = np.cos(phi), np.sin(phi)
    ux, uy, uz = direction.T
    near_pole = np.abs(uz) > 0.99999
    denom = np.sqrt(np.clip(1.0 - uz**2, 1e-12, None))
    new = np.empty_like(direction)
    new[:, 0] = sin_t * (ux * uz * cos_p - uy * sin_p) / denom + ux * cos_t
    new[:, 1] = sin_t * (uy * uz * cos_p + ux * sin_p) / denom + uy * cos_t
    new[:, 2] = -sin_t * cos_p * denom + uz * cos_t
    pole = np.stack([sin_t * cos_p, sin_t * sin_p, np.sign(uz) * cos_t], axis=1)
    new[near_pole] = pole[near_pole]
    return new / np.linalg.norm(new, axis=1, keepdims=True)


def simulate_exits(n_photons: int, mu_sp: float, *, n: float = 1.4, g: float = 0.0,
                   source_depth: float | None = None, t_max_ps: float = 3000.0, seed: int = 0) -> ExitTally:
    """Launch packets and tally where and when they leave the surface.

    ``source_depth=None``: a pencil beam entering at the origin along ``+z``; otherwise an
    isotropic point source at that depth (a fluorophore). Packets still inside at
    ``t_max_ps`` are dropped (they would only add to later bins).
    """
    if n_photons < 1 or mu_sp <= 0 or not -1.0 < g < 1.0:
        raise InputError(f"simulate_exits: need n_photons >= 1, mu_sp > 0, -1 < g < 1; got {n_photons}, {mu_sp}, {g}")
    rng = np.random.default_rng(seed)
    mu_s = mu_sp / (1.0 - g)
    c = C0_MM_PER_PS / n
    max_path = c * t_max_ps
    pos = np.zeros((n_photons, 3))
    if source_depth is None:
        direction = np.tile([0.0, 0.0, 1.0], (n_photons, 1))
    else:
        pos[:, 2] = source_depth
        direction = _scatter(np.tile([0.0, 0.0, 1.0], (n_photons, 1)), 0.0, rng)  # isotropic emission
    path = np.zeros(n_photons)
    exit_time, exit_rho = [], []
    while pos.shape[0]:
        step = -np.log1p(-rng.random(pos.shape[0])) / mu_s
        new_z = pos[:, 2] + direction[:, 2] * step
        hits = new_z < 0.0
        to_surface = np.where(hits, -pos[:, 2] / np.where(hits, direction[:, 2], -1.0), step)
        pos += direction * to_surface[:, None]
        path += to_surface
        cos_i = -direction[:, 2]
        reflect_p = fresnel_reflectance(torch.from_numpy(np.clip(cos_i, 0.0, 1.0)), n).numpy()
        leaves = hits & (rng.random(pos.shape[0]) >= reflect_p)
        bounced = hits & ~leaves
        direction[bounced, 2] *= -1.0
        remaining = np.where(bounced, step - to_surface, 0.0)
        pos += direction * remaining[:, None]
        path += remaining
        done = leaves & (path <= max_path)
        exit_time.append(path[done] / c)
        exit_rho.append(np.hypot(pos[done, 0], pos[done, 1]))
        alive = ~leaves & (path <= max_path)
        pos, direction, path = pos[alive], _scatter(direction[alive], g, rng), path[alive]
    return ExitTally(np.concatenate(exit_time), np.concatenate(exit_rho), n_photons, n)
