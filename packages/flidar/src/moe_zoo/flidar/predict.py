"""High-level inference: histograms in, depth, lifetime and uncertainty out.

Inputs are checked before the network sees them: counts must be finite, non-negative, at most
``2^32`` per bin (more than a 32-bit TCSPC counter holds: not a measurement) and not all zero in
a histogram; a file's grid is rebinned onto the model's and its measured IRF checked against the
IRFs the model was trained on (:mod:`.instrument`). Histograms whose total count lies outside
``[0.5 N_min, 2 N_max (1 + b_max)]`` of the training photon range are answered, with a warning,
at the maximum uncertainty ``u = 1`` and ``in_training_range = False``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from moe_zoo.core import InputError, create_model, load_model, resolve_device
from moe_zoo.flidar.data import read_tcspc
from moe_zoo.flidar.instrument import check_irf, rebin
from moe_zoo.flidar.model import EXPERT_NAMES, EvidenceMoE, denormalise_targets
from moe_zoo.flidar.simulator import SimulationConfig, TCSPCData

MAX_COUNT = 2.0**32     # per bin: more than a 32-bit TCSPC counter holds

DEFAULT_MODEL = "evidence-moe-flidar"


@dataclass(frozen=True)
class FLiDARPrediction:
    """Per histogram: depth (mm), lifetime (ns), evidential uncertainty ``u = K / S`` in (0, 1]
    fused over the experts (1 for histograms outside the training photon range), the critics'
    expected absolute error (mm, ns), the decider's weights over the experts (``[N, 2, 3]``:
    depth/lifetime x early/late/global), and whether each histogram's total count lies in the
    range the model was trained on."""

    depth_mm: Tensor
    lifetime_ns: Tensor
    depth_uncertainty: Tensor
    lifetime_uncertainty: Tensor
    depth_error_mm: Tensor
    lifetime_error_ns: Tensor
    expert_weights: Tensor
    in_training_range: Tensor

    def __len__(self) -> int:
        return self.depth_mm.shape[0]

    def rows(self) -> list[dict[str, float]]:
        """One dict per histogram (for printing or a CSV)."""
        columns = {"depth_mm": self.depth_mm, "depth_error_mm": self.depth_error_mm,
                   "depth_uncertainty": self.depth_uncertainty, "lifetime_ns": self.lifetime_ns,
                   "lifetime_error_ns": self.lifetime_error_ns, "lifetime_uncertainty": self.lifetime_uncertainty}
        return [{**{k: float(v[i]) for k, v in columns.items()}, "in_training_range": bool(self.in_training_range[i])}
                for i in range(len(self))]


_CACHE: dict[str, EvidenceMoE] = {}


def load(model: str | Path | EvidenceMoE | None = None, *, device: str | torch.device | None = None) -> EvidenceMoE:
    """The shipped EvidenceMoE (default), a checkpoint path, or a model passed through."""
    if isinstance(model, EvidenceMoE):
        return model.to(resolve_device(device))
    key = str(model or DEFAULT_MODEL)
    if key not in _CACHE:
        loaded = create_model(DEFAULT_MODEL, pretrained=True) if model is None else load_model(model)
        if not isinstance(loaded, EvidenceMoE) or loaded.critics is None:
            raise InputError(f"model {key!r} is not an EvidenceMoE with critics")
        _CACHE[key] = loaded.eval()
    return _CACHE[key].to(resolve_device(device))


def _measured(data: TCSPCData, simulation: SimulationConfig) -> tuple[Tensor, Tensor]:
    """A file's counts and IRF on the model's grid, the IRF checked and cleaned."""
    counts = rebin(data.histograms, data.bin_ps, simulation)
    irf = rebin(data.irf, data.bin_ps, simulation)
    return counts, check_irf(irf, simulation)


def _check_counts(counts: Tensor, n_bins: int) -> None:
    if counts.dim() != 2 or counts.shape[-1] != n_bins or counts.shape[0] == 0:
        raise InputError(f"histograms: expected [N, {n_bins}] photon counts, got shape {tuple(counts.shape)}")
    if not torch.isfinite(counts).all() or (counts < 0).any():
        raise InputError("histograms: counts must be finite and non-negative")
    if (counts > MAX_COUNT).any():
        rows = sorted({int(i) for i in (counts > MAX_COUNT).any(-1).nonzero().squeeze(-1)})[:5]
        raise InputError(f"histograms: counts above {MAX_COUNT:.3g} per bin (rows {rows}) are more than a 32-bit TCSPC "
                         "counter holds; not a measurement")
    empty = (counts.sum(-1) == 0).nonzero().squeeze(-1).tolist()
    if empty:
        raise InputError(f"histograms: rows {empty[:5]}{' ...' if len(empty) > 5 else ''} hold no photons at all")


def _prepare(histograms: Tensor | np.ndarray | TCSPCData | str | Path, model: EvidenceMoE) -> tuple[Tensor, Tensor | None]:
    """Counts ``[N, n_bins]`` on the model's grid and their IRF (None: the nominal one)."""
    simulation = model.config.simulation
    if isinstance(histograms, str | Path):
        histograms = read_tcspc(histograms)
    irf = None
    if isinstance(histograms, TCSPCData):
        histograms, irf = _measured(histograms, simulation)
    try:
        counts = torch.as_tensor(histograms if isinstance(histograms, Tensor) else np.asarray(histograms, dtype=np.float64),
                                 dtype=torch.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"histograms: not numeric photon counts ({err})") from None
    counts = counts[None] if counts.dim() == 1 else counts
    _check_counts(counts, simulation.n_bins)
    return counts.float(), irf


