"""Alpha158: operators against hand-computed values, every factor against a naive evaluation of
Qlib's own expression strings, and no look-ahead."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from moe_zoo.core import InputError
from moe_zoo.finance import alpha158 as A
from moe_zoo.finance.dataset import DataConfig, build_feature_panel, compute_factors

Y = pd.DataFrame({"s": [1.0, 2.0, 4.0, 3.0, 5.0]})
B = pd.DataFrame({"s": [1.0, 3.0, 2.0, 5.0, 4.0]})
NAN = np.nan


def col(frame: pd.DataFrame) -> np.ndarray:
    return frame["s"].to_numpy()


@pytest.mark.parametrize(("op", "expected"), [
    (lambda: A.mean(Y, 3), [1, 1.5, 7 / 3, 3, 4]),
    (lambda: A.tsum(Y, 3), [1, 3, 7, 9, 12]),
    (lambda: A.std(Y, 3), [NAN, 0.5**0.5, (21 / 9) ** 0.5, 1, 1]),
    (lambda: A.tmax(Y, 3), [1, 2, 4, 4, 5]),
    (lambda: A.tmin(Y, 3), [1, 1, 1, 2, 3]),
    (lambda: A.ref(Y, 2), [NAN, NAN, 1, 2, 4]),
    (lambda: A.slope(Y, 3), [NAN, 1, 1.5, 0.5, 0.5]),
    (lambda: A.resi(Y, 3), [NAN, 0, 4 - (7 / 3 + 1.5), -0.5, 0.5]),
    (lambda: A.rsquare(Y, 3), [NAN, 1, 9 / (2 * 42 / 9), 0.25, 0.25]),
    (lambda: A.idxmax(Y, 3), [1, 2, 3, 2, 3]),
    (lambda: A.idxmin(Y, 3), [1, 1, 1, 1, 2]),
    (lambda: A.rank(Y, 3), [1, 1, 1, 2 / 3, 1]),
    (lambda: A.quantile(Y, 3, 0.8), [1, 1.8, 3.2, 3.6, 4.6]),
    (lambda: A.corr(Y, B, 3), [NAN, 1, 1 / (42 / 9 * 2) ** 0.5, stats.pearsonr([2, 4, 3], [3, 2, 5])[0],
                               stats.pearsonr([4, 3, 5], [2, 5, 4])[0]]),
])
def test_operators_match_hand_computed_values(op, expected):
    np.testing.assert_allclose(col(op()), expected, rtol=1e-12, atol=1e-12)


def test_regression_operators_skip_nan_like_qlib():
    y = pd.DataFrame({"s": [1.0, NAN, 4.0, 6.0]})
    # window 3 at t=2 holds points x=0 and x=2 -> slope 1.5; at t=3 points (2,4), (3,6) -> slope 2
    np.testing.assert_allclose(col(A.slope(y, 3))[2:], [1.5, 2.0])
    assert np.isnan(col(A.resi(y, 3))[1])                    # the current value is NaN
    np.testing.assert_allclose(col(A.idxmax(y, 3))[1:], [1, 3, 3])


def test_flat_windows_give_nan_correlation_and_rsquare():
    flat = pd.DataFrame({"s": [2.0, 2.0, 2.0, 3.0]})
    assert np.isnan(col(A.rsquare(flat, 3))[2]) and np.isnan(col(A.corr(flat, Y.iloc[:4], 3))[2])


def _naive(values: np.ndarray, n: int, fn) -> np.ndarray:
    """Apply ``fn`` to every partial window (min_periods=1) of each column, the slow way."""
    out = np.full(values.shape, np.nan)
    for j in range(values.shape[1]):
        for t in range(values.shape[0]):
            window = values[max(0, t - n + 1): t + 1, j]
            out[t, j] = fn(window, t - max(0, t - n + 1))
    return out


def _ols(window: np.ndarray, _):
    x = np.arange(len(window), dtype=float)
    ok = np.isfinite(window)
    return (x[ok], window[ok]) if ok.sum() >= 2 else (None, None)


def _slope(w, i):
    x, y = _ols(w, i)
    return np.nan if x is None else np.polyfit(x, y, 1)[0]


def _resi(w, i):
    x, y = _ols(w, i)
    if x is None or not np.isfinite(w[i]):
        return np.nan
    b, a = np.polyfit(x, y, 1)
    return w[i] - (b * i + a)


def _argmax(w, _):
    return np.nan if np.isnan(w).all() else np.nanargmax(w) + 1


def _pct_rank(w, i):
    ok = w[np.isfinite(w)]
    return np.nan if not np.isfinite(w[i]) else stats.percentileofscore(ok, w[i], kind="rank") / 100


@pytest.mark.parametrize(("op", "reference"), [
    (A.slope, _slope), (A.resi, _resi), (A.idxmax, _argmax), (A.rank, _pct_rank),
])
def test_vectorised_operators_equal_window_by_window_reference(op, reference):
    rng = np.random.default_rng(1)
    values = 100 + np.cumsum(rng.normal(size=(90, 3)), axis=0)
    values[rng.random(values.shape) < 0.1] = np.nan
    values[:7, 2] = np.nan                                  # a stock that lists late
    for n in (5, 20):
        got = op(pd.DataFrame(values), n).to_numpy()
        np.testing.assert_allclose(got, _naive(values, n, reference), rtol=1e-7, atol=1e-9, equal_nan=True)


def test_regression_is_precise_on_long_histories():
    y = pd.DataFrame({"s": 50 + np.sin(np.arange(9000) / 7.0)})
    got = col(A.slope(y, 60))[-1]
    window = y["s"].to_numpy()[-60:]
    assert got == pytest.approx(np.polyfit(np.arange(60), window, 1)[0], rel=1e-6)


# ----------------------------------------------------------------------------- whole feature set
def test_feature_set_is_qlibs_alpha158():
    assert len(A.ALPHA158) == 158 and len(set(A.ALPHA158)) == 158
    assert A.ALPHA158[:13] == (*A.KBAR, "OPEN0", "HIGH0", "LOW0", "VWAP0")
    assert A.ALPHA158[13:18] == ("ROC5", "ROC10", "ROC20", "ROC30", "ROC60") and A.ALPHA158[-1] == "VSUMD60"
    assert set(A.ALPHA158_20) <= set(A.ALPHA158) and len(A.ALPHA158_CLOSE) == 75
    assert all("$close" in A.EXPRESSIONS[n] and not re.search(r"\$(open|high|low|volume)", A.EXPRESSIONS[n])
               for n in A.ALPHA158_CLOSE)
    with pytest.raises(InputError):
        A.feature_names("alpha999")


def _naive_ops(panel: pd.DataFrame):
    """Qlib's operators written window by window on each instrument (the slow reference)."""
    def rolling(fn):
        def op(x, n):
            return x.groupby(level="instrument", group_keys=False).apply(
                lambda s: s.rolling(n, min_periods=1).apply(lambda w: fn(np.asarray(w, float)), raw=True))
        return op

    def ref(x, n):
        return x.groupby(level="instrument", group_keys=False).shift(n)

    def corr(a, b, n):
        out = pd.concat([a, b], axis=1, keys=["a", "b"]).groupby(level="instrument", group_keys=False).apply(
            lambda f: f["a"].rolling(n, min_periods=1).corr(f["b"]))
        flat = lambda s: s.groupby(level="instrument", group_keys=False).apply(  # noqa: E731
            lambda v: v.rolling(n, min_periods=1).std()).pipe(lambda v: np.isclose(v, 0, atol=2e-5))
        return out.mask(flat(a) | flat(b))

    def rsquare(x, n):
        r2 = rolling(lambda w: np.nan if np.isfinite(w).sum() < 2 else
                     stats.pearsonr(np.arange(len(w))[np.isfinite(w)], w[np.isfinite(w)])[0] ** 2)(x, n)
        flat = x.groupby(level="instrument", group_keys=False).apply(lambda v: v.rolling(n, min_periods=1).std())
        return r2.mask(np.isclose(flat, 0, atol=2e-5))

    def quantile(x, n, q):
        return rolling(lambda w: np.nanquantile(w, q))(x, n)

    fields = {f"${c}": panel[c] for c in panel.columns}
    fields["$vwap"] = (panel["high"] + panel["low"] + panel["close"]) / 3
    return fields, {
        "Ref": ref, "Mean": rolling(np.nanmean), "Sum": rolling(np.nansum),
        "Std": rolling(lambda w: np.nanstd(w, ddof=1) if np.isfinite(w).sum() > 1 else np.nan),
        "Max": rolling(np.nanmax), "Min": rolling(np.nanmin), "Quantile": quantile,
        "Slope": rolling(lambda w: _slope(w, len(w) - 1)), "Resi": rolling(lambda w: _resi(w, len(w) - 1)),
        "Rsquare": rsquare, "Rank": rolling(lambda w: _pct_rank(w, len(w) - 1)),
        "IdxMax": rolling(lambda w: _argmax(w, 0)), "IdxMin": rolling(lambda w: np.nanargmin(w) + 1),
        "Corr": corr, "Greater": np.maximum, "Less": np.minimum, "Abs": np.abs, "Log": np.log,
    }


