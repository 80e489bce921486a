"""FLiDAR TCSPC histograms from diffusion theory: transport, fluorescence, IRF, photon counting.

A pulsed laser (repetition period ``T = n_bins * bin_ps``) enters tissue at the surface; a
fluorescent inclusion (e.g. a tumour labelled with a NIR dye) sits at ``depth`` below it; a
time-correlated single-photon counter beside the source records the emission. The expected
photon rate at the detector is the chain of four convolutions::

    m(t) = [IRF * G_x(depth, .) * f_tau * R_m(depth, .)](t)

- ``G_x``: excitation fluence at the inclusion (diffusion Green's function, pencil beam),
- ``f_tau(t) = exp(-t / tau) / tau``: the fluorophore's decay (lifetime ``tau``),
- ``R_m``: PCW reflectance of the emission from an isotropic source at ``depth``,
- ``IRF``: laser pulse and detector jitter (exponentially modified Gaussian).

Time of flight (depth) delays and broadens the rise; the lifetime sets the tail. Every factor
is integrated exactly over a fine time grid (``oversample`` sub-bins per TCSPC bin), the
convolutions are products in the Fourier domain over one laser period (the periodic
excitation makes the measurement circular; the decay's transform is the closed form
``F_m = (1 - q) / (1 - q e^{-2 pi i m / M})``, ``q = e^{-delta / tau}``), and the sub-bins are
summed into TCSPC bins. Counts: ``h_k ~ Poisson(N_s m_k / sum(m) + N_b / n_bins)`` with signal
photons ``N_s`` and background photons ``N_b`` (dark counts, ambient light) per histogram.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from moe_zoo.core import Config, InputError, resolve_device
from moe_zoo.flidar.physics import fluence_bins, reflectance_bins

PARAMETERS = ("depth_mm", "lifetime_ns", "mu_a_per_mm", "mu_sp_per_mm")


@dataclass(frozen=True)
class SimulationConfig(Config):
    """Instrument and tissue ranges (see the README for the sources of the tissue values).

    Sampling: depth, lifetime and ``mu_s'`` uniform, ``mu_a`` and signal photons log-uniform,
    background as a uniform fraction of the signal photons.
    """

    n_bins: int = 256
    bin_ps: float = 48.828125           # 256 bins span one 80 MHz laser period (12.5 ns)
    oversample: int = 4                 # sub-bins per TCSPC bin for the exact kernel integrals
    refractive_index: float = 1.4       # soft tissue
    detector_offset_mm: float = 0.0     # lateral distance of source and detector from the inclusion
    depth_mm: tuple[float, float] = (3.0, 12.0)
    lifetime_ns: tuple[float, float] = (0.3, 1.5)
    mu_a_per_mm: tuple[float, float] = (0.005, 0.05)
    mu_sp_per_mm: tuple[float, float] = (0.6, 2.0)
    photons: tuple[float, float] = (1_000.0, 30_000.0)
    background_fraction: tuple[float, float] = (0.0, 0.1)
    irf_center_ps: float = 1_500.0     # the nominal IRF: the time origin the networks are aligned to
    irf_fwhm_ps: float = 150.0
    irf_tail_ps: float = 60.0
    # per-histogram IRF variation (uniform; equal bounds = every histogram has the nominal value)
    irf_fwhm_range_ps: tuple[float, float] = (150.0, 150.0)
    irf_tail_range_ps: tuple[float, float] = (60.0, 60.0)
    irf_shift_range_ps: tuple[float, float] = (0.0, 0.0)   # added to irf_center_ps

    def __post_init__(self) -> None:
        if self.n_bins < 16 or self.bin_ps <= 0 or self.oversample < 1:
            raise InputError(f"SimulationConfig: need n_bins >= 16, bin_ps > 0, oversample >= 1; got "
                             f"{self.n_bins}, {self.bin_ps}, {self.oversample}")
        for name in ("depth_mm", "lifetime_ns", "mu_a_per_mm", "mu_sp_per_mm", "photons"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise InputError(f"SimulationConfig.{name}: expected 0 < low <= high, got {(low, high)}")
        for name in ("irf_fwhm_range_ps", "irf_tail_range_ps", "irf_shift_range_ps"):
            low, high = getattr(self, name)
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise InputError(f"SimulationConfig.{name}: expected finite low <= high, got {(low, high)}")
        if self.irf_fwhm_range_ps[0] <= 0 or self.irf_tail_range_ps[0] < 0 or self.irf_fwhm_ps <= 0 or self.irf_tail_ps < 0:
            raise InputError("SimulationConfig: IRF FWHM must be positive and tails non-negative")
        if self.depth_mm[0] <= 1.0 / self.mu_sp_per_mm[0]:
            raise InputError("SimulationConfig: the shallowest depth must exceed 1/mu_s' (diffusion regime)")

    @property
    def varies_irf(self) -> bool:
        """Whether histograms get their own IRF (any of the IRF ranges has width)."""
        return any(low != high for low, high in (self.irf_fwhm_range_ps, self.irf_tail_range_ps, self.irf_shift_range_ps))

    @property
    def period_ps(self) -> float:
        return self.n_bins * self.bin_ps

    def time_axis_ps(self) -> Tensor:
        """Bin centres in ps, ``[n_bins]``."""
        return (torch.arange(self.n_bins, dtype=torch.float64) + 0.5) * self.bin_ps

    def label_ranges(self) -> Tensor:
        """``[[low, high]]`` of depth (mm) and lifetime (ns): the targets' normalisation."""
        return torch.tensor([self.depth_mm, self.lifetime_ns], dtype=torch.float32)


