"""Qlib's Alpha158 factors computed from daily OHLCV, vectorised over instruments.

Every operator acts on a *wide* frame (rows = trading days in order, columns = instruments), so
one bottleneck/numpy call covers the whole universe; nothing loops over tickers. The operators follow
``qlib/data/ops.py``: rolling windows use ``min_periods=1`` (a window is partial at the start of
the data, exactly as in Qlib), ``Std`` is the sample std (ddof 1), ``Quantile`` interpolates
linearly, ``Rank`` is the percentile of the current value in its window, ``Slope``/``Rsquare``/
``Resi`` regress the series on its time index inside the window, ``IdxMax``/``IdxMin`` are the
1-based position of the extreme inside the window, and ``Corr``/``Rsquare`` are NaN where a
rolling std is ~0 (``atol=2e-5``). Value at day ``t`` uses rows ``<= t`` only.

Feature names and formulas are Qlib's ``Alpha158DL.get_feature_config`` (kbar, price window 0
of OPEN/HIGH/LOW/VWAP, and 29 rolling operators x windows 5/10/20/30/60 = 158).

Deviations (documented in the README): NaN inside a window is skipped by IdxMax/IdxMin (Qlib's
``np.argmax`` would return the NaN's position), and ``$vwap`` falls back to the typical price
``(high + low + close) / 3`` when a panel has neither ``vwap`` nor ``amount``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import bottleneck as bn
import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from moe_zoo.core import InputError

Frame = pd.DataFrame
WINDOWS = (5, 10, 20, 30, 60)
EPS = 1e-12
STD_ATOL = 2e-5

KBAR = ("KMID", "KLEN", "KMID2", "KUP", "KUP2", "KLOW", "KLOW2", "KSFT", "KSFT2")
PRICE = ("OPEN0", "HIGH0", "LOW0", "VWAP0")
ROLLING = ("ROC", "MA", "STD", "BETA", "RSQR", "RESI", "MAX", "MIN", "QTLU", "QTLD", "RANK", "RSV",
           "IMAX", "IMIN", "IMXD", "CORR", "CORD", "CNTP", "CNTN", "CNTD", "SUMP", "SUMN", "SUMD",
           "VMA", "VSTD", "WVMA", "VSUMP", "VSUMN", "VSUMD")
ALPHA158 = (*KBAR, *PRICE, *(f"{op}{d}" for op in ROLLING for d in WINDOWS))
# The 20 factors Qlib's GRU/LSTM/Transformer benchmark configs keep (FilterCol in
# examples/benchmarks/*/workflow_config_*_Alpha158.yaml), in that order.
ALPHA158_20 = ("RESI5", "WVMA5", "RSQR5", "KLEN", "RSQR10", "CORR5", "CORD5", "CORR10", "ROC60", "RESI10",
               "VSTD5", "RSQR60", "CORR60", "WVMA60", "STD5", "RSQR20", "CORD60", "CORD10", "CORR20", "KLOW")
# Families whose Qlib expression reads only $close (for adjusted-close-only panels).
CLOSE_ONLY = ("ROC", "MA", "STD", "BETA", "RSQR", "RESI", "QTLU", "QTLD", "RANK", "CNTP", "CNTN", "CNTD",
              "SUMP", "SUMN", "SUMD")
ALPHA158_CLOSE = tuple(f"{op}{d}" for op in CLOSE_ONLY for d in WINDOWS)
FEATURE_SETS = {"alpha158": ALPHA158, "alpha158-20": ALPHA158_20, "alpha158-close": ALPHA158_CLOSE}

# Qlib's expression for every feature (documentation, and the key the tests check against).
EXPRESSIONS: dict[str, str] = {
    "KMID": "($close-$open)/$open",
    "KLEN": "($high-$low)/$open",
    "KMID2": "($close-$open)/($high-$low+1e-12)",
    "KUP": "($high-Greater($open, $close))/$open",
    "KUP2": "($high-Greater($open, $close))/($high-$low+1e-12)",
    "KLOW": "(Less($open, $close)-$low)/$open",
    "KLOW2": "(Less($open, $close)-$low)/($high-$low+1e-12)",
    "KSFT": "(2*$close-$high-$low)/$open",
    "KSFT2": "(2*$close-$high-$low)/($high-$low+1e-12)",
    "OPEN0": "$open/$close", "HIGH0": "$high/$close", "LOW0": "$low/$close", "VWAP0": "$vwap/$close",
}
_ROLLING_EXPRESSIONS = {
    "ROC": "Ref($close, {d})/$close",
    "MA": "Mean($close, {d})/$close",
    "STD": "Std($close, {d})/$close",
    "BETA": "Slope($close, {d})/$close",
    "RSQR": "Rsquare($close, {d})",
    "RESI": "Resi($close, {d})/$close",
    "MAX": "Max($high, {d})/$close",
    "MIN": "Min($low, {d})/$close",
    "QTLU": "Quantile($close, {d}, 0.8)/$close",
    "QTLD": "Quantile($close, {d}, 0.2)/$close",
    "RANK": "Rank($close, {d})",
    "RSV": "($close-Min($low, {d}))/(Max($high, {d})-Min($low, {d})+1e-12)",
    "IMAX": "IdxMax($high, {d})/{d}",
    "IMIN": "IdxMin($low, {d})/{d}",
    "IMXD": "(IdxMax($high, {d})-IdxMin($low, {d}))/{d}",
    "CORR": "Corr($close, Log($volume+1), {d})",
    "CORD": "Corr($close/Ref($close,1), Log($volume/Ref($volume, 1)+1), {d})",
    "CNTP": "Mean($close>Ref($close, 1), {d})",
    "CNTN": "Mean($close<Ref($close, 1), {d})",
    "CNTD": "Mean($close>Ref($close, 1), {d})-Mean($close<Ref($close, 1), {d})",
    "SUMP": "Sum(Greater($close-Ref($close, 1), 0), {d})/(Sum(Abs($close-Ref($close, 1)), {d})+1e-12)",
    "SUMN": "Sum(Greater(Ref($close, 1)-$close, 0), {d})/(Sum(Abs($close-Ref($close, 1)), {d})+1e-12)",
    "SUMD": "(Sum(Greater($close-Ref($close, 1), 0), {d})-Sum(Greater(Ref($close, 1)-$close, 0), {d}))"
            "/(Sum(Abs($close-Ref($close, 1)), {d})+1e-12)",
    "VMA": "Mean($volume, {d})/($volume+1e-12)",
    "VSTD": "Std($volume, {d})/($volume+1e-12)",
    "WVMA": "Std(Abs($close/Ref($close, 1)-1)*$volume, {d})/(Mean(Abs($close/Ref($close, 1)-1)*$volume, {d})+1e-12)",
    "VSUMP": "Sum(Greater($volume-Ref($volume, 1), 0), {d})/(Sum(Abs($volume-Ref($volume, 1)), {d})+1e-12)",
    "VSUMN": "Sum(Greater(Ref($volume, 1)-$volume, 0), {d})/(Sum(Abs($volume-Ref($volume, 1)), {d})+1e-12)",
    "VSUMD": "(Sum(Greater($volume-Ref($volume, 1), 0), {d})-Sum(Greater(Ref($volume, 1)-$volume, 0), {d}))"
             "/(Sum(Abs($volume-Ref($volume, 1)), {d})+1e-12)",
}
EXPRESSIONS.update({f"{op}{d}": _ROLLING_EXPRESSIONS[op].format(d=d) for op in ROLLING for d in WINDOWS})


# ----------------------------------------------------------------------------- operators
def ref(x: Frame, n: int) -> Frame:
    """``Ref(x, n)``: the value ``n`` rows earlier (``n < 0`` looks into the future: labels only)."""
    return x.shift(n)


def _values(x: Frame) -> np.ndarray:
    return np.ascontiguousarray(x.to_numpy(dtype=np.float64))


def _like(values: np.ndarray, x: Frame) -> Frame:
    return pd.DataFrame(values, index=x.index, columns=x.columns)


def _move(fn, x: Frame, n: int, **kwargs) -> Frame:
    """A bottleneck moving-window kernel down the rows of all columns at once (NaN skipped).

    With ``min_count=1`` a window longer than the data holds the same rows as one of the data's
    length, so short panels (fewer days than the window) get Qlib's partial windows.
    """
    return _like(fn(_values(x), min(n, len(x)), min_count=1, axis=0, **kwargs), x)


def mean(x: Frame, n: int) -> Frame:
    """``Mean(x, n) = (1/m) sum_{i<m} x_{t-i}`` over the ``m <= n`` non-NaN values in the window."""
    return _move(bn.move_mean, x, n)


def tsum(x: Frame, n: int) -> Frame:
    """``Sum(x, n) = sum_{i<n} x_{t-i}`` (NaN skipped)."""
    return _move(bn.move_sum, x, n)


def std(x: Frame, n: int) -> Frame:
    """``Std(x, n)``: sample standard deviation (ddof=1) of the window; NaN for one value."""
    return _move(bn.move_std, x, n, ddof=1)


def tmax(x: Frame, n: int) -> Frame:
    """``Max(x, n)``."""
    return _move(bn.move_max, x, n)


def tmin(x: Frame, n: int) -> Frame:
    """``Min(x, n)``."""
    return _move(bn.move_min, x, n)


def _windows(x: Frame, n: int, fill: float) -> np.ndarray:
    """``[T, N, n]`` view of the trailing windows; rows before the data are ``fill``."""
    values = _values(x)
    padded = np.vstack([np.full((n - 1, values.shape[1]), fill), values])
    return sliding_window_view(padded, n, axis=0)


def quantile(x: Frame, n: int, q: float) -> Frame:
    """``Quantile(x, n, q)``: linear-interpolated ``q``-quantile of the window's non-NaN values."""
    ordered = np.sort(_windows(x, n, np.nan), axis=-1)               # NaN sort last
    count = np.isfinite(ordered).sum(-1)
    position = q * np.maximum(count - 1, 0)
    lo = np.floor(position).astype(int)[..., None]
    hi = np.minimum(lo + 1, np.maximum(count - 1, 0)[..., None])
    low, high = np.take_along_axis(ordered, lo, -1)[..., 0], np.take_along_axis(ordered, hi, -1)[..., 0]
    out = low + (high - low) * (position - lo[..., 0])
    return _like(np.where(count > 0, out, np.nan), x)