def in_training_range(counts: Tensor, simulation: SimulationConfig) -> Tensor:
    """``[N]`` whether each total count lies in ``[0.5 N_min, 2 N_max (1 + b_max)]``."""
    total = counts.sum(-1)
    low = 0.5 * simulation.photons[0]
    high = 2.0 * simulation.photons[1] * (1.0 + simulation.background_fraction[1])
    return (total >= low) & (total <= high)


@torch.no_grad()
def predict(histograms: Tensor | np.ndarray | TCSPCData | str | Path, model: str | Path | EvidenceMoE | None = None,
            *, device: str | torch.device | None = None, batch_size: int = 1024) -> FLiDARPrediction:
    """Depth, lifetime and uncertainty for TCSPC histograms: ``[N, T]`` or ``[T]`` counts on the
    model's grid, taken to share the simulator's nominal IRF and time origin; or a
    :class:`TCSPCData` or ``.npz``/``.h5`` file path, whose own grid and measured IRF are used."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"predict: batch_size must be a positive int, got {batch_size!r}")
    net = load(model, device=device)
    counts, irf = _prepare(histograms, net)
    device = next(net.parameters()).device
    parts = []
    for i in range(0, counts.shape[0], batch_size):
        rows = None if irf is None else (irf[i:i + batch_size] if irf.dim() == 2 else irf).to(device)
        out = net(counts[i:i + batch_size].to(device), rows)
        ranges = net.target_ranges
        scale = ranges[:, 1] - ranges[:, 0]
        parts.append((denormalise_targets(out.prediction, ranges), out.fused_uncertainty, out.fused_error * scale,
                      out.gate_weights))
    values, uncertainty, error, weights = (torch.cat(p).cpu() for p in zip(*parts))
    inside = in_training_range(counts, net.config.simulation)
    if not inside.all():
        uncertainty[~inside] = 1.0
        warnings.warn(f"predict: {int((~inside).sum())} of {len(inside)} histograms have total counts outside the "
                      "training range; their uncertainty is set to 1 (no evidence)", stacklevel=2)
    return FLiDARPrediction(values[:, 0], values[:, 1], uncertainty[:, 0], uncertainty[:, 1], error[:, 0], error[:, 1],
                            weights, inside)


__all__ = ["EXPERT_NAMES", "FLiDARPrediction", "in_training_range", "load", "predict"]