TRAINING_SIMULATION = SimulationConfig(irf_fwhm_range_ps=(100.0, 400.0), irf_tail_range_ps=(20.0, 200.0),
                                       irf_shift_range_ps=(-100.0, 100.0))
"""What the shipped models are trained on: the default box with one IRF per histogram (FWHM
100-400 ps and exponential tail 20-200 ps, the range of PMT- and SPAD-based TCSPC systems; time
origin moved by up to ± 2 bins, which the alignment removes). Narrower IRFs are refused."""


@dataclass(frozen=True)
class TCSPCData:
    """TCSPC histograms with their time axis and IRF, and the ground truth when known.

    ``histograms``: ``[N, T]`` photon counts (float32); ``irf``: ``[T]``, or ``[N, T]`` with one
    IRF per histogram (each sums to 1);
    ``params``: ``{name: [N]}`` for the names in :data:`PARAMETERS` plus ``photons`` and
    ``background`` (empty for measured data without labels).
    """

    histograms: Tensor
    bin_ps: float
    irf: Tensor
    params: dict[str, Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.histograms.shape[0]

    @property
    def time_ps(self) -> Tensor:
        return (torch.arange(self.histograms.shape[-1], dtype=torch.float64) + 0.5) * self.bin_ps

    def targets(self) -> Tensor:
        """``[N, 2]`` (depth mm, lifetime ns)."""
        missing = [k for k in ("depth_mm", "lifetime_ns") if k not in self.params]
        if missing:
            raise InputError(f"TCSPCData has no ground truth for {missing}")
        return torch.stack([self.params["depth_mm"], self.params["lifetime_ns"]], dim=-1).float()

    def subset(self, index: Tensor | slice) -> TCSPCData:
        irf = self.irf[index] if self.irf.dim() == 2 else self.irf
        return TCSPCData(self.histograms[index], self.bin_ps, irf, {k: v[index] for k, v in self.params.items()})


def ex_gaussian(t: Tensor, center: Tensor | float, fwhm: Tensor | float, tail: Tensor | float) -> Tensor:
    """Exponentially modified Gaussian at times ``t`` (unnormalised; parameters broadcast with ``t``)::

        irf(t) = (lam/2) exp(lam/2 (2 mu + lam sigma^2 - 2 t)) erfc((mu + lam sigma^2 - t) / (sqrt2 sigma))

    ``sigma = FWHM / 2.3548``, ``lam = 1 / tail``, ``mu = center`` (where the Gaussian part peaks);
    a zero tail gives the Gaussian.
    """
    center, fwhm, tail = (torch.as_tensor(v, dtype=t.dtype, device=t.device) for v in (center, fwhm, tail))
    sigma = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    gauss = torch.exp(-0.5 * ((t - center) / sigma) ** 2)
    lam = 1.0 / tail.clamp_min(1e-9)
    arg = (center + lam * sigma**2 - t) / (math.sqrt(2.0) * sigma)
    # where arg > 0, exp(...) erfc(arg) == exp(-(t - mu)^2 / (2 sigma^2)) erfcx(arg) cannot overflow
    direct = torch.exp((0.5 * lam * (2.0 * center + lam * sigma**2 - 2.0 * t)).clamp_max(0.0)) * torch.erfc(arg)
    scaled = gauss * torch.special.erfcx(arg.clamp_min(0.0))
    return torch.where(tail > 0, torch.where(arg > 0, scaled, direct), gauss)


def irf_fine(config: SimulationConfig, device: torch.device | None = None, *, center_ps: Tensor | None = None,
             fwhm_ps: Tensor | None = None, tail_ps: Tensor | None = None) -> Tensor:
    """Ex-Gaussian IRF (:func:`ex_gaussian`) on the fine grid, summing to 1: the nominal one
    ``[n_bins * oversample]``, or ``[B, n_fine]`` for ``[B]`` tensors of centres, FWHMs and tails.
    Evaluated at sub-bin centres (the IRF is smooth on that scale)."""
    delta = config.bin_ps / config.oversample
    t = (torch.arange(config.n_bins * config.oversample, dtype=torch.float64, device=device) + 0.5) * delta
    if center_ps is None:
        values = ex_gaussian(t, config.irf_center_ps, config.irf_fwhm_ps, config.irf_tail_ps)
    else:
        values = ex_gaussian(t, center_ps[:, None], fwhm_ps[:, None], tail_ps[:, None])
    return values / values.sum(-1, keepdim=True)


def sample_irfs(n: int, config: SimulationConfig, generator: torch.Generator) -> dict[str, Tensor]:
    """Per-histogram IRF centre, FWHM and tail (ps, float64), uniform over the config's ranges."""
    return {"center_ps": config.irf_center_ps + _uniform(generator, n, *config.irf_shift_range_ps),
            "fwhm_ps": _uniform(generator, n, *config.irf_fwhm_range_ps),
            "tail_ps": _uniform(generator, n, *config.irf_tail_range_ps)}


def irf_histogram(config: SimulationConfig, fine: Tensor | None = None) -> Tensor:
    """The IRF summed into TCSPC bins, ``[n_bins]`` (what a measured IRF file holds); ``fine``:
    IRFs on the fine grid ``[..., n_fine]`` to bin instead of the nominal one."""
    fine = irf_fine(config) if fine is None else fine
    return fine.reshape(*fine.shape[:-1], config.n_bins, config.oversample).sum(-1).float()


def decay_spectrum(lifetime_ps: Tensor, n_fine: int, delta_ps: float) -> Tensor:
    """rFFT of the periodic bin-integrated decay ``E_k = (1 - q) q^k / (1 - q^M)``::

        F_m = (1 - q) / (1 - q exp(-2 pi i m / M)),   q = exp(-delta / tau)
    """
    q = torch.exp(-delta_ps / lifetime_ps)[..., None]
    m = torch.arange(n_fine // 2 + 1, dtype=lifetime_ps.dtype, device=lifetime_ps.device)
    phase = torch.polar(torch.ones_like(m), -2.0 * math.pi * m / n_fine)
    return (1.0 - q) / (1.0 - q * phase)


def expected_histograms(params: dict[str, Tensor], config: SimulationConfig, *, normalise: bool = True,
                        irf: Tensor | None = None, decay: Tensor | None = None,
                        dtype: torch.dtype = torch.float64) -> Tensor:
    """Noise-free FLiDAR histograms ``[B, n_bins]`` from physical parameters (differentiable).

    ``params`` holds ``[B]`` tensors named as in :data:`PARAMETERS`. ``normalise=True`` returns
    the shape (each row sums to 1); ``False`` the absolute detected fluence-weighted signal per
    unit excitation energy and unit fluorophore yield (mm^-4 summed over the period). ``irf``:
    fine-grid IRF, ``[n_fine]`` or one per row ``[B, n_fine]`` (default :func:`irf_fine`).
    ``decay``: rFFT of the fluorescence decay on the fine grid, ``[B, n_fine // 2 + 1]`` (default
    the mono-exponential :func:`decay_spectrum` of ``lifetime_ns``; a multi-exponential decay is a
    weighted sum of those). The product of four bin-integrated factors puts
    the mass 1.5 sub-bins early; a linear phase ``exp(-2 pi i m 1.5 / M)`` puts it back.
    """
    missing = [k for k in PARAMETERS if k not in params]
    if missing:
        raise InputError(f"expected_histograms: missing parameters {missing}")
    depth = params["depth_mm"].to(dtype)
    device = depth.device
    lifetime_ps = params["lifetime_ns"].to(dtype) * 1e3
    mu_a, mu_sp = params["mu_a_per_mm"].to(dtype), params["mu_sp_per_mm"].to(dtype)
    n_fine = config.n_bins * config.oversample
    delta = config.bin_ps / config.oversample
    edges = torch.arange(n_fine + 1, dtype=dtype, device=device) * delta
    n, rho = config.refractive_index, config.detector_offset_mm
    excitation = fluence_bins(depth, mu_a, mu_sp, edges, n=n, rho=rho)
    emission = reflectance_bins(depth, mu_a, mu_sp, edges, n=n, rho=rho)
    irf = (irf_fine(config, device) if irf is None else irf).to(device=device, dtype=dtype)
    spectrum = torch.fft.rfft(excitation) * torch.fft.rfft(emission) * torch.fft.rfft(irf)
    spectrum = spectrum * (decay_spectrum(lifetime_ps, n_fine, delta) if decay is None else decay)
    m = torch.arange(spectrum.shape[-1], dtype=dtype, device=device)
    spectrum = spectrum * torch.polar(torch.ones_like(m), -2.0 * math.pi * m * 1.5 / n_fine)
    fine = torch.fft.irfft(spectrum, n=n_fine).clamp_min(0.0)
    coarse = fine.view(*fine.shape[:-1], config.n_bins, config.oversample).sum(-1)
    if normalise:
        coarse = coarse / coarse.sum(-1, keepdim=True)
    return coarse


def _uniform(generator: torch.Generator, n: int, low: float, high: float, log: bool = False) -> Tensor:
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    if log:
        return torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + u * (high - low)


def sample_parameters(n: int, config: SimulationConfig, generator: torch.Generator) -> dict[str, Tensor]:
    """Draw ``n`` parameter sets from the config's ranges (float64, CPU)."""
    photons = _uniform(generator, n, *config.photons, log=True)
    return {
        "depth_mm": _uniform(generator, n, *config.depth_mm),
        "lifetime_ns": _uniform(generator, n, *config.lifetime_ns),
        "mu_a_per_mm": _uniform(generator, n, *config.mu_a_per_mm, log=True),
        "mu_sp_per_mm": _uniform(generator, n, *config.mu_sp_per_mm),
        "photons": photons,
        "background": photons * _uniform(generator, n, *config.background_fraction),
    }


def add_photon_noise(shape: Tensor, photons: Tensor, background: Tensor, generator: torch.Generator) -> Tensor:
    """``h_k ~ Poisson(photons * shape_k + background / T)`` (TCSPC counting in the low-pile-up regime)."""
    rate = photons[:, None] * shape + background[:, None] / shape.shape[-1]
    return torch.poisson(rate, generator=generator)


def simulate(n: int, config: SimulationConfig | None = None, *, seed: int = 0, chunk: int = 256,
             device: str | torch.device | None = "cpu", dtype: torch.dtype = torch.float32,
             **overrides: object) -> TCSPCData:
    """Simulate ``n`` labelled FLiDAR histograms (``overrides`` change config fields).

    Everything is vectorised over the batch (``chunk`` histograms per pass: 256 keeps each
    ``[chunk, 1024]`` float32 temporary at 1 MiB, near the CPU cache; measured faster than 128 or 1024); ``seed`` fixes both the parameters and the photon noise. The kernels are
    evaluated in ``dtype`` (float32 agrees with float64 to ~1e-5 in L1 of a histogram).
    """
    if not isinstance(n, int) or n < 1:
        raise InputError(f"simulate: n must be a positive int, got {n!r}")
    config = (config or SimulationConfig()).replace(**overrides)
    device = resolve_device(device)
    generator = torch.Generator().manual_seed(seed)
    params = sample_parameters(n, config, generator)
    irf_params = sample_irfs(n, config, generator) if config.varies_irf else None
    shapes, irfs = [], []
    for i in range(0, n, chunk):
        rows = slice(i, i + chunk)
        irf = (irf_fine(config, device) if irf_params is None
               else irf_fine(config, device, **{k: v[rows].to(device) for k, v in irf_params.items()}))
        shapes.append(expected_histograms({k: v[rows].to(device) for k, v in params.items()}, config, irf=irf,
                                          dtype=dtype).cpu())
        irfs.append(irf_histogram(config, irf.cpu()))
    histograms = add_photon_noise(torch.cat(shapes).double(), params["photons"], params["background"], generator).float()
    return TCSPCData(histograms, config.bin_ps, irfs[0] if irf_params is None else torch.cat(irfs),
                     {k: v.float() for k, v in params.items()})
