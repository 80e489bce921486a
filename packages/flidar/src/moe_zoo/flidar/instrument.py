"""The instrument side of a measurement: time grid, IRF time origin and width, alignment.

A TCSPC histogram is ``h = IRF * s(depth, tau, optics)`` on a circular time axis (one laser
period). Its time origin is arbitrary (cable delays, TAC offset), so the time of flight -- the
depth -- is only defined relative to the IRF measured on the same bins. Before the networks see
a histogram, it is moved so that its IRF peaks where the simulator's nominal IRF peaks:

    t_peak = k + (l_{k-1} - l_{k+1}) / (2 (l_{k-1} - 2 l_k + l_{k+1})),   l = ln IRF,  k = argmax IRF

(the vertex of the parabola through the log-IRF at the peak bin and its neighbours; exact for a
Gaussian peak), shift ``s = t_ref - t_peak`` bins, and with ``s = n + f`` (``n`` integer,
``0 <= f < 1``) the circular linear interpolation

    h'_k = (1 - f) h_{k-n} + f h_{k-n-1}

which keeps the total count. The same shift is applied to the IRF, whose aligned shape stays a
network input (its width and tail are conditioning, randomised in training).

A file on another grid is rebinned onto the model's grid by overlap: coarse bin ``j`` gets
``sum_i h_i |B_i ∩ C_j| / |B_i|`` (exact sums when the ratio of bin widths is an integer).
Only finer grids spanning the same laser period are accepted; coarser ones would need detail
the file does not hold.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from moe_zoo.core import InputError
from moe_zoo.flidar.simulator import SimulationConfig, irf_histogram

WIDTH_TOLERANCE = 0.1   # relative margin around the training IRFs' widths


def clean_irf(irf: Tensor) -> Tensor:
    """``[..., T]`` -> the IRF minus its median (the flat dark-count floor of a measured IRF),
    clamped at zero and normalised to sum 1."""
    floor = irf.median(-1, keepdim=True).values
    clean = (irf - floor).clamp_min(0.0)
    total = clean.sum(-1, keepdim=True)
    if bool((total <= 0).any()):
        raise InputError("irf: no peak above its median (a flat or empty IRF cannot set the time origin)")
    return clean / total


def peak_position(irf: Tensor) -> Tensor:
    """Sub-bin peak position ``[...]`` of ``irf [..., T]`` in bin units (bin ``k`` spans ``[k, k+1)``,
    its centre is ``k + 0.5``), from the log-parabola through the three bins around the maximum."""
    n_bins = irf.shape[-1]
    k = irf.argmax(-1, keepdim=True)
    floor = irf.amax(-1, keepdim=True) * 1e-9
    logs = [irf.gather(-1, (k + d) % n_bins).clamp_min(floor).log() for d in (-1, 0, 1)]
    curvature = logs[0] - 2.0 * logs[1] + logs[2]
    offset = torch.where(curvature < 0, 0.5 * (logs[0] - logs[2]) / curvature.clamp_max(-1e-12), 0.0)
    return (k + 0.5 + offset.clamp(-0.5, 0.5)).squeeze(-1).to(irf.dtype)


def shift_bins(values: Tensor, shift: Tensor) -> Tensor:
    """Circularly delay each row of ``values [B, T]`` by ``shift [B]`` bins (fractional: linear
    interpolation ``h'_k = (1 - f) h_{k-n} + f h_{k-n-1}``); row sums are kept."""
    n_bins = values.shape[-1]
    whole = torch.floor(shift)
    frac = (shift - whole)[:, None].to(values.dtype)
    index = (torch.arange(n_bins, device=values.device) - whole.long()[:, None]) % n_bins
    return (1.0 - frac) * values.gather(-1, index) + frac * values.gather(-1, (index - 1) % n_bins)


def align(histograms: Tensor, irf: Tensor, reference_peak: float) -> tuple[Tensor, Tensor]:
    """Move ``histograms [B, T]`` and their ``irf`` (``[T]`` or ``[B, T]``) so the IRF peaks at
    ``reference_peak`` (bins); returns both aligned, the IRF as ``[B, T]`` (one IRF for all rows:
    its peak found and the IRF moved once, then expanded)."""
    irf = irf.to(histograms.dtype)
    rows = irf if irf.dim() == 2 else irf[None]
    shift = reference_peak - peak_position(rows)
    return shift_bins(histograms, shift.expand(histograms.shape[0])), shift_bins(rows, shift).expand_as(histograms)


def row_widths(irf: Tensor) -> Tensor:
    """Full widths (bins) of IRFs ``[B, T]`` at half and at a tenth of their maximum, ``[B, 2]``
    (float64): each row rolled so its peak sits mid-period, ``left = f - (x_f - c) / (x_f - x_{f-1})``
    and ``right = l + (x_l - c) / (x_l - x_{l+1})`` for the first and last bins ``f``, ``l`` at or
    above the cut ``c`` (linear interpolation between bins; a crossing at the grid's edge stays on
    the bin), width ``right - left``."""
    irf = irf.double()
    n_bins = irf.shape[-1]
    position = torch.arange(n_bins, device=irf.device)
    irf = irf.gather(-1, (position - (n_bins // 2 - irf.argmax(-1, keepdim=True))) % n_bins)   # per-row roll
    peak, top = irf.argmax(-1, keepdim=True), irf.amax(-1, keepdim=True)

    def at(index: Tensor) -> Tensor:
        return irf.gather(-1, index.clamp(0, n_bins - 1))

    out = []
    for level in (0.5, 0.1):
        cut = level * top
        above = (irf >= cut).to(torch.uint8)
        first = above.argmax(-1, keepdim=True)                            # first bin at or above the cut
        last = n_bins - 1 - above.flip(-1).argmax(-1, keepdim=True)       # last one
        left = torch.where(first > 0, first - (at(first) - cut) / (at(first) - at(first - 1)), first.double())
        right = torch.where(last + 1 < n_bins, last + (at(last) - cut) / (at(last) - at(last + 1)), last.double())
        out.append(torch.where((first <= peak) & (peak <= last), right - left, math.inf))
    return torch.cat(out, -1)


def widths(irf: Tensor) -> tuple[float, float]:
    """Full widths (bins) of a ``[T]`` IRF at half and at a tenth of its maximum (:func:`row_widths`)."""
    half, tenth = row_widths(irf[None])[0].tolist()
    return half, tenth


@functools.lru_cache(maxsize=8)
def trained_widths(simulation: SimulationConfig) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(min, max)`` of the FWHM and of the full width at 10 % (bins) over the IRFs at the corners
    of ``simulation``'s FWHM x tail box (binned, nominal centre): the family the model was trained on."""
    corners = [widths(irf_histogram(simulation.replace(irf_fwhm_ps=f, irf_tail_ps=t)))
               for f in simulation.irf_fwhm_range_ps for t in simulation.irf_tail_range_ps]
    return tuple((min(w[i] for w in corners), max(w[i] for w in corners)) for i in (0, 1))


def check_irf(irf: Tensor, simulation: SimulationConfig) -> Tensor:
    """The cleaned IRF (``[T]``, or ``[B, T]`` checked row by row) if its widths lie within
    :func:`trained_widths` ± :data:`WIDTH_TOLERANCE`; otherwise a clear :class:`InputError`
    naming the first row's first width outside."""
    clean = clean_irf(irf)
    measured = row_widths(clean.reshape(-1, clean.shape[-1]))                  # [B, 2]
    bounds = trained_widths(simulation)
    low = torch.tensor([low * (1 - WIDTH_TOLERANCE) for low, _ in bounds], dtype=torch.float64)
    high = torch.tensor([high * (1 + WIDTH_TOLERANCE) for _, high in bounds], dtype=torch.float64)
    outside = ~((low <= measured) & (measured <= high))
    if bool(outside.any()):
        row = int(outside.any(-1).nonzero()[0])
        column = int(outside[row].nonzero()[0])
        name = ("FWHM", "full width at 10 % of the maximum")[column]
        value, (low, high), bin_ps = float(measured[row, column]), bounds[column], simulation.bin_ps
        raise InputError(f"irf: {name} {value * bin_ps:.0f} ps is outside the {low * bin_ps:.0f}-{high * bin_ps:.0f} ps "
                         f"of the IRFs the model was trained on (FWHM {simulation.irf_fwhm_range_ps} ps, tail "
                         f"{simulation.irf_tail_range_ps} ps): this model cannot use this instrument")
    return clean


def rebin(values: Tensor, bin_ps: float, simulation: SimulationConfig) -> Tensor:
    """``values [..., T]`` on bins of ``bin_ps`` -> the model's grid ``[..., n_bins]`` by bin overlap.

    Accepts grids of the same laser period (``T bin_ps`` within half a model bin of
    ``n_bins bin_ps``) with bins no wider than the model's; anything else is an :class:`InputError`.
    """
    n_in, target = values.shape[-1], simulation.bin_ps
    span, period = n_in * bin_ps, simulation.period_ps
    if abs(bin_ps - target) <= 1e-3 * target and n_in == simulation.n_bins:
        return values
    if abs(span - period) > 0.5 * target or bin_ps > target * (1 + 1e-3):
        raise InputError(f"histograms: {n_in} bins of {bin_ps:.3f} ps (span {span:.0f} ps); the model needs one laser period "
                         f"of {period:.0f} ps in bins of at most {target:.3f} ps (it uses {simulation.n_bins} bins of "
                         f"{target:.3f} ps; finer grids are rebinned, coarser ones or other periods are refused)")
    edges_in = torch.arange(n_in + 1, dtype=torch.float64) * (period / n_in)   # stretch to the exact period
    edges_out = torch.arange(simulation.n_bins + 1, dtype=torch.float64) * target
    low = torch.maximum(edges_in[:-1, None], edges_out[None, :-1])
    high = torch.minimum(edges_in[1:, None], edges_out[None, 1:])
    overlap = (high - low).clamp_min(0.0) / (edges_in[1:] - edges_in[:-1])[:, None]     # [n_in, n_bins]
    return (values.double() @ overlap).to(values.dtype)