def rank(x: Frame, n: int) -> Frame:
    """``Rank(x, n)``: percentile of ``x_t`` among the window's values (average ties), in (0, 1].

    From bottleneck's ``move_rank`` ``r in [-1, 1]`` over ``c`` values: ``(((r + 1) / 2) (c - 1) + 1) / c``.
    """
    n = min(n, len(x))                         # a longer window holds the same rows (see _move)
    r = bn.move_rank(_values(x), n, min_count=1, axis=0)
    count = bn.move_sum(np.isfinite(_values(x)).astype(np.float64), n, min_count=1, axis=0)
    return _like(((r + 1) / 2 * (count - 1) + 1) / count, x)


def _regression(y: Frame, n: int) -> tuple[Frame, Frame, Frame, Frame, Frame, Frame]:
    """Rolling sums for the least-squares fit of ``y`` on the row index ``x`` (NaN rows skipped)."""
    valid = y.notna()
    x = pd.DataFrame(np.broadcast_to(np.arange(len(y), dtype=float)[:, None], y.shape),
                     index=y.index, columns=y.columns).where(valid)
    count = tsum(valid.astype(float), n)
    return count, tsum(x, n), tsum(y, n), tsum(x * x, n), tsum(x * y, n), x


def slope(y: Frame, n: int) -> Frame:
    """``Slope(y, n) = (m Σxy - Σx Σy) / (m Σx² - (Σx)²)`` with ``x`` the time index in the window."""
    count, sx, sy, sxx, sxy, _ = _regression(y, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (count * sxy - sx * sy) / (count * sxx - sx * sx)


def resi(y: Frame, n: int) -> Frame:
    """``Resi(y, n) = y_t - (β x_t + α)``: residual of the current value, ``α = (Σy - β Σx)/m``."""
    count, sx, sy, sxx, sxy, x = _regression(y, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = (count * sxy - sx * sy) / (count * sxx - sx * sx)
        return y - (beta * x + (sy - beta * sx) / count)


def rsquare(y: Frame, n: int) -> Frame:
    """``Rsquare(y, n) = (mΣxy - ΣxΣy)² / ((mΣx² - (Σx)²)(mΣy² - (Σy)²))``; NaN where Std(y, n) ~ 0."""
    count, sx, sy, sxx, sxy, _ = _regression(y, n)
    syy = tsum(y * y, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = (count * sxy - sx * sy) ** 2 / ((count * sxx - sx * sx) * (count * syy - sy * sy))
    return r2.mask(_flat(y, n))


def _flat(y: Frame, n: int) -> Frame:
    return pd.DataFrame(np.isclose(std(y, n).to_numpy(), 0.0, atol=STD_ATOL), index=y.index, columns=y.columns)


def _arg_extreme(x: Frame, n: int, largest: bool) -> Frame:
    fill = -np.inf if largest else np.inf
    windows = _windows(x.fillna(fill), n, fill)                  # [T, N, n] view, no copy
    pos = windows.argmax(-1) if largest else windows.argmin(-1)   # first occurrence, as np.argmax
    offset = np.maximum(n - 1 - np.arange(len(x)), 0)[:, None]
    seen = bn.move_max(x.notna().to_numpy(dtype=np.float64), min(n, len(x)), min_count=1, axis=0) > 0
    return _like(np.where(seen, pos - offset + 1.0, np.nan), x)


def idxmax(x: Frame, n: int) -> Frame:
    """``IdxMax(x, n)``: 1-based position of the window's maximum (window starts at ``t-n+1``)."""
    return _arg_extreme(x, n, largest=True)


def idxmin(x: Frame, n: int) -> Frame:
    """``IdxMin(x, n)``: 1-based position of the window's minimum."""
    return _arg_extreme(x, n, largest=False)


def corr(a: Frame, b: Frame, n: int) -> Frame:
    """``Corr(a, b, n)``: Pearson correlation over the window's rows where both are present,
    ``(mΣab - ΣaΣb) / sqrt((mΣa² - (Σa)²)(mΣb² - (Σb)²))``; NaN where either rolling std is ~0."""
    both = a.notna() & b.notna()
    a_, b_ = a.where(both), b.where(both)
    count = tsum(both.astype(float), n)
    sa, sb = tsum(a_, n), tsum(b_, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (count * tsum(a_ * b_, n) - sa * sb) / np.sqrt(
            (count * tsum(a_ * a_, n) - sa * sa) * (count * tsum(b_ * b_, n) - sb * sb))
    return out.mask(_flat(a, n) | _flat(b, n) | (count < 2))


def greater(a: Frame, b: Frame | float) -> Frame:
    """``Greater(a, b) = max(a, b)`` elementwise (NaN propagates, as ``np.maximum``)."""
    return np.maximum(a, b)


def less(a: Frame, b: Frame | float) -> Frame:
    """``Less(a, b) = min(a, b)`` elementwise."""
    return np.minimum(a, b)


# ----------------------------------------------------------------------------- features
class _Fields:
    """Wide OHLCV frames of one panel plus cached intermediate series."""

    def __init__(self, fields: dict[str, Frame]) -> None:
        self.f = fields
        self._cache: dict[str, Frame] = {}

    def __getattr__(self, name: str) -> Frame:
        if name in ("open", "high", "low", "close", "volume", "vwap"):
            if name not in self.f:
                raise InputError(f"alpha158: this feature needs the ${name} field, which the panel lacks "
                                 "(use feature_set='alpha158-close' for close-only data)")
            return self.f[name]
        raise AttributeError(name)

    def cached(self, key: str, make: Callable[[], Frame]) -> Frame:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def delta(self) -> Frame:   # $close - Ref($close, 1)
        return self.cached("delta", lambda: self.close - ref(self.close, 1))

    @property
    def vdelta(self) -> Frame:  # $volume - Ref($volume, 1)
        return self.cached("vdelta", lambda: self.volume - ref(self.volume, 1))


def _kbar(name: str, p: _Fields) -> Frame:
    o, h, low, c = p.open, p.high, p.low, p.close
    span = h - low + EPS
    table = {
        "KMID": lambda: (c - o) / o, "KLEN": lambda: (h - low) / o, "KMID2": lambda: (c - o) / span,
        "KUP": lambda: (h - greater(o, c)) / o, "KUP2": lambda: (h - greater(o, c)) / span,
        "KLOW": lambda: (less(o, c) - low) / o, "KLOW2": lambda: (less(o, c) - low) / span,
        "KSFT": lambda: (2 * c - h - low) / o, "KSFT2": lambda: (2 * c - h - low) / span,
    }
    return table[name]()


def _rsi_like(delta: Frame, d: int, side: str) -> Frame:
    up, down = tsum(greater(delta, 0.0), d), tsum(greater(-delta, 0.0), d)
    total = tsum(delta.abs(), d) + EPS
    return {"P": up / total, "N": down / total, "D": (up - down) / total}[side]


def _rolling(op: str, d: int, p: _Fields) -> Frame:
    c = p.close
    if op == "ROC":
        return ref(c, d) / c
    if op == "MA":
        return mean(c, d) / c
    if op == "STD":
        return std(c, d) / c
    if op == "BETA":
        return slope(c, d) / c
    if op == "RSQR":
        return rsquare(c, d)
    if op == "RESI":
        return resi(c, d) / c
    if op == "MAX":
        return tmax(p.high, d) / c
    if op == "MIN":
        return tmin(p.low, d) / c
    if op in ("QTLU", "QTLD"):
        return quantile(c, d, 0.8 if op == "QTLU" else 0.2) / c
    if op == "RANK":
        return rank(c, d)
    if op == "RSV":
        lo = tmin(p.low, d)
        return (c - lo) / (tmax(p.high, d) - lo + EPS)
    if op == "IMAX":
        return idxmax(p.high, d) / d
    if op == "IMIN":
        return idxmin(p.low, d) / d
    if op == "IMXD":
        return (idxmax(p.high, d) - idxmin(p.low, d)) / d
    if op == "CORR":
        return corr(c, np.log(p.volume + 1), d)
    if op == "CORD":
        return corr(c / ref(c, 1), np.log(p.volume / ref(p.volume, 1) + 1), d)
    if op in ("CNTP", "CNTN", "CNTD"):
        prev = ref(c, 1)
        up, down = (c > prev).astype(float), (c < prev).astype(float)
        return {"CNTP": lambda: mean(up, d), "CNTN": lambda: mean(down, d),
                "CNTD": lambda: mean(up, d) - mean(down, d)}[op]()
    if op in ("SUMP", "SUMN", "SUMD"):
        return _rsi_like(p.delta, d, op[-1])
    if op == "VMA":
        return mean(p.volume, d) / (p.volume + EPS)
    if op == "VSTD":
        return std(p.volume, d) / (p.volume + EPS)
    if op == "WVMA":
        weighted = (c / ref(c, 1) - 1).abs() * p.volume
        return std(weighted, d) / (mean(weighted, d) + EPS)
    if op in ("VSUMP", "VSUMN", "VSUMD"):
        return _rsi_like(p.vdelta, d, op[-1])
    raise InputError(f"unknown Alpha158 operator {op!r}")


def _split_name(name: str) -> tuple[str, int]:
    op = name.rstrip("0123456789")
    return op, int(name[len(op):])


def feature_names(feature_set: str | Sequence[str]) -> tuple[str, ...]:
    """Names of a feature set (``alpha158``, ``alpha158-20``, ``alpha158-close``) or a custom list."""
    if isinstance(feature_set, str):
        if feature_set not in FEATURE_SETS:
            raise InputError(f"feature_set must be one of {sorted(FEATURE_SETS)} or a list of names, got {feature_set!r}")
        return FEATURE_SETS[feature_set]
    names = tuple(feature_set)
    unknown = [n for n in names if n not in EXPRESSIONS]
    if unknown or not names:
        raise InputError(f"unknown Alpha158 feature name(s): {unknown or 'empty list'}")
    return names


def compute_wide(fields: dict[str, Frame], names: Sequence[str]) -> dict[str, Frame]:
    """Compute ``names`` from wide field frames (``close`` required; others as the names need)."""
    if "close" not in fields:
        raise InputError("alpha158: the panel needs a close price")
    if "vwap" not in fields and {"high", "low"} <= fields.keys():
        fields = {**fields, "vwap": (fields["high"] + fields["low"] + fields["close"]) / 3.0}
    p = _Fields(fields)
    out: dict[str, Frame] = {}
    for name in names:
        if name in KBAR:
            value = _kbar(name, p)
        elif name in PRICE:
            value = getattr(p, name[:-1].lower()) / p.close
        else:
            op, d = _split_name(name)
            value = _rolling(op, d, p)
        out[name] = value.replace([np.inf, -np.inf], np.nan)   # Qlib's ProcessInf, as NaN
    return out


def qlib_label(close: Frame) -> Frame:
    """Qlib's label ``Ref($close, -2)/Ref($close, -1) - 1``: the return from close ``t+1`` to ``t+2``.

    Trading on day ``t``'s signal happens at the close of ``t+1``, so this is the return a
    position opened on the signal earns over its first day.
    """
    return ref(close, -2) / ref(close, -1) - 1.0
