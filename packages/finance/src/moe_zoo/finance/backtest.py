"""Qlib's TopK-Dropout strategy, backtested on daily closes against the equal-weight universe.

Decision on trade day ``t`` with the scores ``s`` of the previous trading day (as Qlib's
``TopkDropoutStrategy`` with ``method_sell="bottom"``, ``method_buy="top"``, ``hold_thresh=1``,
``only_tradable=False``):

- ``last``: held stocks sorted by ``s`` (descending, unscored last);
- ``today``: the best ``n_drop + topk - |last|`` scored stocks not held;
- ``comb = sort_s(last ∪ today)``; ``sell = last ∩ (the n_drop worst of comb)``;
- ``buy = today[: |sell| + topk - |last|]``.

Execution at the close of ``t`` (Qlib ``deal_price="close"``): sells first (cash += value - cost),
then each buy gets ``cash * risk_degree / |buy|``; costs ``max(value * rate, min_cost)`` with
``open_cost`` on buys and ``close_cost`` on sells. A stock without a close on ``t`` cannot be
traded that day (held positions keep their last price). Daily report (Qlib ``PortfolioMetrics``):
``return = (V_t - V_{t-1} + cost_t) / V_{t-1}`` (before costs), ``cost = cost_t / V_{t-1}``,
``bench`` = mean close-to-close return of the scored universe, or of an index when one is given
(Qlib's ``benchmark="SH000300"``), excess with and without cost. The first row is the first trade
(return and bench 0: both enter at that close).

Price limits (China, Qlib's ``limit_threshold=0.095``): with ``change_t = close_t / close_{t-1} - 1``
a stock at ``change_t >= threshold`` (limit-up) cannot be bought on ``t`` and one at
``change_t <= -threshold`` (limit-down) cannot be sold; the order is skipped as for a suspended
stock. This is Qlib's rule with ``forbid_all_trade_at_limit=False``; Qlib's default (``True``)
also forbids selling at limit-up and buying at limit-down.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from moe_zoo.core import InputError
from moe_zoo.finance.metrics import TRADING_DAYS, risk_analysis
from moe_zoo.finance.panel import to_wide


@dataclass(frozen=True)
class BacktestConfig:
    """Qlib's benchmark defaults: ``topk=50, n_drop=5`` on CSI300 (we scale topk: 30 for ~500
    stocks), costs 5 bp to open and 15 bp to close, ``min_cost`` 5 on a 1e8 account; no price
    limit and 252 days a year unless set (Qlib's China setting: ``limit_threshold=0.095``, 238)."""

    topk: int = 30
    n_drop: int = 5
    open_cost: float = 0.0005
    close_cost: float = 0.0015
    min_cost: float = 5.0
    account: float = 1e8
    risk_degree: float = 0.95
    limit_threshold: float | None = None
    trading_days: int = TRADING_DAYS

    def __post_init__(self) -> None:
        if self.topk < 1 or not 0 <= self.n_drop <= self.topk:
            raise InputError(f"backtest: need topk >= 1 and 0 <= n_drop <= topk, got {self.topk}, {self.n_drop}")
        if min(self.open_cost, self.close_cost, self.min_cost) < 0 or not 0 < self.risk_degree <= 1:
            raise InputError("backtest: costs must be >= 0 and 0 < risk_degree <= 1")
        if self.limit_threshold is not None and not 0 < self.limit_threshold < 1:
            raise InputError(f"backtest: limit_threshold must be in (0, 1) or None, got {self.limit_threshold}")
        if self.trading_days < 1:
            raise InputError(f"backtest: trading_days must be >= 1, got {self.trading_days}")


@dataclass
class BacktestResult:
    """``daily`` report (one row per trade day) and ``summary`` (risk analysis of excess returns)."""

    daily: pd.DataFrame
    summary: dict[str, float]
    config: BacktestConfig
    holdings: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))

    def cumulative_excess(self, with_cost: bool = True) -> pd.Series:
        column = "excess_return_with_cost" if with_cost else "excess_return_without_cost"
        return self.daily[column].cumsum()


