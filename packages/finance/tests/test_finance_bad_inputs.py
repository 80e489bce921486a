"""Bad inputs: quarantined price rows, resumes with other settings, numeric options, short panels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from moe_zoo.core import InputError, create_model, load_checkpoint
from moe_zoo.core.cli import main
from moe_zoo.finance import predict
from moe_zoo.finance.dataset import DataConfig, Split, build_feature_panel
from moe_zoo.finance.panel import as_panel
from moe_zoo.finance.train import TrainConfig, fit

DATA = DataConfig(feature_set="alpha158-20", step_len=5)


def _linear(data: DataConfig = DATA):
    torch.manual_seed(0)
    return create_model("finance-linear", data=data.to_dict()).eval()


@pytest.fixture(scope="module")
def prices():
    rng = np.random.default_rng(3)
    days = pd.bdate_range("2021-01-01", periods=160)
    frames = []
    for k in range(8):
        close = 30.0 * np.exp(np.cumsum(rng.normal(0, 0.02, len(days))))
        frames.append(pd.DataFrame({"datetime": days, "instrument": f"S{k}", "open": close * 1.001,
                                    "high": close * 1.01, "low": close * 0.99, "close": close,
                                    "volume": rng.integers(1_000, 9_000, len(days)).astype(float)}))
    return pd.concat(frames).set_index(["datetime", "instrument"]).sort_index()


BAD_DAY = 100


@pytest.mark.parametrize("value", [1e300, np.inf, np.nan, -5.0, 0.0])
def test_a_bad_close_is_quarantined_as_if_the_row_were_absent(prices, value):
    key = (prices.index.get_level_values(0).unique()[BAD_DAY], "S3")
    bad = prices.copy()
    bad.loc[key, "close"] = value
    model = _linear()
    scores = predict(model, bad)
    absent = predict(model, prices.drop(index=[key]))
    pd.testing.assert_series_equal(scores, absent, check_exact=True)
    report = as_panel(bad).attrs["quarantined"]
    assert [(r["datetime"], r["instrument"]) for r in report] == [(f"{key[0]:%Y-%m-%d}", "S3")]


def test_with_fitted_normalisation_a_bad_row_leaves_every_other_stock_unchanged(prices):
    days = prices.index.get_level_values(0).unique()
    fitted = build_feature_panel(prices, DataConfig(feature_set="alpha158-20", step_len=5, norm="fit"),
                                 fit_period=(f"{days[0]:%Y-%m-%d}", f"{days[80]:%Y-%m-%d}")).config
    model = _linear(fitted)
    bad = prices.copy()
    bad.loc[(days[BAD_DAY], "S3"), "close"] = 1e300
    clean, dirty = predict(model, prices), predict(model, bad)
    others = clean.index.get_level_values("instrument") != "S3"
    # equal up to float32 rounding: a day with one stock fewer is scored in a batch of another shape
    pd.testing.assert_series_equal(dirty[dirty.index.get_level_values("instrument") != "S3"], clean[others],
                                   check_exact=False, rtol=1e-5, atol=1e-6)
    s3 = (dirty.xs("S3", level="instrument") - clean.xs("S3", level="instrument")).abs()
    assert (s3[: days[BAD_DAY - 1]] == 0).all() and s3.max() > 0   # only the bad stock, only from its bad day


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("close", 5e9, "close above"), ("high", np.inf, "high is inf"), ("close", 400.0, "away from the row"),
    ("volume", -1.0, "volume is inf or negative"), ("close", np.nan, "missing close")])
def test_quarantine_names_the_reason(prices, field, value, reason):
    bad = prices.copy()
    key = (prices.index.get_level_values(0).unique()[5], "S1")
    bad.loc[key, field] = value
    panel = as_panel(bad)
    assert len(panel) == len(prices) - 1 and key not in panel.index
    (record,) = panel.attrs["quarantined"]
    assert record["instrument"] == "S1" and reason in record["reason"]


def test_a_table_of_only_bad_rows_is_an_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("date,symbol,close\n2020-01-01,A,inf\n2020-01-02,A,1e300\n")
    assert main(["-q", "finance", "predict", "--data", str(path)]) == 2
    with pytest.raises(InputError, match="every row has bad numbers"):
        as_panel(pd.read_csv(path))


def test_cli_reports_quarantined_rows_and_still_scores(tmp_path, prices, capsys):
    bad = prices.copy()
    bad.loc[(prices.index.get_level_values(0).unique()[-1], "S2"), "close"] = np.inf
    path = tmp_path / "p.csv"
    bad.reset_index().to_csv(path, index=False)
    assert main(["-q", "finance", "predict", "--model", "miga-conv", "--data", str(path), "--top", "8"]) == 0
    out = capsys.readouterr().out
    assert "quarantined 1 price row(s)" in out and "S2: close is inf" in out
    assert "top 8 of 7 stocks" in out                       # S2 has no row on the last day


# ----------------------------------------------------------------------------- resume
@pytest.fixture(scope="module")
def small(prices):
    fp = build_feature_panel(prices, DATA)
    days = fp.dates
    split = Split(train=(f"{days[20]:%Y-%m-%d}", f"{days[100]:%Y-%m-%d}"),
                  valid=(f"{days[103]:%Y-%m-%d}", f"{days[130]:%Y-%m-%d}"),
                  test=(f"{days[133]:%Y-%m-%d}", f"{days[157]:%Y-%m-%d}"))
    return fp, split


@pytest.mark.parametrize(("change", "message"), [
    ({"seed": 2}, "seed"), ({"config": TrainConfig(epochs=2, lr=5e-3)}, "lr"), ({"rows": 150}, "data")])
def test_resume_refuses_a_state_with_other_settings(tmp_path, prices, small, change, message):
    fp, split = small
    state = tmp_path / "state.safetensors"
    fit(_linear(), fp, split, TrainConfig(epochs=1), seed=1, state_path=state)
    other = fp if "rows" not in change else build_feature_panel(
        prices[prices.index.get_level_values(0) <= fp.dates[change["rows"]]], DATA)
    with pytest.raises(InputError, match=f"another run.*{message}"):
        fit(_linear(), other, split, change.get("config", TrainConfig(epochs=2)), seed=change.get("seed", 1),
            state_path=state)
    forced = fit(_linear(), other, split, change.get("config", TrainConfig(epochs=2)), seed=change.get("seed", 1),
                 state_path=state, force_restart=True)
    assert forced.history[0]["epoch"] == 0     # trained from scratch


def test_resume_with_the_same_settings_continues(tmp_path, small):
    fp, split = small
    state = tmp_path / "state.safetensors"
    fit(_linear(), fp, split, TrainConfig(epochs=1, patience=5), seed=1, state_path=state)
    resumed = fit(_linear(), fp, split, TrainConfig(epochs=2, patience=5), seed=1, state_path=state)
    straight = fit(_linear(), fp, split, TrainConfig(epochs=2, patience=5), seed=1)
    assert [h["epoch"] for h in resumed.history] == [0, 1]
    assert resumed.history[-1]["valid_ic"] == pytest.approx(straight.history[-1]["valid_ic"], abs=1e-6)


def test_cli_resume_with_another_seed_is_refused_unless_forced(tmp_path, prices, small, capsys):
    path = tmp_path / "p.csv"
    prices.reset_index().to_csv(path, index=False)
    dates = [d for segment in ("train", "valid", "test") for d in (f"--{segment}", *getattr(small[1], segment))]
    common = ["-q", "finance", "train", "--model", "finance-linear", "--data", str(path), "--epochs", "1",
              "--features", "alpha158-20", *dates, "--resume", str(tmp_path / "state.safetensors")]
    assert main([*common, "--out", str(tmp_path / "a.safetensors")]) == 0
    assert main([*common, "--seed", "4", "--out", str(tmp_path / "b.safetensors")]) == 2
    assert "seed: state 0, now 4" in capsys.readouterr().err and not (tmp_path / "b.safetensors").exists()
    assert main([*common, "--seed", "4", "--force-restart", "--out", str(tmp_path / "b.safetensors")]) == 0
    record = load_checkpoint(tmp_path / "b.safetensors").metadata
    assert record["seed"] == 4 and record["split"]["test"] == list(small[1].test)


# ----------------------------------------------------------------------------- options and short panels
@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--lr", "nan"], "--lr: expected a number > 0, got 'nan'"),
    (["train", "--lr", "-1"], "--lr: expected a number > 0"),
    (["train", "--epochs", "0"], "--epochs: expected an integer > 0"),
    (["train", "--patience", "0"], "--patience: expected an integer > 0"),
    (["train", "--seed", "-1"], "--seed: expected an integer >= 0"),
    (["train", "--step-len", "0"], "--step-len: expected an integer > 0"),
    (["train", "--train", "2008-01-01", "notadate"], "--train: expected a date"),
    (["predict", "--date", "notadate"], "--date: expected a date"),
    (["predict", "--top", "0"], "--top: expected an integer > 0"),
    (["eval", "--topk", "0"], "--topk: expected an integer > 0"),
    (["eval", "--n-drop", "-1"], "--n-drop: expected an integer >= 0"),
    (["train", "--threads", "0"], "--threads: expected an integer > 0"),
    (["bench", "--jobs", "0"], "--jobs: expected an integer > 0"),
])
def test_numeric_options_are_checked_at_the_boundary(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["-q", "finance", *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("bad", [{"lr": float("nan")}, {"lr": 0.0}, {"epochs": 0}, {"patience": 0},
                                 {"grad_clip": float("inf")}, {"weight_decay": -1.0}])
def test_train_config_rejects_meaningless_values(bad):
    with pytest.raises(InputError, match=next(iter(bad))):
        TrainConfig(**bad)


def test_a_60_row_csv_is_scored_with_partial_windows_and_too_short_to_train(tmp_path, prices, capsys):
    short = prices[prices.index.get_level_values("instrument").isin(["S0", "S1", "S2"])].head(60)
    path = tmp_path / "short.csv"
    short.reset_index().to_csv(path, index=False)
    assert main(["-q", "finance", "predict", "--data", str(path), "--top", "3"]) == 0
    assert "top 3 of 3 stocks" in capsys.readouterr().out
    assert main(["-q", "finance", "train", "--data", str(path), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "20 trading days are too few" in capsys.readouterr().err
