"""From a price panel to model-ready tensors: Alpha158, normalisation, labels, date splits.

Pipeline (Qlib's Alpha158 handler with its benchmark processors, see the README for choices):

1. Alpha158 factors ``x_{t,i}`` from OHLCV up to day ``t`` (:mod:`moe_zoo.finance.alpha158`).
2. Robust z-score per factor, ``z = clip((x - med) / (1.4826 MAD + 1e-12), -3, 3)``, NaN -> 0
   (Qlib's ``RobustZScoreNorm`` + ``Fillna``). ``norm="day"`` (default): ``med, MAD`` of each
   day's cross-section, nothing fitted. ``norm="fit"``: Qlib's benchmark protocol, one ``med, MAD``
   per factor fitted on every stock-day of a fit period (the train years) and stored in the
   :class:`DataConfig`, so a checkpoint normalises new data the same way and one stock's prices
   never move another stock's features.
3. Label ``y_{t,i} = close_{t+2,i} / close_{t+1,i} - 1`` (raw, for evaluation) and its
   ``CSRankNorm`` ``(rank_pct_t(y) - 0.5) * 3.46`` (training target).
4. A sample is a stock's last ``step_len`` days of ``z`` ending at ``t`` (Qlib's ``TSDatasetH``),
   zero-padded before the data starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from moe_zoo.core import Config, InputError
from moe_zoo.finance.alpha158 import compute_wide, feature_names, qlib_label
from moe_zoo.finance.panel import as_panel, calendar, to_wide

NORMS = ("day", "fit")
MAD_SCALE = 1.4826
CLIP = 3.0
RANK_SCALE = 3.46


@dataclass(frozen=True)
class DataConfig(Config):
    """What a model reads: the factor set and the look-back length."""

    feature_set: str = "alpha158"
    step_len: int = 20
    norm: str = "day"
    center: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        feature_names(self.feature_set)
        if self.step_len < 1:
            raise InputError(f"step_len must be >= 1, got {self.step_len}")
        if self.norm not in NORMS:
            raise InputError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.center or self.scale:
            if self.norm != "fit" or not len(self.center) == len(self.scale) == self.d_feat:
                raise InputError(f"DataConfig: fitted statistics need norm='fit' and {self.d_feat} centers and "
                                 f"scales, got {len(self.center)} and {len(self.scale)}")
            if not (np.isfinite(self.center).all() and np.isfinite(self.scale).all() and min(self.scale) > 0):
                raise InputError("DataConfig: fitted centers must be finite and scales finite and > 0")

    @property
    def fitted(self) -> bool:
        """Whether this config carries fitted normalisation statistics."""
        return bool(self.center)

    @property
    def features(self) -> tuple[str, ...]:
        return feature_names(self.feature_set)

    @property
    def d_feat(self) -> int:
        return len(self.features)


def nanmedian_last(values: np.ndarray) -> np.ndarray:
    """Median over the last axis ignoring NaN (NaN where all are NaN); a sort, no masked arrays."""
    ordered = np.sort(values, axis=-1)                       # NaN sort last
    count = np.isfinite(ordered).sum(-1, keepdims=True)
    lo = np.maximum((count - 1) // 2, 0)
    hi = np.maximum(count // 2, 0)
    median = (np.take_along_axis(ordered, lo, -1) + np.take_along_axis(ordered, hi, -1)) / 2
    return np.where(count > 0, median, np.nan)


def cs_robust_zscore(values: np.ndarray) -> np.ndarray:
    """``[T, N, F]`` -> per-day robust z-score over instruments, clipped to ±3, NaN -> 0.

    ``z = clip((x - med_t) / (1.4826 MAD_t + 1e-12), -3, 3)`` with ``MAD_t = med_t |x - med_t|``.
    """
    by_day = np.ascontiguousarray(values.transpose(0, 2, 1))  # [T, F, N]: the stocks on the last axis
    median = nanmedian_last(by_day)
    mad = nanmedian_last(np.abs(by_day - median))
    with np.errstate(invalid="ignore"):
        z = np.clip((by_day - median) / (MAD_SCALE * mad + 1e-12), -CLIP, CLIP).astype(np.float32)
    z[np.isnan(z)] = 0.0
    return np.ascontiguousarray(z.transpose(0, 2, 1))


def fit_robust_zscore(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[T, N, F]`` -> per-factor ``(median, 1.4826 MAD + 1e-12)`` over all finite stock-days
    (Qlib's ``RobustZScoreNorm.fit``; a factor without values gets ``(0, 1)``)."""
    rows = values.reshape(-1, values.shape[-1]).T                # [F, T*N]
    center = nanmedian_last(rows)[:, 0]
    mad = nanmedian_last(np.abs(rows - center[:, None]))[:, 0]
    center = np.where(np.isfinite(center), center, 0.0)
    scale = np.where(np.isfinite(mad), MAD_SCALE * mad + 1e-12, 1.0)
    return center, scale


