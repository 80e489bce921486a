"""TopK-Dropout backtest against a hand-computed case; IC metrics and risk analysis against scipy/hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from moe_zoo.core import InputError
from moe_zoo.finance.backtest import BacktestConfig, backtest, scaled_topk
from moe_zoo.finance.metrics import daily_ic_series, risk_analysis, signal_metrics

DAYS = pd.to_datetime(["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"])
CLOSE = pd.DataFrame({"A": [10.0, 11.0, 12.1, 12.1], "B": [20.0, 20.0, 22.0, 24.2], "C": [5.0, 5.0, 4.0, 4.0]},
                     index=DAYS)


def _scores(rows: dict[int, dict[str, float]]) -> pd.Series:
    data = {(DAYS[d], k): v for d, row in rows.items() for k, v in row.items()}
    return pd.Series(data).rename_axis(["datetime", "instrument"])


def test_topk_dropout_matches_a_hand_computed_case():
    scores = _scores({0: {"A": 3, "B": 2, "C": 1}, 1: {"B": 3, "A": 2, "C": 1}, 2: {"B": 3, "A": 2, "C": 1}})
    config = BacktestConfig(topk=1, n_drop=1, open_cost=0.01, close_cost=0.02, min_cost=0.0, account=1000.0,
                            risk_degree=1.0)
    result = backtest(scores, CLOSE, config)
    daily = result.daily
    assert list(daily.index) == list(DAYS[1:])
    # day 1 (signal of day 0): buy A with all cash net of the 1% fee: 1000/1.01 at 11
    buy_a = 1000 / 1.01
    amount_a = buy_a / 11.0
    # day 2 (signal of day 1: B > A): sell A at 12.1 (2% fee), buy B at 22 with the proceeds
    sold = amount_a * 12.1
    cash = sold * 0.98
    buy_b = cash / 1.01
    value_1, value_2 = buy_a, buy_b
    value_3 = buy_b / 22.0 * 24.2                     # day 3: B kept (A is the worst of {B, A} but not held)
    expected = pd.DataFrame({
        "return": [0.0, (value_2 - value_1 + (sold * 0.02 + buy_b * 0.01)) / value_1, (value_3 - value_2) / value_2],
        "cost": [buy_a * 0.01 / 1000, (sold * 0.02 + buy_b * 0.01) / value_1, 0.0],
        "bench": [0.0, np.mean([0.1, 0.1, -0.2]), np.mean([0.0, 0.1, 0.0])],
        "value": [value_1, value_2, value_3],
        "n_holdings": [1, 1, 1],
    }, index=DAYS[1:])
    pd.testing.assert_frame_equal(daily[expected.columns], expected, check_names=False, check_freq=False,
                                  check_index_type=False)
    np.testing.assert_allclose(daily["return"].to_numpy(), [0.0, 0.1, 0.1], atol=1e-12)   # A +10%, then B +10%
    excess = daily["return"] - daily["bench"] - daily["cost"]
    assert result.summary["annualized_return_with_cost"] == pytest.approx(excess.mean() * 252)
    assert list(result.holdings.index) == ["B"]


def test_topk_dropout_replaces_at_most_n_drop_a_day_and_keeps_topk():
    rng = np.random.default_rng(0)
    days = pd.bdate_range("2021-01-01", periods=30)
    names = [f"S{i}" for i in range(40)]
    close = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.01, (30, 40)), 0)), index=days, columns=names)
    scores = pd.DataFrame(rng.normal(size=(29, 40)), index=days[:29], columns=names).stack()
    result = backtest(scores, close, topk=8, n_drop=2)
    assert (result.daily["n_holdings"] == 8).all()
    trades = result.daily["turnover"].iloc[1:]
    assert (trades <= 2 * 2 / 8 * 1.2).all()                 # <= n_drop sells + n_drop buys of ~1/8 each
    # the score of day t trades at the close of t+1 and earns close[t+2] / close[t+1] - 1 (Qlib's label)
    label = close.pct_change().shift(-2).iloc[:28].stack()
    free = {"topk": 8, "n_drop": 8, "open_cost": 0.0, "close_cost": 0.0, "min_cost": 0.0}
    assert backtest(label, close, **free).summary["annualized_return_with_cost"] > 1.0
    stale = close.pct_change().iloc[1:28].stack()           # yesterday's return: no edge here
    assert abs(backtest(stale, close, **free).summary["annualized_return_with_cost"]) < 1.0


def test_backtest_validates_inputs():
    with pytest.raises(InputError):
        backtest(pd.Series([1.0]), CLOSE)
    with pytest.raises(InputError):
        BacktestConfig(topk=3, n_drop=5)
    assert scaled_topk(500) == (30, 5) and scaled_topk(20) == (5, 1)


def test_signal_metrics_match_scipy():
    rng = np.random.default_rng(3)
    days = pd.bdate_range("2022-01-03", periods=6)
    index = pd.MultiIndex.from_product([days, [f"S{i}" for i in range(25)]], names=["datetime", "instrument"])
    label = pd.Series(rng.normal(size=len(index)), index=index)
    score = label * 0.3 + pd.Series(rng.normal(size=len(index)), index=index)
    score.iloc[3] = np.nan                                  # missing score: dropped for that day only
    daily = daily_ic_series(score, label)
    for day in days:
        s, r = score.xs(day).dropna(), label.xs(day)
        r = r.reindex(s.index)
        assert daily.loc[day, "ic"] == pytest.approx(stats.pearsonr(s, r)[0])
        assert daily.loc[day, "rank_ic"] == pytest.approx(stats.spearmanr(s, r)[0])
    metrics = signal_metrics(score, label)
    assert metrics.ic == pytest.approx(daily["ic"].mean())
    assert metrics.icir == pytest.approx(daily["ic"].mean() / daily["ic"].std(ddof=1))
    assert metrics.days == 6


def test_risk_analysis_by_hand():
    r = pd.Series([0.01, -0.02, 0.03, -0.01])
    out = risk_analysis(r, periods=252)
    assert out["annualized_return"] == pytest.approx(0.0025 * 252)
    assert out["information_ratio"] == pytest.approx(0.0025 / r.std(ddof=1) * 252**0.5)
    # cumulative 0.01, -0.01, 0.02, 0.01: worst fall from a running peak is 0.01 -> -0.01
    assert out["max_drawdown"] == pytest.approx(-0.02)


def test_price_limits_block_buying_at_limit_up_and_selling_at_limit_down():
    days = pd.bdate_range("2020-01-06", periods=4)
    close = pd.DataFrame({"A": [10.0, 11.0, 11.0, 11.0], "B": [20.0, 20.0, 20.0, 18.0], "C": [5.0] * 4}, index=days)
    scores = pd.Series({(days[0], "A"): 3.0, (days[0], "B"): 2.0, (days[0], "C"): 1.0,
                        (days[1], "B"): 3.0, (days[1], "A"): 2.0, (days[1], "C"): 1.0,
                        (days[2], "C"): 3.0, (days[2], "B"): 2.0, (days[2], "A"): 1.0}).rename_axis(["datetime", "instrument"])
    base = {"topk": 1, "n_drop": 1, "min_cost": 0.0, "account": 1000.0, "risk_degree": 0.5}
    free = backtest(scores, close, BacktestConfig(**base))
    china = backtest(scores, close, BacktestConfig(**base, limit_threshold=0.095))
    # day 1: A is up 10% (limit-up): bought without limits, not with them
    assert free.daily["n_holdings"].tolist() == [1, 1, 1] and china.daily["n_holdings"].tolist() == [0, 1, 2]
    # day 3: B is down 10% (limit-down): sold for C without limits; kept (and C bought) with them
    assert list(free.holdings.index) == ["C"] and list(china.holdings.index) == ["B", "C"]


def test_excess_return_over_an_index_and_238_days_a_year():
    index = pd.Series([100.0, 101.0, 99.0, 99.0], index=DAYS)
    scores = _scores({0: {"A": 3, "B": 2, "C": 1}, 1: {"B": 3, "A": 2, "C": 1}, 2: {"B": 3, "A": 2, "C": 1}})
    config = BacktestConfig(topk=1, n_drop=1, min_cost=0.0, trading_days=238)
    result = backtest(scores, CLOSE, config, benchmark=index)
    np.testing.assert_allclose(result.daily["bench"].to_numpy(), [0.0, 99 / 101 - 1, 0.0])
    excess = result.daily["return"] - result.daily["bench"] - result.daily["cost"]
    np.testing.assert_allclose(result.daily["excess_return_with_cost"].to_numpy(), excess.to_numpy())
    assert result.summary["annualized_return_with_cost"] == pytest.approx(excess.mean() * 238)
    with pytest.raises(InputError, match="benchmark has no close on 2020-01-06"):
        backtest(scores, CLOSE, config, benchmark=index.drop(DAYS[2]))
