"""Signal metrics (IC, ICIR, Rank IC, Rank ICIR) and Qlib's ``risk_analysis``.

``IC_t = corr(s_t, r_t)`` (Pearson) over the stocks of day ``t`` with both a score ``s`` and a
realised label ``r``; Rank IC uses Spearman (Pearson of the ranks). ``IC = mean_t IC_t``,
``ICIR = mean_t IC_t / std_t IC_t`` (not annualised, as Qlib's ``SigAnaRecord`` reports it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from moe_zoo.core import InputError

TRADING_DAYS = 252


@dataclass(frozen=True)
class SignalMetrics:
    ic: float
    icir: float
    rank_ic: float
    rank_icir: float
    days: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _aligned(scores: pd.Series, labels: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not isinstance(scores, pd.Series) or not isinstance(labels, pd.Series):
        raise InputError("scores and labels must be pandas Series indexed by (datetime, instrument)")
    if scores.index.nlevels != 2:
        raise InputError("scores must be indexed by (datetime, instrument)")
    joined = pd.concat({"s": scores, "r": labels}, axis=1, join="inner").dropna()
    if joined.empty:
        raise InputError("scores and labels share no (datetime, instrument) rows with values")
    return joined["s"].unstack(), joined["r"].unstack()


def rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row pair over the entries both rows have (NaN elsewhere)."""
    mask = np.isfinite(a) & np.isfinite(b)
    n = mask.sum(1)
    a = np.where(mask, a, 0.0)
    b = np.where(mask, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        am = a.sum(1, keepdims=True) / n[:, None]
        bm = b.sum(1, keepdims=True) / n[:, None]
        da, db = np.where(mask, a - am, 0.0), np.where(mask, b - bm, 0.0)
        out = (da * db).sum(1) / np.sqrt((da * da).sum(1) * (db * db).sum(1))
    out[n < 2] = np.nan
    return out


def daily_ic_series(scores: pd.Series, labels: pd.Series) -> pd.DataFrame:
    """Per-day ``ic`` and ``rank_ic`` (rows: dates)."""
    s, r = _aligned(scores, labels)
    ic = rowwise_pearson(s.to_numpy(float), r.to_numpy(float))
    rank_ic = rowwise_pearson(s.rank(axis=1).to_numpy(float), r.rank(axis=1).to_numpy(float))
    return pd.DataFrame({"ic": ic, "rank_ic": rank_ic}, index=s.index)


def signal_metrics(scores: pd.Series, labels: pd.Series) -> SignalMetrics:
    """IC, ICIR, Rank IC, Rank ICIR of ``scores`` against realised ``labels``."""
    daily = daily_ic_series(scores, labels).dropna()
    if daily.empty:
        raise InputError("signal_metrics: no day has two or more stocks with score and label")

    def ir(x: pd.Series) -> float:
        sd = x.std(ddof=1)
        return float(x.mean() / sd) if len(x) > 1 and sd > 0 else float("nan")

    return SignalMetrics(float(daily["ic"].mean()), ir(daily["ic"]), float(daily["rank_ic"].mean()),
                         ir(daily["rank_ic"]), len(daily))


def risk_analysis(returns: pd.Series, periods: int = TRADING_DAYS) -> dict[str, float]:
    """Qlib's ``risk_analysis`` (``mode="sum"``) of daily (excess) returns ``r``.

    ``annualized_return = mean(r) * N``, ``information_ratio = mean(r) / std(r) * sqrt(N)``,
    ``max_drawdown = min_t (sum_{u<=t} r_u - max_{v<=t} sum_{u<=v} r_u)`` (additive curve, as Qlib).
    ``N = 252`` for US days (Qlib's CN default is 238).
    """
    r = pd.Series(returns, dtype=float).dropna()
    if r.empty:
        raise InputError("risk_analysis: no returns")
    mean, std = r.mean(), r.std(ddof=1)
    curve = r.cumsum()
    return {
        "mean": float(mean),
        "std": float(std),
        "annualized_return": float(mean * periods),
        "information_ratio": float(mean / std * np.sqrt(periods)) if std > 0 else float("nan"),
        "max_drawdown": float((curve - curve.cummax()).min()),
    }
