"""Inference: load a model, score cross-sections, return scores per ``(datetime, instrument)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from moe_zoo.core import InputError, create_model, load_model, resolve_device
from moe_zoo.finance.dataset import DataConfig, FeaturePanel, build_feature_panel


def load(model: str | Path | nn.Module = "miga-conv", *, device: str | torch.device | None = None) -> nn.Module:
    """A ready model: an ``nn.Module`` as is, a registry name with shipped weights, or a checkpoint path."""
    if isinstance(model, nn.Module):
        net = model
    elif isinstance(model, Path) or (isinstance(model, str) and model.endswith(".safetensors")):
        net = load_model(model)
    elif isinstance(model, str):
        net = create_model(model, pretrained=True)
    else:
        raise InputError(f"model must be a module, a registry name or a .safetensors path, got {type(model).__name__}")
    return net.to(resolve_device(device)).eval()


def data_config(model: nn.Module) -> DataConfig:
    config = getattr(model, "config", None)
    if config is None or not isinstance(getattr(config, "data", None), DataConfig):
        raise InputError(f"{type(model).__name__} is not a finance model (its config has no DataConfig)")
    return config.data


def features_for(model: nn.Module, panel: pd.DataFrame | FeaturePanel) -> FeaturePanel:
    """The panel's factors in the model's feature set and normalisation (computed unless given)."""
    data = data_config(model)
    if isinstance(panel, FeaturePanel):
        if panel.config.feature_set != data.feature_set:
            raise InputError(f"feature panel has {panel.config.feature_set!r} factors; the model needs {data.feature_set!r}")
        normalisation = ("norm", "center", "scale")
        if any(getattr(panel.config, k) != getattr(data, k) for k in normalisation):
            raise InputError(f"feature panel is normalised with norm={panel.config.norm!r} (fitted: "
                             f"{panel.config.fitted}); the model needs norm={data.norm!r} (fitted: {data.fitted})")
        return panel
    return build_feature_panel(panel, data)


def _chunks(sizes: list[int], limit: int) -> list[list[int]]:
    """Group consecutive positions so each group's total size stays within ``limit`` (one at least)."""
    groups: list[list[int]] = []
    total = limit + 1
    for position, size in enumerate(sizes):
        if total + size > limit:
            groups.append([])
            total = 0
        groups[-1].append(position)
        total += size
    return groups


@torch.no_grad()
def score_days(model: nn.Module, panel: FeaturePanel, days: np.ndarray, *, labelled: bool = False,
               device: str | torch.device | None = None, max_rows: int = 4096) -> np.ndarray:
    """Scores ``[len(days), N]`` (NaN outside a day's cross-section).

    Stocks are scored independently, so several days' cross-sections share one forward pass
    (up to ``max_rows`` stocks).
    """
    device = resolve_device(device) if device is not None else next(model.parameters()).device
    step_len = data_config(model).step_len
    was_training = model.training
    model.eval()
    out = np.full((len(days), len(panel.instruments)), np.nan, dtype=np.float64)
    members = [panel.day_members(int(day), labelled) for day in days]
    rows = [r for r in range(len(days)) if len(members[r])]
    for group in _chunks([len(members[r]) for r in rows], max_rows):
        chunk = [rows[g] for g in group]
        x = torch.cat([panel.windows(int(days[r]), members[r], step_len) for r in chunk]).to(device)
        scores = model(x).score.double().cpu().numpy()
        offsets = np.cumsum([0] + [len(members[r]) for r in chunk])
        for r, lo, hi in zip(chunk, offsets[:-1], offsets[1:]):
            out[r, members[r]] = scores[lo:hi]
    model.train(was_training)
    return out


def predict(model: str | Path | nn.Module, panel: pd.DataFrame | FeaturePanel, *, start: str | None = None,
            end: str | None = None, device: str | torch.device | None = None) -> pd.Series:
    """Scores for every stock and day of ``panel`` in ``[start, end]``: a Series named ``score``
    indexed by ``(datetime, instrument)``; higher = expected to outperform over the next period.

    Day ``t``'s score uses prices up to ``t`` only; trade it at the close of ``t+1`` (see backtest).
    """
    model = load(model, device=device)
    fp = features_for(model, panel)
    mask = np.ones(len(fp.dates), dtype=bool)
    if start is not None:
        mask &= fp.dates >= pd.Timestamp(start)
    if end is not None:
        mask &= fp.dates <= pd.Timestamp(end)
    days = np.flatnonzero(mask)
    if not len(days):
        raise InputError(f"predict: no trading days in [{start}, {end}]")
    scores = score_days(model, fp, days)
    return fp.frame(scores, "score", days).dropna()


@torch.no_grad()
def route(model: nn.Module, panel: pd.DataFrame | FeaturePanel, day: str | None = None) -> pd.DataFrame:
    """MIGA's routing for one day's cross-section: top expert, its group and weight per stock."""
    model = load(model)
    if not hasattr(model, "router"):
        raise InputError(f"{type(model).__name__} has no router")
    fp = features_for(model, panel)
    index = len(fp.dates) - 1 if day is None else int(fp.date_index(pd.DatetimeIndex([day]))[0])
    stocks = fp.day_members(index, labelled=False)
    device = next(model.parameters()).device
    routing = model(fp.windows(index, stocks, data_config(model).step_len).to(device)).routing
    best = routing.weights.argmax(-1, keepdim=True)
    expert = routing.indices.gather(1, best).squeeze(1).cpu().numpy()
    return pd.DataFrame({"expert": expert, "group": expert // model.config.experts_per_group,
                         "weight": routing.weights.gather(1, best).squeeze(1).cpu().numpy()},
                        index=pd.Index(fp.instruments[stocks], name="instrument"))
