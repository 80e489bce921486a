"""Bad inputs: numbers finite in float64 but not in float32, absurd magnitudes, text labels and
timestamps, empty files, options that mean "no training"."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from moe_zoo.core import InputError
from moe_zoo.core.cli import main
from moe_zoo.recsys import predict, read_kuairand, train
from moe_zoo.recsys.dataset import TaskSpec, build_splits, random_split, time_split
from moe_zoo.recsys.schema import FeatureSchema
from moe_zoo.recsys.train import TrainConfig


def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"c": rng.choice(["a", "b", "c"], n), "x": x, "y": (x > 0).astype(float)})


def _splits(frame: pd.DataFrame):
    return build_splits("toy", frame, random_split(len(frame)), categorical=["c"], numeric=["x"],
                        tasks=TaskSpec(("y",), ("binary",), (0,)))


@pytest.mark.parametrize(("value", "message"), [(1e300, "float32"), (np.inf, "NaN/inf"), (-1e39, "float32"),
                                                (1e30, "beyond")])
def test_numbers_are_checked_in_float32_and_for_magnitude_when_fitting(value, message):
    frame = _frame()
    frame.loc[3, "x"] = value
    with pytest.raises(InputError, match=f"numeric feature 'x' has 1 .*{message}"):
        _splits(frame)


@pytest.mark.parametrize("value", [1e300, 1e30, 5e4])
def test_absurd_numbers_at_prediction_are_errors_not_nan_or_zero_probabilities(value):
    result = train(_splits(_frame()), "mmoe", config=TrainConfig(epochs=1, batch_size=32))
    rows = _frame(4, seed=1)
    fine = predict(result.model, rows)
    assert np.isfinite(fine.to_numpy()).all() and ((fine > 0) & (fine < 1)).all().all()
    rows.loc[2, "x"] = value
    with pytest.raises(InputError, match="numeric feature 'x' has 1"):
        predict(result.model, rows)


def test_schema_bounds_standardised_values():
    schema = FeatureSchema.fit(pd.DataFrame({"x": [0.0, 1.0, 2.0]}), [], ["x"])
    schema.encode(pd.DataFrame({"x": [8000.0]}))                       # ~9800 std: allowed
    with pytest.raises(InputError, match="training standard deviations"):
        schema.encode(pd.DataFrame({"x": [9000.0]}))


def test_cli_predict_on_rows_with_1e300_fails_clearly(tmp_path, capsys):
    from moe_zoo.core import create_model

    schema = create_model("recsys-home", pretrained=True).config.schema
    rows = pd.DataFrame({name: [vocab[0]] for name, vocab in zip(schema.categorical, schema.vocabularies)})
    for name, mean in zip(schema.numeric, schema.mean):
        rows[name] = mean
    rows[schema.numeric[0]] = 1e300
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    assert main(["-q", "recsys", "predict", "--rows", str(path), "--out", str(tmp_path / "out.csv")]) == 2
    assert f"numeric feature {schema.numeric[0]!r}" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(("labels", "kind", "bad"), [
    (["1", "0", "yes"], "binary", "'yes'"), ([1.0, 0.0, 2.0], "binary", "2.0"),
    ([1.0, 0.0, 1e300], "regression", "1e+300"), ([1.0, "n/a", 2.0], "regression", "'n/a'")])
def test_bad_labels_are_errors_not_missing(labels, kind, bad):
    frame = pd.DataFrame({"c": ["a", "b", "c"] * 4, "x": np.arange(12.0), "y": labels * 4})
    with pytest.raises(InputError, match=f"label column 'y' has 4 bad value.*{re.escape(bad)}"):
        build_splits("toy", frame, np.array([0] * 10 + [1, 2]), categorical=["c"], numeric=["x"],
                     tasks=TaskSpec(("y",), (kind,), (0,)))


def test_empty_label_cells_are_missing_labels():
    frame = pd.DataFrame({"c": ["a", "b", "c", "a"], "x": [0.0, 1.0, 2.0, 3.0], "y": [1.0, None, 0.0, 1.0]})
    splits = build_splits("toy", frame, np.array([0, 0, 1, 2]), categorical=["c"], numeric=["x"],
                          tasks=TaskSpec(("y",), ("binary",), (0,)))
    assert np.isnan(splits.train.labels[1, 0]) and splits.train.labels[0, 0] == 1.0


def test_text_timestamps_are_parsed_not_sorted_as_strings(kuairand_dir):
    log = kuairand_dir / "log_standard_4_08_to_4_21_pure.csv"
    frame = pd.read_csv(log)
    # 9:00 sorts after 10:00 as text; parsed, it comes first
    stamps = pd.to_datetime(frame["time_ms"], unit="ms")
    frame["time_ms"] = [f"{t:%Y-%m-%d} {t.hour}:{t:%M:%S}" for t in stamps]
    text = kuairand_dir.parent / "text.csv"
    frame.to_csv(text, index=False)
    parsed = read_kuairand(text, tasks=("is_click",))
    numeric = read_kuairand(log, tasks=("is_click",))
    np.testing.assert_array_equal(parsed.train.labels, numeric.train.labels)   # same rows in the same split
    frame.loc[5, "time_ms"] = "yesterday"
    frame.to_csv(text, index=False)
    with pytest.raises(InputError, match="time_ms must be milliseconds or a date-time, got 'yesterday'"):
        read_kuairand(text, tasks=("is_click",))
    with pytest.raises(InputError, match="text would sort as strings"):
        time_split(np.array(["10:00", "9:00"], dtype=object))


@pytest.mark.parametrize(("content", "message"), [(b"", "not a readable CSV"), (b"user_id,video_id\n", "no rows"),
                                                  (b"\xff\xfe\x00bad\xff\n\x81\x82", "not a readable CSV")])
def test_empty_or_undecodable_csv_is_a_clear_error(tmp_path, capsys, content, message):
    path = tmp_path / "rows.csv"
    path.write_bytes(content)
    assert main(["-q", "recsys", "predict", "--rows", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_empty_kuairand_log_is_a_clear_error(tmp_path):
    path = tmp_path / "log_standard_4_08_to_4_21_pure.csv"
    path.write_text("user_id,video_id,time_ms,is_click\n")
    with pytest.raises(InputError, match="has no rows"):
        read_kuairand(path, tasks=("is_click",))
    with pytest.raises(InputError, match="no KuaiRand logs"):
        read_kuairand(tmp_path / "empty-folder" if (tmp_path / "empty-folder").mkdir() is None else tmp_path)


@pytest.mark.parametrize(("argv", "message"), [
    (["--epochs", "0"], "--epochs: expected an integer > 0"), (["--epochs", "-3"], "--epochs: expected an integer > 0"),
    (["--lr", "nan"], "--lr: expected a number > 0, got 'nan'"), (["--lr", "0"], "--lr: expected a number > 0"),
    (["--patience", "0"], "--patience: expected an integer > 0"), (["--seed", "-1"], "--seed: expected an integer >= 0"),
    (["--threads", "0"], "--threads: expected an integer > 0")])
def test_train_options_meaning_no_training_are_usage_errors(tmp_path, capsys, argv, message):
    out = tmp_path / "m.safetensors"
    with pytest.raises(SystemExit) as exit_:
        main(["-q", "recsys", "train", "--data", "synthetic:0.5", *argv, "--out", str(out)])
    assert exit_.value.code == 2 and message in capsys.readouterr().err and not out.exists()


def test_batch_size_one_is_an_error_before_any_data_is_read(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main(["-q", "recsys", "train", "--data", "no-such-set", "--batch-size", "1", "--out", str(out)]) == 2
    assert "batch_size must be an integer >= 2" in capsys.readouterr().err and not out.exists()
    for bad in ({"epochs": 0}, {"lr": float("nan")}, {"patience": 0}, {"weight_decay": -1.0}):
        with pytest.raises(InputError, match=next(iter(bad))):
            TrainConfig(**bad)


def test_predict_top_zero_is_an_error(tmp_path, capsys):
    path = tmp_path / "rows.csv"
    path.write_text("a\n1\n")
    with pytest.raises(SystemExit):
        main(["-q", "recsys", "predict", "--rows", str(path), "--top", "0"])
    assert "--top: expected an integer > 0" in capsys.readouterr().err