def test_every_factor_equals_qlibs_expression_evaluated_naively(panel_factory):
    panel = panel_factory(n_days=70, n_stocks=3)
    fast = compute_factors(panel)
    fields, ops = _naive_ops(panel)
    for name in A.ALPHA158:
        expression = re.sub(r"\$\w+", lambda m: f"F[{m.group(0)!r}]", A.EXPRESSIONS[name])
        expected = eval(expression, {"F": fields, **ops})  # our own constant table of Qlib formulas
        expected = expected.astype(float).replace([np.inf, -np.inf], np.nan).reindex(fast.index)
        np.testing.assert_allclose(fast[name].to_numpy(), expected.to_numpy(), rtol=1e-6, atol=1e-9,
                                   equal_nan=True, err_msg=name)


def test_close_only_panel_computes_the_close_subset_and_rejects_the_rest(panel):
    close_only = panel[["close"]]
    assert compute_factors(close_only, "alpha158-close").shape[1] == 75
    with pytest.raises(InputError, match=r"\$open"):
        compute_factors(close_only, "alpha158")


# ----------------------------------------------------------------------------- no look-ahead
def _perturb_after(panel: pd.DataFrame, day: pd.Timestamp, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    future = panel.index.get_level_values("datetime") > day
    out = panel.copy()
    out.loc[future] = out.loc[future] * rng.uniform(0.5, 1.5, size=(future.sum(), 1))
    return out


def test_factors_and_labels_at_t_use_no_later_prices(panel):
    days = panel.index.get_level_values("datetime").unique()
    t = days[50]
    changed = _perturb_after(panel, t)
    before, after = compute_factors(panel), compute_factors(changed)
    past = before.index.get_level_values("datetime") <= t
    pd.testing.assert_frame_equal(before[past], after[past])
    assert not np.allclose(before[~past].to_numpy(), after[~past].to_numpy(), equal_nan=True)
    config = DataConfig(step_len=5)
    fp_before, fp_after = build_feature_panel(panel, config), build_feature_panel(changed, config)
    np.testing.assert_array_equal(fp_before.features[:51], fp_after.features[:51])
    # label of day s reads close[s+1] and close[s+2]: unchanged up to t-2, changed from t-1 on
    np.testing.assert_array_equal(fp_before.label[:49], fp_after.label[:49])
    assert not np.allclose(fp_before.label[49], fp_after.label[49])
    np.testing.assert_array_equal(fp_before.windows(50, np.arange(4)), fp_after.windows(50, np.arange(4)))
