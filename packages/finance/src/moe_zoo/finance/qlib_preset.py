"""Qlib's CSI300 / CSI500 benchmark protocol on a Qlib provider directory (``--preset csi300``).

What the preset fixes, from Qlib's ``examples/benchmarks/*/workflow_config_*_Alpha158.yaml``
(read in microsoft/qlib) and ``qlib/contrib/strategy`` / ``qlib/backtest/exchange.py``:

- universe ``instruments/csi300.txt`` (``csi500.txt``), point-in-time membership spans;
- segments train 2008-01-01..2014-12-31, valid 2015-01-01..2016-12-31, test
  2017-01-01..2020-08-01 (Qlib's dates, no gap between segments);
- Alpha158, ``RobustZScoreNorm`` fitted on the train segment (``fit_start_time``/``fit_end_time``)
  with outliers clipped to ±3, ``Fillna``; label ``Ref($close,-2)/Ref($close,-1)-1`` trained on
  its ``CSRankNorm``;
- TopK-Dropout top 50 / drop 5, costs 5 bp open / 15 bp close (min 5), ``limit_threshold=0.095``,
  excess return over the index ``SH000300`` (``SH000905``), annualised with 238 trading days.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from moe_zoo.core import InputError
from moe_zoo.finance.data import read_qlib
from moe_zoo.finance.dataset import Split

QLIB_SPLIT = Split(train=("2008-01-01", "2014-12-31"), valid=("2015-01-01", "2016-12-31"),
                   test=("2017-01-01", "2020-08-01"))
WARMUP_DAYS = 120        # calendar days read before the train start: Alpha158's 60-day windows fill
LABEL_DAYS = 10          # calendar days read after the test end: the label reads two trading days on


@dataclass(frozen=True)
class QlibPreset:
    """One market of Qlib's China benchmark."""

    market: str
    benchmark: str
    split: Split = QLIB_SPLIT
    topk: int = 50
    n_drop: int = 5
    limit_threshold: float = 0.095
    trading_days: int = 238


PRESETS = {"csi300": QlibPreset("csi300", "SH000300"), "csi500": QlibPreset("csi500", "SH000905")}


def preset(name: str) -> QlibPreset:
    """The preset called ``name`` (``csi300`` | ``csi500``)."""
    if name not in PRESETS:
        raise InputError(f"--preset must be one of {sorted(PRESETS)}, got {name!r}")
    return PRESETS[name]


def load_market(root: str | Path, market: QlibPreset) -> tuple[pd.DataFrame, pd.Series]:
    """The market's price panel (membership spans applied) and the index's closes, from the
    warm-up before the train start to just after the test end."""
    lo = pd.Timestamp(market.split.train[0]) - pd.Timedelta(days=WARMUP_DAYS)
    hi = pd.Timestamp(market.split.test[1]) + pd.Timedelta(days=LABEL_DAYS)
    panel = read_qlib(root, market.market, start=f"{lo:%Y-%m-%d}", end=f"{hi:%Y-%m-%d}")
    try:
        index = read_qlib(root, [market.benchmark], fields=("close",), start=f"{lo:%Y-%m-%d}", end=f"{hi:%Y-%m-%d}")
    except InputError as err:
        raise InputError(f"the {market.market} preset needs the index {market.benchmark} "
                         f"(features/{market.benchmark.lower()}/close.day.bin): {err}") from None
    return panel, index["close"].droplevel("instrument")
