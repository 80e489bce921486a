"""Training, evaluation, checkpoints, prediction on raw rows, diagnostics, the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from moe_zoo.core import InputError, load_checkpoint, load_model
from moe_zoo.recsys import adult, expert_health, predict, read_kuairand, synthetic_mmoe, train
from moe_zoo.recsys.dataset import Splits
from moe_zoo.recsys.train import TrainConfig, build, evaluate, fit

FAST = TrainConfig(epochs=3, batch_size=256, patience=3)


def _small(splits: Splits, rows: int) -> Splits:
    return Splits(splits.name, splits.train.subset(np.arange(rows)), splits.valid.subset(np.arange(rows // 4)),
                  splits.test.subset(np.arange(rows // 4)), splits.description)


@pytest.mark.parametrize("kind", ["home", "mmoe", "ple", "shared-bottom"])
def test_every_model_learns_the_synthetic_tasks(kind):
    splits = synthetic_mmoe(0.5, n=3000, d=20)
    baseline = float(np.std(splits.test.labels, 0).mean())  # RMSE of predicting the mean
    result = train(splits, kind, config=FAST, seed=0)
    rmses = [m["rmse"] for m in result.test.metrics.values()]
    assert np.mean(rmses) < 0.8 * baseline, (rmses, baseline)
    assert result.fit.best_epoch >= 1 and result.fit.samples_per_s > 0


def test_home_beats_chance_on_a_small_real_split(real_data):
    splits = _small(adult(), 8000)
    result = train(splits, "home", config=FAST, seed=0)
    assert result.test.metrics["income_50k"]["auc"] > 0.8 and result.test.metrics["never_married"]["auc"] > 0.8


def test_training_is_deterministic_for_a_seed():
    splits = synthetic_mmoe(0.0, n=1200, d=10)
    a = train(splits, "home", config=TrainConfig(epochs=1, batch_size=128), seed=3)
    b = train(splits, "home", config=TrainConfig(epochs=1, batch_size=128), seed=3)
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        torch.testing.assert_close(pa, pb)


def test_kuairand_folder_end_to_end_learns_the_click_signal(kuairand_dir):
    from sklearn.metrics import roc_auc_score

    from moe_zoo.recsys.train import predict_outputs

    splits = read_kuairand(kuairand_dir)
    model = build("home", splits, seed=0)
    fit(model, splits, TrainConfig(epochs=6, batch_size=64, patience=6), seed=0)
    metrics = evaluate(model, splits.test).metrics
    # clicks depend on the video's parity (0.3 vs 0.7) and so on its type: clearly above chance
    assert metrics["is_click"]["auc"] > 0.65, metrics["is_click"]
    probabilities = predict_outputs(model, splits.test)
    assert metrics["is_click"]["auc"] == pytest.approx(roc_auc_score(splits.test.labels[:, 0], probabilities[:, 0]))


def test_checkpoint_round_trip_and_predict_on_raw_rows(tmp_path, kuairand_csv):
    splits = read_kuairand(kuairand_csv, tasks=("is_click", "is_like"))
    result = train(splits, "mmoe", config=TrainConfig(epochs=1, batch_size=64), save_to=tmp_path / "m.safetensors")
    loaded = load_model(result.checkpoint)
    raw = pd.read_csv(kuairand_csv).head(50)
    raw["hour"] = raw["hourmin"] // 100
    raw["log_duration"] = np.log1p(raw["duration_ms"])
    scores = predict(loaded, raw)
    assert list(scores.columns) == ["is_click", "is_like"] and len(scores) == 50
    ids, numbers = loaded.config.schema.encode(raw)               # by hand: encode, forward, sigmoid
    with torch.no_grad():
        logits = loaded(torch.from_numpy(ids), torch.from_numpy(numbers)).logits
    np.testing.assert_allclose(scores.to_numpy(), torch.sigmoid(logits).numpy(), rtol=1e-6)
    torch.testing.assert_close(torch.tensor(scores.to_numpy()), torch.tensor(predict(result.model, raw).to_numpy()))
    with pytest.raises(InputError, match="lack the feature column"):
        predict(loaded, raw.drop(columns=["video_id"]))


def test_expert_health_reports_dead_relu_units_and_gate_shares():
    splits = synthetic_mmoe(0.5, n=2000, d=10)
    relu = build("mmoe", splits, seed=0)
    fit(relu, splits, TrainConfig(epochs=1, batch_size=128))
    health = expert_health(relu, splits.test)
    assert len(health.experts) == 8 and (health.experts["zero_fraction"] > 0).all()
    sums = health.gates.groupby("gate")["weight"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, rtol=1e-6)  # each gate's weights are a distribution
    home = build("home", splits, seed=0)
    fit(home, splits, TrainConfig(epochs=1, batch_size=128))
    h = expert_health(home, splits.test)
    assert (h.experts["zero_fraction"] < 0.01).all()  # Swish after the norm: no dead units
    assert set(h.experts["level"]) == {"meta", "tasks"} and set(h.own_weight().index) == {"y1", "y2"}


def test_cli_train_then_eval_report_the_models_own_numbers(tmp_path, kuairand_csv, capsys):
    from moe_zoo.core.cli import main

    out = tmp_path / "m.safetensors"
    assert main(["-q", "recsys", "train", "--model", "mmoe", "--data", str(kuairand_csv), "--epochs", "2",
                 "--batch-size", "64", "--seed", "3", "--out", str(out)]) == 0
    record = load_checkpoint(out).metadata
    assert record["seed"] == 3 and record["train"]["epochs"] == 2 and record["train"]["batch_size"] == 64
    capsys.readouterr()
    assert main(["-q", "recsys", "eval", "--model", str(out), "--data", str(kuairand_csv)]) == 0
    printed = capsys.readouterr().out
    expected = evaluate(load_model(out), read_kuairand(kuairand_csv).test).mean_auc
    assert f"mean AUC {expected:.4f}" in printed and record["test_mean_auc"] == pytest.approx(expected, abs=1e-6)


def test_shipped_weights_load_and_score_raw_rows():
    from moe_zoo.core import create_model

    model = create_model("recsys-home", pretrained=True)
    schema = model.config.schema
    assert model.config.tasks == ("click", "like", "five_star") and schema is not None
    rows = pd.DataFrame({name: [vocab[0], "never-seen"] for name, vocab in zip(schema.categorical, schema.vocabularies)})
    for name, mean in zip(schema.numeric, schema.mean):
        rows[name] = mean
    scores = predict(model, rows)
    # known values -> ids 1 (the first of each vocabulary), unseen -> 0; numbers at the mean -> 0
    ids = torch.tensor([[1] * len(schema.categorical), [0] * len(schema.categorical)])
    with torch.no_grad():
        expected = torch.sigmoid(model(ids, torch.zeros(2, len(schema.numeric))).logits).numpy()
    np.testing.assert_allclose(scores.to_numpy(), expected, rtol=1e-6)
    assert not np.allclose(expected[0], expected[1])


def test_shipped_weights_rank_the_real_test_split(real_data):
    from moe_zoo.recsys import evaluate, load, movielens

    metrics = evaluate(load("home"), movielens().test).metrics
    assert all(metrics[t]["auc"] > 0.75 for t in ("click", "like", "five_star"))
