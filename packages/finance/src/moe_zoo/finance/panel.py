"""The canonical daily price panel every reader returns and every function takes.

A *panel* is a ``pandas.DataFrame`` indexed by a sorted, unique ``MultiIndex`` of
``(datetime, instrument)`` with float columns among ``open, high, low, close, volume, vwap,
amount, factor`` (``close`` is required). :func:`as_panel` validates and canonicalises any
long-format frame; :func:`to_wide` gives one field as a ``[dates x instruments]`` frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from moe_zoo.core import InputError

FIELDS = ("open", "high", "low", "close", "volume", "vwap", "amount", "factor")
PRICE_FIELDS = ("open", "high", "low", "close", "vwap")
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
    missing required fields, non-numeric values, duplicate ``(date, instrument)`` rows, or
    non-positive prices.
    """
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"panel: expected a pandas DataFrame, got {type(data).__name__}")
    if data.empty:
        raise InputError("panel: the price table is empty")
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
    for f in (f for f in PRICE_FIELDS if f in fields):
        if (out[f] <= 0).any():
            row = out.index[(out[f] <= 0).to_numpy()][0]
            raise InputError(f"panel: non-positive {f} price on {row[0].date()} for {row[1]!r}")
    if "volume" in fields and (out["volume"] < 0).any():
        raise InputError("panel: negative volume")
    return out.sort_index()


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
