"""Training, evaluation, checkpoints, prediction on raw rows, diagnostics, the CLI."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
import torch

from moe_zoo.core import InputError, load_model
from moe_zoo.recsys import adult, expert_health, predict, read_kuairand, synthetic_mmoe, train
from moe_zoo.recsys.cli import configure
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


def test_kuairand_log_end_to_end_with_gauc(kuairand_csv):
    splits = read_kuairand(kuairand_csv)
    model = build("home", splits, seed=0)
    fit(model, splits, TrainConfig(epochs=2, batch_size=64))
    metrics = evaluate(model, splits.test).metrics
    assert set(metrics) == set(splits.tasks.names) and "gauc" in metrics["is_click"]


def test_checkpoint_round_trip_and_predict_on_raw_rows(tmp_path, kuairand_csv):
    splits = read_kuairand(kuairand_csv, tasks=("is_click", "is_like"))
    result = train(splits, "mmoe", config=TrainConfig(epochs=1, batch_size=64), save_to=tmp_path / "m.safetensors")
    loaded = load_model(result.checkpoint)
    raw = pd.read_csv(kuairand_csv).head(50)
    raw["hour"] = raw["hourmin"] // 100
    raw["log_duration"] = np.log1p(raw["duration_ms"])
    scores = predict(loaded, raw)
    assert list(scores.columns) == ["is_click", "is_like"] and len(scores) == 50
    assert ((scores.to_numpy() > 0) & (scores.to_numpy() < 1)).all()
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


def test_cli_verbs_parse():
    parser = argparse.ArgumentParser()
    configure(parser)
    for verb in ("train", "eval", "bench", "demo", "data"):
        assert callable(parser.parse_args([verb]).func)
    assert parser.parse_args(["predict", "--rows", "x.csv"]).rows == "x.csv"


def test_shipped_weights_load_and_score_raw_rows():
    from moe_zoo.core import create_model

    model = create_model("recsys-home", pretrained=True)
    schema = model.config.schema
    assert model.config.tasks == ("click", "like", "five_star") and schema is not None
    rows = pd.DataFrame({name: [vocab[0], "never-seen"] for name, vocab in zip(schema.categorical, schema.vocabularies)})
    for name, mean in zip(schema.numeric, schema.mean):
        rows[name] = mean
    scores = predict(model, rows)
    assert scores.shape == (2, 3) and ((scores > 0) & (scores < 1)).all().all()


def test_shipped_weights_rank_the_real_test_split(real_data):
    from moe_zoo.recsys import evaluate, load, movielens

    metrics = evaluate(load("home"), movielens().test).metrics
    assert all(metrics[t]["auc"] > 0.75 for t in ("click", "like", "five_star"))
