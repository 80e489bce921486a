"""`moe-zoo recsys bench --data <kuairand_dir> --preset kuairand` end to end on a folder in KuaiRand's layout,
and the MovieLens six-task set's labels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from moe_zoo.core.cli import main
from moe_zoo.recsys.benchmark import ABLATIONS, MODELS


def test_kuairand_preset_runs_every_model_and_ablation(kuairand_dir, tmp_path):
    out = tmp_path / "report"
    assert main(["-q", "recsys", "bench", "--data", str(kuairand_dir), "--preset", "kuairand", "--seeds", "0",
                 "--epochs", "1", "--workers", "1", "--out", str(out)]) == 0
    saved = json.loads((out / "benchmarks" / "results" / "records.json").read_text())
    labels = [r["label"] for r in saved["records"]]
    assert labels == list(MODELS) + list(ABLATIONS)
    for record in saved["records"]:
        assert len(record["metrics"]) == 9 and record["epochs"] == 1
        aucs = [m["auc"] for m in record["metrics"].values() if np.isfinite(m["auc"])]
        assert len(aucs) >= 7 and all(0 <= a <= 1 for a in aucs)
        assert record["mean_auc"] == pytest.approx(np.mean(aucs))
    text = (out / "BENCHMARKS.md").read_text()
    assert "kuairand: ablation of HoME's fixes" in text and "is_profile_enter" in text
    assert "--preset kuairand" in text


def test_movielens_six_tasks_follow_their_definitions(real_data):
    from moe_zoo.recsys.data import movielens_multitask, read_movielens_100k

    splits = movielens_multitask()
    assert splits.tasks.groups == (0, 0, 0, 1, 1, 1)
    labels = np.concatenate([splits.train.labels, splits.valid.labels, splits.test.labels])
    click, cont, long_session, like, five, dislike = labels.T
    assert click.sum() == 100_000 and ((cont + long_session + like + five + dislike)[click == 0] == 0).all()
    ratings, _, _ = read_movielens_100k()
    assert like.sum() == (ratings["rating"] >= 4).sum() and five.sum() == (ratings["rating"] == 5).sum()
    assert dislike.sum() == (ratings["rating"] <= 2).sum()
    # continue: the user's next rating within 30 minutes, counted independently here
    ordered = ratings.sort_values(["user_id", "timestamp"])
    gap = ordered.groupby("user_id")["timestamp"].diff(-1).abs()
    assert cont.sum() == (gap < 1800).sum()
    assert 0 < long_session.sum() < click.sum()