def scaled_topk(n_stocks: int) -> tuple[int, int]:
    """Qlib's CSI300 setting (top 50 of 300, drop 5) scaled to a universe: about 6% held, 1/6 replaced."""
    topk = max(1, min(30, round(n_stocks * 0.06)) if n_stocks >= 100 else max(2, n_stocks // 4))
    return topk, max(1, round(topk / 6))


def _close_frame(prices: pd.DataFrame | pd.Series) -> pd.DataFrame:
    if isinstance(prices, pd.DataFrame) and isinstance(prices.index, pd.MultiIndex):
        return to_wide(prices, "close")
    if isinstance(prices, pd.Series) and isinstance(prices.index, pd.MultiIndex):
        return prices.unstack("instrument")
    if isinstance(prices, pd.DataFrame):
        return prices
    raise InputError("prices must be a panel (with close), a close Series or a wide [dates x instruments] frame")


def _index_returns(benchmark: pd.Series, days: pd.DatetimeIndex, first: int, last: int) -> np.ndarray:
    """The index's close-to-close return on each calendar day (checked for the trade days)."""
    if not isinstance(benchmark, pd.Series):
        raise InputError(f"backtest: benchmark must be a Series of index closes by date, got {type(benchmark).__name__}")
    level = benchmark.reindex(days).to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        returns = np.r_[np.nan, level[1:] / level[:-1] - 1]
    missing = ~np.isfinite(returns[first + 1:last + 1])
    if missing.any():
        day = days[first + 1 + int(np.flatnonzero(missing)[0])]
        raise InputError(f"backtest: the benchmark has no close on {day:%Y-%m-%d} or the day before")
    return returns


def _order(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``ids`` sorted by ``values`` descending (NaN last, ties by position): pandas' sort_values."""
    key = np.where(np.isnan(values), -np.inf, values)
    return ids[np.lexsort((np.arange(len(ids)), np.isnan(values), -key))]


def backtest(scores: pd.Series, prices: pd.DataFrame | pd.Series, config: BacktestConfig | None = None,
             *, benchmark: pd.Series | None = None, **overrides: float) -> BacktestResult:
    """Run TopK-Dropout on ``scores`` (Series indexed by ``(datetime, instrument)``).

    ``prices``: a panel, a close Series, or wide closes ``[dates x instruments]``; its calendar must
    cover the day after each score date. ``benchmark``: an index's closes by date (every trade day
    and the day before it); the excess return is then taken over the index instead of the
    equal-weight universe. ``overrides`` set :class:`BacktestConfig` fields.
    """
    config = config or BacktestConfig()
    if overrides:
        config = BacktestConfig(**{**config.__dict__, **overrides})
    if not isinstance(scores, pd.Series) or scores.index.nlevels != 2:
        raise InputError("backtest: scores must be a Series indexed by (datetime, instrument)")
    signal = scores.dropna().unstack(level=1)
    if signal.empty:
        raise InputError("backtest: no scores")
    close = _close_frame(prices).sort_index()
    close = close.reindex(columns=signal.columns.union(close.columns))
    days = close.index
    signal = signal.reindex(columns=close.columns)
    first = days.searchsorted(signal.index.min(), side="right")
    last = min(days.searchsorted(signal.index.max(), side="right"), len(days) - 1)
    if first > last:
        raise InputError("backtest: the price calendar has no day after the first score date")
    price = close.to_numpy(float)
    held_price = close.ffill().to_numpy(float)
    index_return = _index_returns(benchmark, days, first, last) if benchmark is not None else None
    with np.errstate(invalid="ignore", divide="ignore"):
        change = price / np.vstack([np.full((1, price.shape[1]), np.nan), price[:-1]]) - 1
    limit = config.limit_threshold if config.limit_threshold is not None else np.inf
    no_buy, no_sell = change >= limit, change <= -limit          # NaN change: no limit
    sig = signal.reindex(days).to_numpy(float)
    scored = np.isfinite(sig).any(0)
    ids = np.arange(close.shape[1])
    amount = np.zeros(close.shape[1])
    cash = value_prev = config.account
    rows = []
    for t in range(first, last + 1):
        s = sig[t - 1]
        tradable = np.isfinite(price[t])
        held = ids[amount > 0]
        cost = traded = 0.0
        if np.isfinite(s).any():
            last_ = _order(s[held], held)
            pool = ids[np.isfinite(s) & (amount == 0)]
            today = _order(s[pool], pool)[: max(config.n_drop + config.topk - len(last_), 0)]
            comb = _order(s[np.r_[last_, today]], np.r_[last_, today])
            worst = set(comb[-config.n_drop:].tolist()) if config.n_drop else set()
            sell = [i for i in last_ if i in worst]
            buy = today[: len(sell) + config.topk - len(last_)]
            for i in sell:
                if tradable[i] and not no_sell[t, i]:
                    value = amount[i] * price[t, i]
                    fee = max(value * config.close_cost, config.min_cost)
                    cash += value - fee
                    cost, traded, amount[i] = cost + fee, traded + value, 0.0
            budget = cash * config.risk_degree / len(buy) if len(buy) else 0.0
            for i in buy:
                if tradable[i] and not no_buy[t, i] and budget > 0:
                    value = min(budget, cash / (1 + config.open_cost))
                    fee = max(value * config.open_cost, config.min_cost)
                    amount[i] = value / price[t, i]
                    cash -= value + fee
                    cost, traded = cost + fee, traded + value
        value_now = cash + np.nansum(amount * held_price[t])
        members = np.isfinite(s) if np.isfinite(s).any() else scored
        universe = members & np.isfinite(price[t]) & np.isfinite(price[t - 1])
        if index_return is not None:
            bench = float(index_return[t]) if rows else 0.0
        else:
            bench = float(np.mean(price[t, universe] / price[t - 1, universe] - 1)) if universe.any() and rows else 0.0
        rows.append({"datetime": days[t], "return": (value_now - value_prev + cost) / value_prev,
                     "cost": cost / value_prev, "bench": bench, "turnover": traded / value_prev,
                     "value": value_now, "n_holdings": int((amount > 0).sum())})
        value_prev = value_now
    daily = pd.DataFrame(rows).set_index("datetime")
    daily["excess_return_without_cost"] = daily["return"] - daily["bench"]
    daily["excess_return_with_cost"] = daily["return"] - daily["bench"] - daily["cost"]
    summary = {f"{k}_with_cost": v
               for k, v in risk_analysis(daily["excess_return_with_cost"], config.trading_days).items()}
    summary |= {f"{k}_without_cost": v
                for k, v in risk_analysis(daily["excess_return_without_cost"], config.trading_days).items()}
    summary["turnover"] = float(daily["turnover"].mean())
    holdings = pd.Series(amount, index=close.columns)
    return BacktestResult(daily, summary, config, holdings[holdings > 0])