def fixed_robust_zscore(values: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``clip((x - center) / scale, -3, 3)``, NaN -> 0, with fitted per-factor statistics."""
    with np.errstate(invalid="ignore"):
        z = np.clip((values - center) / scale, -CLIP, CLIP).astype(np.float32)
    z[np.isnan(z)] = 0.0
    return z


def cs_rank_norm(label: np.ndarray) -> np.ndarray:
    """Qlib's ``CSRankNorm``: ``(rank_pct - 0.5) * 3.46`` per day (row); NaN stays NaN."""
    ranks = pd.DataFrame(label).rank(axis=1, pct=True).to_numpy()
    return ((ranks - 0.5) * RANK_SCALE).astype(np.float32)


@dataclass
class FeaturePanel:
    """Normalised factors, labels and membership of one panel on its own calendar.

    ``features [T, N, F]`` float32, ``exists [T, N]`` (the stock has a close that day),
    ``label [T, N]`` raw next-period return (NaN where undefined), ``target [T, N]``
    (CSRankNorm of ``label``), ``close [T, N]`` for backtests; ``quarantined`` lists the input rows
    left out for bad numbers (:func:`~moe_zoo.finance.panel.quarantine`).
    """

    dates: pd.DatetimeIndex
    instruments: pd.Index
    features: np.ndarray
    exists: np.ndarray
    label: np.ndarray
    target: np.ndarray
    close: np.ndarray
    config: DataConfig
    quarantined: list[dict] = field(default_factory=list)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.config.features

    def date_index(self, dates: pd.DatetimeIndex | None) -> np.ndarray:
        """Positions of ``dates`` (or all days) on this panel's calendar."""
        if dates is None:
            return np.arange(len(self.dates))
        pos = self.dates.get_indexer(pd.DatetimeIndex(dates))
        if (pos < 0).any():
            raise InputError(f"dates not in the panel's calendar: {list(pd.DatetimeIndex(dates)[pos < 0][:3])}")
        return pos

    def windows(self, day: int, stocks: np.ndarray, step_len: int | None = None) -> Tensor:
        """``[n, step_len, F]`` look-back windows ending on day index ``day`` for ``stocks``."""
        step_len = step_len or self.config.step_len
        steps = np.arange(day - step_len + 1, day + 1)
        block = self.features[np.clip(steps, 0, None)][:, stocks]          # [L, n, F]
        block = np.where((steps >= 0)[:, None, None], block, 0.0)
        return torch.from_numpy(np.ascontiguousarray(block.transpose(1, 0, 2)))

    def day_members(self, day: int, labelled: bool) -> np.ndarray:
        """Stocks in the cross-section of ``day`` (and with a label, for training/evaluation)."""
        mask = self.exists[day] & (np.isfinite(self.label[day]) if labelled else True)
        return np.flatnonzero(mask)

    def frame(self, values: np.ndarray, name: str, days: np.ndarray | None = None) -> pd.Series:
        """Rows ``values[k]`` for day indices ``days[k]`` (default: every day) as a Series indexed by
        ``(datetime, instrument)``, for the stocks that exist on each day."""
        days = np.arange(len(self.dates)) if days is None else np.asarray(days)
        if values.shape != (len(days), len(self.instruments)):
            raise InputError(f"frame: expected values of shape {(len(days), len(self.instruments))}, got {values.shape}")
        t, i = np.nonzero(self.exists[days])
        index = pd.MultiIndex.from_arrays([self.dates[days][t], self.instruments[i]], names=["datetime", "instrument"])
        return pd.Series(values[t, i], index=index, name=name)


def compute_factors(panel: pd.DataFrame, feature_set: str = "alpha158") -> pd.DataFrame:
    """Raw (un-normalised) Alpha158 factors in long format, indexed by ``(datetime, instrument)``."""
    panel = as_panel(panel)
    names = feature_names(feature_set)
    wide = {f: to_wide(panel, f) for f in panel.columns}
    factors = compute_wide(wide, names)
    out = pd.DataFrame({n: f.stack(future_stack=True) for n, f in factors.items()})
    out.index = out.index.set_names(["datetime", "instrument"])
    return out.reindex(panel.index)


def compute_labels(panel: pd.DataFrame) -> pd.Series:
    """Qlib's raw label ``close_{t+2} / close_{t+1} - 1`` per ``(datetime, instrument)`` (NaN at the end)."""
    panel = as_panel(panel)
    label = qlib_label(to_wide(panel, "close")).stack(future_stack=True)
    return label.rename("label").rename_axis(["datetime", "instrument"]).reindex(panel.index)


def build_feature_panel(panel: pd.DataFrame, config: DataConfig | None = None,
                        fit_period: tuple[str, str] | None = None) -> FeaturePanel:
    """Compute the normalised factors and labels of a panel (see the module docstring).

    With ``norm="fit"`` and no statistics in ``config`` they are fitted on the stock-days of
    ``fit_period`` (inclusive dates) and the returned panel's ``config`` carries them.
    """
    config = config or DataConfig()
    if config.norm == "fit" and not config.fitted and fit_period is None:
        raise InputError("build_feature_panel: norm='fit' needs fitted statistics or a fit_period")
    panel = as_panel(panel)
    dates = calendar(panel)
    instruments = pd.Index(sorted(panel.index.get_level_values("instrument").unique()))
    wide = {f: to_wide(panel, f, dates, instruments) for f in panel.columns}
    factors = compute_wide(wide, config.features)
    raw = np.stack([factors[n].to_numpy(dtype=np.float64) for n in config.features], axis=-1)
    close = wide["close"].to_numpy(dtype=np.float64)
    exists = np.isfinite(close)
    raw[~exists] = np.nan                      # non-members do not enter the cross-section
    label = qlib_label(wide["close"]).to_numpy(dtype=np.float64, copy=True)
    label[~exists] = np.nan
    if config.norm == "day":
        features = cs_robust_zscore(raw)
    else:
        if not config.fitted:
            lo, hi = (pd.Timestamp(d) for d in fit_period)
            inside = (dates >= lo) & (dates <= hi)
            if not exists[inside].any():
                raise InputError(f"build_feature_panel: no stock-days in the fit period {fit_period}")
            center, scale = fit_robust_zscore(raw[inside])
            config = replace(config, center=tuple(map(float, center)), scale=tuple(map(float, scale)))
        features = fixed_robust_zscore(raw, np.asarray(config.center), np.asarray(config.scale))
    return FeaturePanel(dates=dates, instruments=instruments, features=features, exists=exists,
                        label=label, target=cs_rank_norm(label), close=close, config=config,
                        quarantined=list(panel.attrs.get("quarantined", [])))


# ----------------------------------------------------------------------------- splits
@dataclass(frozen=True)
class Split(Config):
    """Train / valid / test date ranges (inclusive, ``YYYY-MM-DD``)."""

    train: tuple[str, str]
    valid: tuple[str, str]
    test: tuple[str, str]

    def dates(self, segment: str, calendar_: pd.DatetimeIndex) -> pd.DatetimeIndex:
        if segment not in ("train", "valid", "test"):
            raise InputError(f"segment must be train, valid or test, got {segment!r}")
        lo, hi = (pd.Timestamp(d) for d in getattr(self, segment))
        return calendar_[(calendar_ >= lo) & (calendar_ <= hi)]


def walk_forward_splits(days: pd.DatetimeIndex, *, train: int, valid: int, test: int, step: int | None = None,
                        gap: int = 2, warmup: int = 0, expanding: bool = False) -> list[Split]:
    """Rolling (Qlib ``RollingGen``-style) splits by trading day.

    Folds ``k = 0, 1, ...``: train days ``[warmup + k*step, ... + train)`` (from ``warmup`` when
    ``expanding``), then ``gap`` skipped days, ``valid`` days, ``gap`` days, ``test`` days. The
    ``gap`` (>= 2, the label horizon) keeps every label of a segment inside that segment: the
    label of day ``t`` reads the close of ``t+2``. The last fold's test window may be shorter
    (at least half of ``test``); labels need the last 2 days, which are never used.
    """
    if min(train, valid, test) < 1 or gap < 0 or warmup < 0:
        raise InputError("walk_forward_splits: train/valid/test must be >= 1, gap and warmup >= 0")
    step = step or test
    usable = len(days) - 2                     # the last two days have no label
    splits = []
    k = 0
    while True:
        first = warmup + k * step
        train_lo = warmup if expanding else first
        train_hi = first + train
        valid_lo = train_hi + gap
        test_lo = valid_lo + valid + gap
        test_hi = min(test_lo + test, usable)
        if test_hi - test_lo < max(1, test // 2):
            break
        splits.append(Split(train=date_span(days, train_lo, train_hi), valid=date_span(days, valid_lo, valid_lo + valid),
                            test=date_span(days, test_lo, test_hi)))
        k += 1
    if not splits:
        raise InputError(f"walk_forward_splits: {len(days)} days are too few for warmup {warmup} + train {train} "
                         f"+ valid {valid} + test {test} + gaps")
    return splits


def date_span(days: pd.DatetimeIndex, lo: int, hi: int) -> tuple[str, str]:
    """``(first, last)`` dates of ``days[lo:hi]`` as ``YYYY-MM-DD`` strings."""
    return f"{days[lo]:%Y-%m-%d}", f"{days[hi - 1]:%Y-%m-%d}"
