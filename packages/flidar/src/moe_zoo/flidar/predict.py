"""High-level inference: histograms in, depth, lifetime and uncertainty out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from moe_zoo.core import InputError, create_model, load_model, resolve_device
from moe_zoo.flidar.data import read_tcspc
from moe_zoo.flidar.model import EXPERT_NAMES, EvidenceMoE, denormalise_targets
from moe_zoo.flidar.simulator import TCSPCData

DEFAULT_MODEL = "evidence-moe-flidar"


@dataclass(frozen=True)
class FLiDARPrediction:
    """Per histogram: depth (mm), lifetime (ns), evidential uncertainty ``u = K / S`` in (0, 1]
    fused over the experts, the critics' expected absolute error (mm, ns), and the decider's
    weights over the experts (``[N, 2, 3]``: depth/lifetime x early/late/global)."""

    depth_mm: Tensor
    lifetime_ns: Tensor
    depth_uncertainty: Tensor
    lifetime_uncertainty: Tensor
    depth_error_mm: Tensor
    lifetime_error_ns: Tensor
    expert_weights: Tensor

    def __len__(self) -> int:
        return self.depth_mm.shape[0]

    def rows(self) -> list[dict[str, float]]:
        """One dict per histogram (for printing or a CSV)."""
        columns = {"depth_mm": self.depth_mm, "depth_error_mm": self.depth_error_mm,
                   "depth_uncertainty": self.depth_uncertainty, "lifetime_ns": self.lifetime_ns,
                   "lifetime_error_ns": self.lifetime_error_ns, "lifetime_uncertainty": self.lifetime_uncertainty}
        return [{k: float(v[i]) for k, v in columns.items()} for i in range(len(self))]


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


def _as_counts(histograms: Tensor | np.ndarray | TCSPCData | str | Path, model: EvidenceMoE) -> Tensor:
    expected = model.config.simulation
    if isinstance(histograms, str | Path):
        histograms = read_tcspc(histograms)
    if isinstance(histograms, TCSPCData):
        if abs(histograms.bin_ps - expected.bin_ps) > 1e-3 * expected.bin_ps:
            raise InputError(f"histograms: bin width {histograms.bin_ps:.3f} ps, the model expects {expected.bin_ps:.3f} ps")
        histograms = histograms.histograms
    counts = torch.as_tensor(np.asarray(histograms) if not isinstance(histograms, Tensor) else histograms,
                             dtype=torch.float32)
    counts = counts[None] if counts.dim() == 1 else counts
    if counts.dim() != 2 or counts.shape[-1] != expected.n_bins or counts.shape[0] == 0:
        raise InputError(f"histograms: expected [N, {expected.n_bins}] photon counts, got shape {tuple(counts.shape)}")
    if not torch.isfinite(counts).all() or (counts < 0).any():
        raise InputError("histograms: counts must be finite and non-negative")
    return counts


@torch.no_grad()
def predict(histograms: Tensor | np.ndarray | TCSPCData | str | Path, model: str | Path | EvidenceMoE | None = None,
            *, device: str | torch.device | None = None, batch_size: int = 1024) -> FLiDARPrediction:
    """Depth, lifetime and uncertainty for TCSPC histograms (``[N, T]`` or ``[T]`` counts,
    :class:`TCSPCData`, or a ``.npz``/``.h5`` file path)."""
    net = load(model, device=device)
    counts = _as_counts(histograms, net)
    device = next(net.parameters()).device
    parts = []
    for i in range(0, counts.shape[0], batch_size):
        out = net(counts[i:i + batch_size].to(device))
        ranges = net.target_ranges
        scale = ranges[:, 1] - ranges[:, 0]
        parts.append((denormalise_targets(out.prediction, ranges), out.fused_uncertainty, out.fused_error * scale,
                      out.gate_weights))
    values, uncertainty, error, weights = (torch.cat(p).cpu() for p in zip(*parts))
    return FLiDARPrediction(values[:, 0], values[:, 1], uncertainty[:, 0], uncertainty[:, 1], error[:, 0], error[:, 1],
                            weights)


__all__ = ["EXPERT_NAMES", "FLiDARPrediction", "load", "predict"]
