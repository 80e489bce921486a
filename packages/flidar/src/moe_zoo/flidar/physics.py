"""Time-resolved photon transport in tissue: the diffusion approximation of the RTE.

Geometry: a semi-infinite turbid medium (tissue) filling ``z > 0`` below air, refractive index
``n`` inside, light speed ``c = c0 / n``. Units: millimetres and picoseconds throughout.

Diffusion approximation (Patterson, Chance & Wilson 1989; extrapolated boundary of Haskell et al.
1994 / Kienle & Patterson 1997)::

    (1/c) dPhi/dt - D lap(Phi) + mu_a Phi = S,     D = 1 / (3 mu_s')

Green's function for an impulse at depth ``z_s`` with the boundary condition ``Phi = 0`` on the
extrapolated plane ``z = -z_b``, ``z_b = 2 A D``, ``A = (1 + R_eff) / (1 - R_eff)`` (image
source at ``z = -(z_s + 2 z_b)``)::

    Phi(rho, z, t) = c (4 pi D c t)^(-3/2) exp(-mu_a c t) [exp(-r1^2 / 4Dct) - exp(-r2^2 / 4Dct)]
    r1^2 = (z - z_s)^2 + rho^2,   r2^2 = (z + z_s + 2 z_b)^2 + rho^2

Time-resolved diffuse reflectance (outward Fick flux ``D dPhi/dz`` at ``z = 0``; PCW with the
extrapolated boundary)::

    R(rho, t) = (4 pi D c)^(-3/2) t^(-5/2) exp(-mu_a c t)
                * 1/2 [z_s exp(-r1^2 / 4Dct) + (z_s + 2 z_b) exp(-r2^2 / 4Dct)],
    r1^2 = z_s^2 + rho^2,  r2^2 = (z_s + 2 z_b)^2 + rho^2

A pencil beam is the isotropic source at ``z_s = z0 = 1 / mu_s'``. Both kernels are sums of
``t^(-p) exp(-a/t - b t)`` terms (``p = 3/2`` or ``5/2``, ``a = r^2 / 4Dc``, ``b = mu_a c``), whose
integrals over a time bin have closed forms in ``erfc`` (:func:`cumulative_t32`,
:func:`cumulative_t52`), so a histogram bin holds the exact integral of the rate over the bin,
even when the kernel rises within a few picoseconds.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

C0_MM_PER_PS = 0.299792458  # speed of light in vacuum, mm / ps

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(96)


def fresnel_reflectance(cos_i: Tensor, n: Tensor | float) -> Tensor:
    """Unpolarised Fresnel reflectance from inside (index ``n``) to air at incidence ``cos_i``.

    ``R = 1/2 [((n cos_i - cos_t)/(n cos_i + cos_t))^2 + ((cos_i - n cos_t)/(cos_i + n cos_t))^2]``
    with ``sin_t = n sin_i``; ``R = 1`` beyond the critical angle.
    """
    cos_i = torch.as_tensor(cos_i)
    n = torch.as_tensor(n, dtype=cos_i.dtype, device=cos_i.device)
    sin_t2 = n**2 * (1.0 - cos_i**2)
    total = sin_t2 >= 1.0
    cos_t = torch.sqrt((1.0 - sin_t2).clamp_min(0.0))
    rs = (n * cos_i - cos_t) / (n * cos_i + cos_t)
    rp = (cos_i - n * cos_t) / (cos_i + n * cos_t)
    return torch.where(total, torch.ones_like(cos_i), 0.5 * (rs**2 + rp**2))


def boundary_coefficient(n: Tensor | float) -> Tensor:
    """``A = (1 + R_eff) / (1 - R_eff)`` of the partial-current boundary condition (Haskell 1994).

    ``R_eff = (R_phi + R_j) / (2 - R_phi + R_j)``, ``R_phi = int 2 sin cos R_F dtheta``,
    ``R_j = int 3 sin cos^2 R_F dtheta`` over ``[0, pi/2]`` (96-point Gauss-Legendre).
    """
    n = torch.as_tensor(n, dtype=torch.float64)
    theta = torch.as_tensor((_GL_NODES + 1.0) * math.pi / 4.0, dtype=torch.float64)
    weights = torch.as_tensor(_GL_WEIGHTS * math.pi / 4.0, dtype=torch.float64)
    fresnel = fresnel_reflectance(torch.cos(theta), n[..., None])
    sin, cos = torch.sin(theta), torch.cos(theta)
    r_phi = (weights * 2.0 * sin * cos * fresnel).sum(-1)
    r_j = (weights * 3.0 * sin * cos**2 * fresnel).sum(-1)
    r_eff = (r_phi + r_j) / (2.0 - r_phi + r_j)
    return (1.0 + r_eff) / (1.0 - r_eff)


def diffusion_coefficient(mu_sp: Tensor) -> Tensor:
    """``D = 1 / (3 mu_s')`` in mm (absorption-independent form, recommended in the time domain)."""
    return 1.0 / (3.0 * mu_sp)


def extrapolation_length(mu_sp: Tensor, n: Tensor | float) -> Tensor:
    """``z_b = 2 A D``: distance above the surface where the fluence extrapolates to zero."""
    return 2.0 * boundary_coefficient(n).to(mu_sp) * diffusion_coefficient(mu_sp)


def _kernel_cumulative(power: float, terms, b: Tensor, t: Tensor) -> Tensor:
    """``F(t) = sum_i w_i int_0^t s^(-p) exp(-a_i/s - b s) ds`` for ``p = 3/2`` or ``5/2``, ``t > 0``.

    With ``u+- = sqrt(a/t) +- sqrt(b t)``, ``P = e^{-2 sqrt(ab)} erfc(u-)``, ``Q = e^{2 sqrt(ab)} erfc(u+)``::

        J(t) = int_0^t s^(-3/2) e^{-a/s-bs} ds = sqrt(pi) / (2 sqrt a) (P + Q)
        K(t) = int_0^t s^(-5/2) e^{-a/s-bs} ds = -dJ/da
             = sqrt(pi) / (4 a^(3/2)) (P + Q) + sqrt(pi b) / (2 a) (P - Q) + e^{-a/t - bt} / (a sqrt t)

    ``terms``: ``(a_i, w_i)`` pairs broadcastable against ``b`` (``[B, 1]``); ``t``: ``[M]``. The
    ``sqrt(b t)`` and ``t^(-1/2)`` factors are shared by all terms and the ``e^{+-2 sqrt(ab)}``
    factors folded into per-row coefficients, so each term costs two ``erfc`` over ``[B, M]``.
    ``Q`` underflows to 0 exactly where it is negligible (``Q <= E / (u+ sqrt(pi))``), so plain
    ``erfc`` is safe while ``e^{2 sqrt(ab)}`` is finite (``2 sqrt(ab) < 80``: far beyond tissue).
    """
    sqrt_pi = math.sqrt(math.pi)
    inv_sqrt_t = torch.rsqrt(t)
    sqrt_b = torch.sqrt(b)
    sbt = sqrt_b * torch.sqrt(t)
    if power not in (1.5, 2.5):
        raise ValueError(f"power must be 1.5 or 2.5, got {power}")
    total = None
    for a, w in terms:
        sqrt_a = torch.sqrt(a)
        sat = sqrt_a * inv_sqrt_t
        two_sqrt_ab = 2.0 * sqrt_a * sqrt_b
        if power == 1.5:
            c_minus = c_plus = w * sqrt_pi / (2.0 * sqrt_a)
        else:
            c_pq, c_pmq = sqrt_pi / (4.0 * a * sqrt_a), sqrt_pi * sqrt_b / (2.0 * a)
            c_minus, c_plus = w * (c_pq + c_pmq), w * (c_pq - c_pmq)
        term = torch.erfc(sat - sbt) * (c_minus * torch.exp(-two_sqrt_ab))
        term = torch.addcmul(term, torch.erfc(sat + sbt), c_plus * torch.exp(two_sqrt_ab))
        if power != 1.5:
            envelope = torch.exp(-torch.addcmul(sbt * sbt, sat, sat))
            term = torch.addcmul(term, envelope * inv_sqrt_t, w / a)
        total = term if total is None else total + term
    return total


def cumulative_t32(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """``J(t) = int_0^t s^(-3/2) exp(-a/s - b s) ds = sqrt(pi)/(2 sqrt(a)) (P + Q)`` (``t > 0``)."""
    return _kernel_cumulative(1.5, [(a, 1.0)], b, t)


def cumulative_t52(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """``K(t) = int_0^t s^(-5/2) exp(-a/s - b s) ds = -dJ/da`` (formula in :func:`_kernel_cumulative`)."""
    return _kernel_cumulative(2.5, [(a, 1.0)], b, t)


def _bin_integrals(power: float, terms, b: Tensor, edges: Tensor) -> Tensor:
    """Per-bin integrals ``F(t_{k+1}) - F(t_k)`` of :func:`_kernel_cumulative`; ``F(0) = 0``."""
    values = _kernel_cumulative(power, terms, b, edges[1:])
    return torch.diff(values, dim=-1, prepend=torch.zeros_like(values[..., :1]))


def _medium(mu_sp: Tensor, n: float) -> tuple[float, Tensor, Tensor]:
    """``c`` (mm/ps), ``4 D c`` and ``z_b`` for a batch of ``mu_s'`` values."""
    c = C0_MM_PER_PS / n
    return c, 4.0 * diffusion_coefficient(mu_sp) * c, extrapolation_length(mu_sp, n)


def fluence_bins(depth: Tensor, mu_a: Tensor, mu_sp: Tensor, edges: Tensor, *, n: float,
                 rho: float = 0.0) -> Tensor:
    """Bin integrals of the fluence ``Phi(rho, z=depth, t)`` from a pencil beam (source at ``z0``).

    ``depth``, ``mu_a``, ``mu_sp``: ``[B]``; ``edges``: ``[bins + 1]`` in ps from 0. Returns
    ``[B, bins]`` in mm^-2 per unit launched energy.
    """
    depth, mu_a, mu_sp = (x[..., None] for x in (depth, mu_a, mu_sp))
    c, four_dc, zb = _medium(mu_sp, n)
    z0 = 1.0 / mu_sp
    b = mu_a * c
    scale = c * (math.pi * four_dc) ** -1.5
    r1 = (depth - z0) ** 2 + rho**2
    r2 = (depth + z0 + 2.0 * zb) ** 2 + rho**2
    return scale * _bin_integrals(1.5, [(r1 / four_dc, 1.0), (r2 / four_dc, -1.0)], b, edges)


def reflectance_bins(source_depth: Tensor, mu_a: Tensor, mu_sp: Tensor, edges: Tensor, *, n: float,
                     rho: float = 0.0) -> Tensor:
    """Bin integrals of the PCW reflectance ``R(rho, t)`` (extrapolated boundary) of an isotropic
    source at ``source_depth`` (``z0 = 1/mu_s'`` for a pencil beam; a fluorophore's depth for
    the emission leg). Returns ``[B, bins]`` in mm^-2 per unit emitted energy."""
    zs, mu_a, mu_sp = (x[..., None] for x in (source_depth, mu_a, mu_sp))
    c, four_dc, zb = _medium(mu_sp, n)
    b = mu_a * c
    scale = 0.5 * (math.pi * four_dc) ** -1.5
    z2 = zs + 2.0 * zb
    return scale * _bin_integrals(2.5, [((zs**2 + rho**2) / four_dc, zs), ((z2**2 + rho**2) / four_dc, z2)], b, edges)


def reflectance_pcw(rho: Tensor, t: Tensor, mu_a: Tensor | float, mu_sp: Tensor | float, n: float = 1.4,
                    *, source_depth: Tensor | float | None = None, boundary: str = "extrapolated") -> Tensor:
    """Point values of the time-resolved reflectance ``R(rho, t)`` (mm^-2 ps^-1).

    ``boundary="extrapolated"``: the formula in the module docstring. ``boundary="zero"``: the
    original PCW (1989) single term ``(4 pi D c)^(-3/2) z0 t^(-5/2) exp(-(rho^2 + z0^2)/4Dct - mu_a c t)``.
    """
    t = torch.as_tensor(t, dtype=torch.float64)
    mu_a, mu_sp, rho = (torch.as_tensor(x, dtype=torch.float64) for x in (mu_a, mu_sp, rho))
    c = C0_MM_PER_PS / n
    diff = diffusion_coefficient(mu_sp)
    zs = 1.0 / mu_sp if source_depth is None else torch.as_tensor(source_depth, dtype=torch.float64)
    four_dct = 4.0 * diff * c * t
    common = (4.0 * math.pi * diff * c) ** -1.5 * t**-2.5 * torch.exp(-mu_a * c * t)
    first = zs * torch.exp(-(zs**2 + rho**2) / four_dct)
    if boundary == "zero":
        return common * first
    if boundary != "extrapolated":
        raise ValueError(f"boundary must be 'extrapolated' or 'zero', got {boundary!r}")
    z2 = zs + 2.0 * extrapolation_length(mu_sp, n)
    return 0.5 * common * (first + z2 * torch.exp(-(z2**2 + rho**2) / four_dct))


def peak_time_pcw(rho: float, mu_a: float, mu_sp: float, n: float = 1.4) -> float:
    """Patterson's closed form for the peak of the zero-boundary reflectance::

        t_max = (sqrt(25 + 12 mu_a mu_s' (rho^2 + z0^2)) - 5) / (4 mu_a c)     (from dR/dt = 0)
    """
    c = C0_MM_PER_PS / n
    r2 = rho**2 + (1.0 / mu_sp) ** 2
    return (math.sqrt(25.0 + 12.0 * mu_a * mu_sp * r2) - 5.0) / (4.0 * mu_a * c)


def steady_state_reflectance(rho: float, mu_a: float, mu_sp: float, n: float = 1.4,
                             source_depth: float | None = None) -> float:
    """Farrell et al. (1992) ``R(rho) = int R(rho, t) dt`` with the extrapolated boundary::

        R(rho) = 1/(4 pi) [z1 (mu_eff + 1/r1) e^{-mu_eff r1} / r1^2 + z2 (mu_eff + 1/r2) e^{-mu_eff r2} / r2^2]

    ``mu_eff = sqrt(3 mu_a mu_s')``, ``z1 = z_s``, ``z2 = z_s + 2 z_b``, ``r_i^2 = z_i^2 + rho^2``.
    """
    zs = 1.0 / mu_sp if source_depth is None else source_depth
    zb = float(extrapolation_length(torch.tensor(mu_sp, dtype=torch.float64), n))
    mu_eff = math.sqrt(3.0 * mu_a * mu_sp)
    total = 0.0
    for z in (zs, zs + 2.0 * zb):
        r = math.hypot(z, rho)
        total += z * (mu_eff + 1.0 / r) * math.exp(-mu_eff * r) / r**2
    return total / (4.0 * math.pi)


def steady_state_fluence(depth: float, rho: float, mu_a: float, mu_sp: float, n: float = 1.4) -> float:
    """``int Phi dt = 1/(4 pi D) [e^{-mu_eff r1} / r1 - e^{-mu_eff r2} / r2]`` for a pencil beam."""
    z0 = 1.0 / mu_sp
    zb = float(extrapolation_length(torch.tensor(mu_sp, dtype=torch.float64), n))
    diff = 1.0 / (3.0 * mu_sp)
    mu_eff = math.sqrt(mu_a / diff)
    r1 = math.hypot(depth - z0, rho)
    r2 = math.hypot(depth + z0 + 2.0 * zb, rho)
    return (math.exp(-mu_eff * r1) / r1 - math.exp(-mu_eff * r2) / r2) / (4.0 * math.pi * diff)


def exitance_bins(source_depth: float, mu_a: float, mu_sp: float, edges: Tensor, *, n: float = 1.4,
                  rho_range: tuple[float, float] = (0.0, math.inf)) -> Tensor:
    """Bin integrals of the reflectance integrated over an annulus ``rho1 <= rho < rho2``.

    ``int 2 pi rho exp(-rho^2 / 4Dct) drho = 4 pi D c t [e^{-rho1^2/4Dct} - e^{-rho2^2/4Dct}]``, so::

        R_annulus(t) = (4 pi D c)^(-1/2) t^(-3/2) e^{-mu_a c t}
                       * 1/2 sum_i z_i [e^{-(z_i^2 + rho1^2)/4Dct} - e^{-(z_i^2 + rho2^2)/4Dct}]

    (``z_1 = z_s``, ``z_2 = z_s + 2 z_b``): the fraction of launched photons leaving the surface
    there in each time bin, the quantity a Monte Carlo tally measures.
    """
    edges = torch.as_tensor(edges, dtype=torch.float64)
    mu_sp_t = torch.tensor(mu_sp, dtype=torch.float64)
    c, four_dc, zb = _medium(mu_sp_t, n)
    b = torch.tensor(mu_a * c, dtype=torch.float64)
    terms = [(torch.tensor(z**2 + rho**2, dtype=torch.float64) / four_dc, sign * z)
             for z in (source_depth, source_depth + float(2.0 * zb))
             for rho, sign in ((rho_range[0], 1.0), (rho_range[1], -1.0)) if not math.isinf(rho)]
    return 0.5 * (math.pi * four_dc) ** -0.5 * _bin_integrals(1.5, terms, b, edges)
