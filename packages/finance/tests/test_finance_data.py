"""Readers on fixture files in Qlib's bin layout and long-format CSV; panels; splits; built-in data."""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest

from moe_zoo.core import InputError
from moe_zoo.finance.data import (
    adjust_corporate_actions,
    read_ohlcv_csv,
    read_qlib,
    sp500_sectors,
    write_qlib,
)
from moe_zoo.finance.dataset import walk_forward_splits
from moe_zoo.finance.panel import as_panel


def _write_bin(path, start: int, values) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack(f"<{len(values) + 1}f", float(start), *values))


@pytest.fixture
def qlib_dir(tmp_path):
    """A hand-written Qlib provider directory: 6-day calendar, two instruments, one with a span."""
    root = tmp_path / "qlib"
    (root / "calendars").mkdir(parents=True)
    (root / "calendars" / "day.txt").write_text(
        "2020-01-02\n2020-01-03\n2020-01-06\n2020-01-07\n2020-01-08\n2020-01-09\n")
    (root / "instruments").mkdir()
    (root / "instruments" / "csi2.txt").write_text("SH600000\t2020-01-02\t2020-01-09\nSZ000001\t2020-01-06\t2020-01-08\n")
    # SH600000 from day 0 (6 values); SZ000001 from day 1 (5 values, membership only days 2..4)
    for field, base in (("open", 10.0), ("high", 11.0), ("low", 9.0), ("close", 10.5), ("volume", 1000.0)):
        _write_bin(root / "features" / "sh600000" / f"{field}.day.bin", 0, [base + i for i in range(6)])
        _write_bin(root / "features" / "sz000001" / f"{field}.day.bin", 1, [2 * base + i for i in range(5)])
    return root


def test_read_qlib_bins_calendar_offsets_and_membership(qlib_dir):
    panel = read_qlib(qlib_dir, instruments="csi2")
    a = panel.xs("SH600000", level="instrument")
    assert list(a["close"]) == [10.5, 11.5, 12.5, 13.5, 14.5, 15.5]
    b = panel.xs("SZ000001", level="instrument")
    # start index 1 -> first value on 2020-01-03; membership keeps 2020-01-06..08 only
    assert list(b.index.strftime("%Y-%m-%d")) == ["2020-01-06", "2020-01-07", "2020-01-08"]
    assert list(b["close"]) == [22.0, 23.0, 24.0] and list(b["volume"]) == [2001.0, 2002.0, 2003.0]
    assert "vwap" not in panel.columns                      # no vwap files: left out
    listed = read_qlib(qlib_dir, instruments=["SZ000001"], start="2020-01-03", end="2020-01-06")
    assert list(listed["close"]) == [21.0, 22.0]


