"""`moe-zoo finance bench --data <qlib_dir> --preset csi300` end to end on a fixture written here
byte by byte in Qlib's provider layout, and `train` with Qlib's dates and train-fitted normalisation."""

from __future__ import annotations

import json
import struct

import numpy as np
import pandas as pd
import pytest

from moe_zoo.core import InputError, load_checkpoint
from moe_zoo.core.cli import main
from moe_zoo.finance.benchmark import experiment_data, preset_experiment
from moe_zoo.finance.dataset import DataConfig, build_feature_panel
from moe_zoo.finance.qlib_preset import QLIB_SPLIT, load_market

# A short calendar with days in each of Qlib's segments (train 2008-2014, valid 2015-16, test 2017-2020-08).
DAYS = pd.DatetimeIndex([*pd.bdate_range("2014-07-01", "2014-12-31"), *pd.bdate_range("2016-09-01", "2016-12-30"),
                         *pd.bdate_range("2017-01-03", "2017-04-28")])
CODES = [f"SH6000{k:02d}" for k in range(9)] + ["SZ000010"]
FIELDS = ("open", "high", "low", "close", "volume", "factor")
JUMP = 20                                     # SH600000 jumps 10% this many days before the end


def _write_bin(path, start: int, values: np.ndarray) -> None:
    """Qlib's ``<field>.day.bin``: little-endian float32, the first value the calendar index of the first day."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack(f"<{len(values) + 1}f", float(start), *values))


def _series(rng: np.random.Generator, n: int, drift: np.ndarray) -> dict[str, np.ndarray]:
    close = 10.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n) + drift))
    return {"open": close * np.exp(rng.normal(0, 0.005, n)), "high": close * 1.01, "low": close * 0.99,
            "close": close, "volume": rng.integers(10_000, 90_000, n).astype(float), "factor": np.ones(n)}


@pytest.fixture(scope="module")
def qlib_cn(tmp_path_factory):
    root = tmp_path_factory.mktemp("cn_data")
    (root / "calendars").mkdir()
    (root / "calendars" / "day.txt").write_text("".join(f"{d:%Y-%m-%d}\n" for d in DAYS))
    rng = np.random.default_rng(0)
    spans = []
    for k, code in enumerate(CODES):
        first = 40 if code == "SZ000010" else 0                  # a later listing: start index 40
        fields = _series(rng, len(DAYS) - first, np.zeros(len(DAYS) - first))
        if k == 0:                                                # a limit-up day in the test segment
            step = 1.10 * fields["close"][-JUMP - 1] / fields["close"][-JUMP]
            for name in ("open", "high", "low", "close"):
                fields[name][-JUMP:] *= step
        for field in FIELDS:
            _write_bin(root / "features" / code.lower() / f"{field}.day.bin", first, fields[field].astype("<f4"))
        end = "2016-11-30" if code == "SH600008" else "2099-12-31"   # leaves the index
        spans.append(f"{code}\t{DAYS[first]:%Y-%m-%d}\t{end}\n")
    (root / "instruments").mkdir()
    (root / "instruments" / "csi300.txt").write_text("".join(spans))
    index = 3000 * np.exp(np.cumsum(rng.normal(0, 0.01, len(DAYS))))
    _write_bin(root / "features" / "sh000300" / "close.day.bin", 0, index.astype("<f4"))
    return root


def test_bench_preset_runs_qlibs_protocol_end_to_end(qlib_cn, tmp_path):
    out = tmp_path / "report"
    assert main(["-q", "finance", "bench", "--data", str(qlib_cn), "--preset", "csi300", "--models", "finance-linear",
                 "miga-conv", "--seeds", "1", "--epochs", "1", "--jobs", "1", "--out", str(out)]) == 0
    runs = {p.stem: json.loads(p.read_text()) for p in (out / "benchmarks" / "results" / "csi300").glob("*.json")}
    assert set(runs) == {"finance-linear-s0", "miga-conv-s0"}
    run = runs["miga-conv-s0"]
    assert run["split"] == QLIB_SPLIT.to_dict()
    test_days = DAYS[(DAYS >= "2017-01-01")]
    assert run["days"] == len(test_days) - 2                      # the last two test days have no label
    assert next(iter(run["curve"])) == f"{test_days[1]:%Y-%m-%d}"    # the first score trades the next day
    text = (out / "BENCHMARKS.md").read_text()
    assert "excess over the index SH000300" in text and "x238" in text and "±9.5%" in text


def test_preset_backtest_uses_the_index_and_the_price_limit(qlib_cn):
    from dataclasses import replace

    from moe_zoo.finance.backtest import backtest

    exp = preset_experiment("csi300", str(qlib_cn), quick=True)
    assert exp.backtest_config().limit_threshold == 0.095 and exp.backtest_config().trading_days == 238
    fp, _, index = experiment_data(exp)
    close = pd.DataFrame(fp.close, index=fp.dates, columns=fp.instruments)
    jump = len(fp.dates) - JUMP                                     # SH600000 closes 10% up (limit-up)
    assert close["SH600000"].iloc[jump] / close["SH600000"].iloc[jump - 1] == pytest.approx(1.10, rel=1e-6)
    # hold SH600001, then (signal of the day before the jump) switch to SH600000
    days = fp.dates[jump - 5:jump]
    scores = pd.DataFrame(0.0, index=days, columns=fp.instruments)
    scores["SH600001"] = 1.0
    scores.loc[days[-1], "SH600000"] = 2.0
    series = scores.stack().rename_axis(["datetime", "instrument"])
    one = replace(exp.backtest_config(), topk=1, n_drop=1)
    china = backtest(series, close, one, benchmark=index)
    free = backtest(series, close, replace(one, limit_threshold=None), benchmark=index)
    assert china.daily.loc[fp.dates[jump], "n_holdings"] == 0 and list(free.holdings.index) == ["SH600000"]
    bench = (index / index.shift(1) - 1).reindex(china.daily.index).to_numpy()
    np.testing.assert_allclose(china.daily["bench"].to_numpy()[1:], bench[1:], rtol=1e-12)


def test_normalisation_statistics_come_from_the_train_segment_only(qlib_cn):
    panel, _ = load_market(qlib_cn, preset_experiment("csi300", str(qlib_cn), quick=True).market)
    config = DataConfig(norm="fit")
    full = build_feature_panel(panel, config, fit_period=QLIB_SPLIT.train).config
    later = panel.index.get_level_values("datetime") > pd.Timestamp(QLIB_SPLIT.train[1])
    changed = panel.copy()
    changed.loc[later, ["open", "high", "low", "close"]] *= 3.0
    assert build_feature_panel(changed, config, fit_period=QLIB_SPLIT.train).config == full
    moved = panel.copy()
    moved.loc[~later, ["open", "high", "low", "close"]] *= np.linspace(1, 2, (~later).sum())[:, None]
    assert build_feature_panel(moved, config, fit_period=QLIB_SPLIT.train).config.center != full.center
    # membership spans: SH600008 left the index on 2016-11-30
    assert panel.xs("SH600008", level="instrument").index.max() <= pd.Timestamp("2016-11-30")


def test_train_with_qlib_dates_and_fitted_normalisation_then_eval(qlib_cn, tmp_path, capsys):
    ckpt = tmp_path / "linear.safetensors"
    dates = ["--train", *QLIB_SPLIT.train, "--valid", *QLIB_SPLIT.valid, "--test", *QLIB_SPLIT.test]
    assert main(["-q", "finance", "train", "--model", "finance-linear", "--data", str(qlib_cn), "--market", "csi300",
                 "--norm", "fit", *dates, "--epochs", "1", "--out", str(ckpt)]) == 0
    checkpoint = load_checkpoint(ckpt)
    assert checkpoint.metadata["split"] == QLIB_SPLIT.to_dict()
    data = checkpoint.config["data"]
    assert data["norm"] == "fit" and len(data["center"]) == 158 and min(data["scale"]) > 0
    capsys.readouterr()
    assert main(["-q", "finance", "eval", "--model", str(ckpt), "--data", str(qlib_cn), "--market", "csi300",
                 "--start", "2017-01-01", "--end", "2020-08-01"]) == 0
    assert "test 2017-01-01..2020-08-01" in capsys.readouterr().out


def test_preset_without_the_index_is_a_clear_error(qlib_cn, tmp_path):
    import shutil

    copy = tmp_path / "no_index"
    shutil.copytree(qlib_cn, copy)
    shutil.rmtree(copy / "features" / "sh000300")
    with pytest.raises(InputError, match="needs the index SH000300"):
        experiment_data(preset_experiment("csi300", str(copy), quick=True))
