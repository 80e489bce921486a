"""The canonical daily price panel every reader returns and every function takes.

A *panel* is a ``pandas.DataFrame`` indexed by a sorted, unique ``MultiIndex`` of
``(datetime, instrument)`` with float columns among ``open, high, low, close, volume, vwap,
amount, factor`` (``close`` is required). :func:`as_panel` validates and canonicalises any
long-format frame; :func:`to_wide` gives one field as a ``[dates x instruments]`` frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from moe_zoo.core import InputError, get_logger

_log = get_logger(__name__)
FIELDS = ("open", "high", "low", "close", "volume", "vwap", "amount", "factor")
PRICE_FIELDS = ("open", "high", "low", "close", "vwap")
# No listed share trades above this in any quote unit (Berkshire A: ~7e5 USD); 1e300 is a data error.
MAX_PRICE = 1e9
# A day's close lies within this factor of the median of its open, high, low and vwap in real data.
MAX_SPREAD = 10.0
_DATE_NAMES = ("datetime", "date", "timestamp", "time", "trade_date")
_INSTRUMENT_NAMES = ("instrument", "symbol", "ticker", "code", "stock", "asset")


def _find(columns: list[str], candidates: tuple[str, ...], what: str, given: str | None) -> str:
    if given is not None:
        if given not in columns:
            raise InputError(f"panel: {what} column {given!r} not found; columns are {columns}")
        return given
    for name in candidates:
        if name in columns:
            return name
    raise InputError(f"panel: no {what} column (expected one of {list(candidates)}); columns are {columns}")


def parse_dates(values: pd.Series | pd.Index, what: str = "dates") -> pd.DatetimeIndex:
    """Dates as ``YYYY-MM-DD`` strings, ``YYYYMMDD`` integers, or datetimes -> a DatetimeIndex."""
    values = pd.Index(values)
    try:
        if pd.api.types.is_integer_dtype(values.dtype):
            return pd.DatetimeIndex(pd.to_datetime(values.astype(str), format="%Y%m%d"))
        return pd.DatetimeIndex(pd.to_datetime(values))
    except (ValueError, TypeError) as err:
        raise InputError(f"{what}: cannot parse as dates ({err})") from None


def as_panel(data: pd.DataFrame, *, date_column: str | None = None, instrument_column: str | None = None,
             require: tuple[str, ...] = ("close",)) -> pd.DataFrame:
    """Validate a long-format price table and return the canonical panel.

    ``data`` is indexed by ``(datetime, instrument)`` already, or has a date column
    (``datetime``/``date``/...) and an instrument column (``instrument``/``symbol``/``ticker``/...).
    Column names are matched case-insensitively. Raises :class:`InputError` for an empty table,
    missing required fields, non-numeric values or duplicate ``(date, instrument)`` rows. Rows with
    bad numbers are quarantined, not used (:func:`quarantine`): the stock is treated as not trading
    that day, the rows are logged and listed in ``panel.attrs["quarantined"]`` (kept from the input's
    own list), and a table whose every row is bad is an error.
    """
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"panel: expected a pandas DataFrame, got {type(data).__name__}")
    if data.empty:
        raise InputError("panel: the price table is empty")
    earlier = list(data.attrs.get("quarantined", []))
    frame = data.reset_index() if isinstance(data.index, pd.MultiIndex) or data.index.name else data.copy()
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    columns = list(frame.columns)
    date_col = _find(columns, _DATE_NAMES, "date", date_column.lower() if date_column else None)
    inst_col = _find(columns, _INSTRUMENT_NAMES, "instrument", instrument_column.lower() if instrument_column else None)
    fields = [c for c in FIELDS if c in columns]
    missing = [f for f in require if f not in fields]
    if missing:
        raise InputError(f"panel: missing field(s) {missing}; columns are {columns}")
    out = pd.DataFrame({f: pd.to_numeric(frame[f], errors="coerce").astype(float) for f in fields})
    bad = [f for f in fields if out[f].isna().sum() > frame[f].isna().sum()]
    if bad:
        raise InputError(f"panel: non-numeric values in column(s) {bad}")
    out.index = pd.MultiIndex.from_arrays(
        [parse_dates(frame[date_col], f"panel column {date_col!r}"), frame[inst_col].astype(str).str.strip()],
        names=["datetime", "instrument"])
    if out.index.duplicated().any():
        dup = out.index[out.index.duplicated()][0]
        raise InputError(f"panel: duplicate row for date {dup[0].date()} and instrument {dup[1]!r}")
    reasons = quarantine(out)
    if reasons.all():
        raise InputError(f"panel: every row has bad numbers, e.g. {reasons.iloc[0]} on "
                         f"{reasons.index[0][0].date()} for {reasons.index[0][1]!r}")
    flagged = reasons[reasons != ""]
    if len(flagged):
        _log.warning("panel: quarantined %d row(s) with bad numbers (not used), e.g. %s", len(flagged),
                     "; ".join(f"{d.date()} {i}: {r}" for (d, i), r in flagged.head(3).items()))
    out = out[(reasons == "").to_numpy()].sort_index()
    out.attrs["quarantined"] = earlier + [{"datetime": f"{d:%Y-%m-%d}", "instrument": i, "reason": r}
                                          for (d, i), r in flagged.items()]
    return out


def quarantine(prices: pd.DataFrame) -> pd.Series:
    """Why each row of a long-format price table cannot be used (``""`` when it can).

    A row is bad when its close is missing, a price (``open, high, low, close, vwap``) is ``inf``,
    ``<= 0`` or above :data:`MAX_PRICE`, its close is more than :data:`MAX_SPREAD` times away from
    the median of the row's other prices (a close off by orders of magnitude; an odd intraday high
    or low alone, such as the stub quotes of the 2010 flash crash, keeps the row), or its volume or
    amount is ``inf`` or negative. Only the row itself is read: no look-ahead, no other stock.
    """
    reasons = pd.Series("", index=prices.index, dtype=object)
    clean = np.ones(len(prices), dtype=bool)     # rows without a reason yet (the first reason is kept)

    def flag(mask: np.ndarray, text: str) -> None:
        fresh = mask & clean
        reasons[fresh] = text
        clean[fresh] = False

    flag(prices["close"].isna().to_numpy(), "missing close")
    present = [f for f in PRICE_FIELDS if f in prices.columns]
    for f in present:
        values = prices[f].to_numpy()
        flag(np.isinf(values), f"{f} is inf")
        flag(values <= 0, f"non-positive {f}")
        flag(values > MAX_PRICE, f"{f} above {MAX_PRICE:g}")
    others = [f for f in present if f != "close"]
    if others:
        block = prices[others].to_numpy()
        block = np.where(np.isfinite(block) & (block > 0), block, np.nan)
        known = np.isfinite(block).any(1)
        reference = np.nanmedian(np.where(known[:, None], block, 1.0), axis=1)
        ratio = prices["close"].to_numpy() / reference
        flag(known & ((ratio > MAX_SPREAD) | (ratio < 1 / MAX_SPREAD)),
             f"close more than {MAX_SPREAD:g}x away from the row's other prices")
    for f in (f for f in ("volume", "amount") if f in prices.columns):
        values = prices[f].to_numpy()
        flag(np.isinf(values) | (values < 0), f"{f} is inf or negative")
    return reasons


def to_wide(panel: pd.DataFrame, field: str, dates: pd.Index | None = None,
            instruments: pd.Index | None = None) -> pd.DataFrame:
    """One field as a ``[dates x instruments]`` frame (NaN where an instrument has no row)."""
    if field not in panel.columns:
        raise InputError(f"panel has no {field!r} field; it has {list(panel.columns)}")
    wide = panel[field].unstack("instrument")
    if dates is not None or instruments is not None:
        wide = wide.reindex(index=dates if dates is not None else wide.index,
                            columns=instruments if instruments is not None else wide.columns)
    return wide


def calendar(panel: pd.DataFrame) -> pd.DatetimeIndex:
    """The sorted trading days present in a panel."""
    return pd.DatetimeIndex(panel.index.get_level_values("datetime").unique()).sort_values()


def from_wide(fields: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Inverse of :func:`to_wide` for several fields (rows where ``close`` is NaN are dropped)."""
    stacked = {name: frame.stack(future_stack=True) for name, frame in fields.items()}
    out = pd.DataFrame(stacked)
    out.index = out.index.set_names(["datetime", "instrument"])
    return out[np.isfinite(out["close"].to_numpy())].sort_index()