def test_read_qlib_rejects_corrupt_files(qlib_dir):
    (qlib_dir / "features" / "sh600000" / "close.day.bin").write_bytes(b"\x00\x00\x80")
    with pytest.raises(InputError, match="truncated"):
        read_qlib(qlib_dir, instruments="csi2")
    _write_bin(qlib_dir / "features" / "sh600000" / "close.day.bin", 4, [1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="past the calendar"):
        read_qlib(qlib_dir, instruments="csi2")
    with pytest.raises(InputError, match="instruments"):
        read_qlib(qlib_dir, instruments="csi300")
    with pytest.raises(InputError, match="not found"):
        read_qlib(qlib_dir / "nope")


def test_write_qlib_round_trip(tmp_path, panel):
    panel = panel.drop(panel.index[5])                      # a missing day inside a history
    write_qlib(panel, tmp_path / "q")
    back = read_qlib(tmp_path / "q", fields=list(panel.columns))
    pd.testing.assert_frame_equal(back, panel.astype(np.float32).astype(float), check_exact=False, rtol=1e-6)


def test_read_ohlcv_csv_both_date_styles(tmp_path):
    ints = tmp_path / "a.csv"
    ints.write_text("Date,Symbol,Open,High,Low,Close,Volume\n20090821,A,25.6,25.61,25.22,25.55,34758\n"
                    "20090821,AA,13.5,13.9,13.4,13.8,100\n20090824,A,25.64,25.74,25.33,25.5,22247\n")
    panel = read_ohlcv_csv(ints)
    assert panel.index.names == ["datetime", "instrument"] and panel.shape == (3, 5)
    assert panel.loc[(pd.Timestamp("2009-08-24"), "A"), "close"] == 25.5
    iso = tmp_path / "b.csv"
    iso.write_text("ticker,datetime,close\nX,2021-03-01,10\nX,2021-03-02,11\n")
    assert list(read_ohlcv_csv(iso)["close"]) == [10.0, 11.0]


@pytest.mark.parametrize(("text", "message"), [
    ("date,symbol,close\n2020-01-01,A,1\n2020-01-01,A,2\n", "duplicate"),
    ("date,symbol,close\n2020-01-01,A,-1\n", "non-positive"),
    ("date,symbol,open\n2020-01-01,A,1\n", "missing field"),
    ("date,symbol,close\n2020-01-01,A,abc\n", "non-numeric"),
    ("when,symbol,close\n2020-01-01,A,1\n", "no date column"),
])
def test_bad_csv_gives_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_ohlcv_csv(path)


def test_split_adjustment_removes_a_two_for_one_split(panel):
    raw = panel.copy()
    day = raw.index.get_level_values("datetime").unique()[40]
    after = (raw.index.get_level_values("datetime") >= day) & (raw.index.get_level_values("instrument") == "S01")
    raw.loc[after, ["open", "high", "low", "close"]] /= 2.0
    raw.loc[after, "volume"] *= 2.0
    adjusted, events = adjust_corporate_actions(raw)
    assert events[["instrument", "ratio"]].values.tolist() == [["S01", 2.0]]
    before = raw.index.get_level_values("datetime") < day
    s01 = raw.index.get_level_values("instrument") == "S01"
    np.testing.assert_allclose(adjusted.loc[before & s01, "close"], panel.loc[before & s01, "close"] / 2.0)
    np.testing.assert_allclose(adjusted.loc[before & s01, "volume"], panel.loc[before & s01, "volume"] * 2.0)
    np.testing.assert_allclose(adjusted.loc[~s01].to_numpy(), panel.loc[~s01].to_numpy())


def test_walk_forward_splits_are_ordered_with_label_gaps():
    days = pd.bdate_range("2020-01-01", periods=245)
    splits = walk_forward_splits(days, train=120, valid=20, test=20, warmup=20)
    assert len(splits) == 4
    for split in splits:
        train, valid, test = (split.dates(s, days) for s in ("train", "valid", "test"))
        assert len(train) == 120 and len(valid) == 20 and len(test) >= 10
        # two trading days between segments: the label of the last train day reads only train-period closes
        assert days.get_loc(valid[0]) - days.get_loc(train[-1]) == 3
        assert days.get_loc(test[0]) - days.get_loc(valid[-1]) == 3
        assert test[-1] <= days[-3]
    assert splits[1].dates("test", days)[0] > splits[0].dates("test", days)[-1]
    with pytest.raises(InputError):
        walk_forward_splits(days[:50], train=120, valid=20, test=20)


def test_builtin_sp500_panel(sp500):
    instruments = sp500.index.get_level_values("instrument").unique()
    days = sp500.index.get_level_values("datetime").unique()
    assert len(instruments) == 524 and len(days) == 245
    assert days.min() == pd.Timestamp("2009-08-21") and days.max() == pd.Timestamp("2010-08-20")
    gis = sp500.xs("GIS", level="instrument")["close"]
    assert abs(gis.pct_change().loc["2010-06-09"]) < 0.1     # the 2:1 split is back-adjusted
    sectors = sp500_sectors()
    assert sectors["AAPL"] == "Information Technology" and len(set(instruments) & set(sectors.index)) == 442


def test_as_panel_accepts_indexed_frames(panel):
    assert as_panel(panel).equals(panel.astype(float))
