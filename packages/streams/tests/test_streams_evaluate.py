"""The prequential harness agrees with river's and measures what the benchmark reports."""

import pytest
from river import evaluate, metrics, tree

from moe_zoo.core import InputError
from moe_zoo.streams import DriftMoEClassifier, make_model, make_stream, prequential
from moe_zoo.streams.baselines import list_benchmark_models


def test_prequential_matches_rivers_progressive_validation():
    rows = make_stream("agr_a", length=1200, seed=1)
    ours = prequential(tree.HoeffdingTreeClassifier(grace_period=50), rows, window=300)
    river_acc = evaluate.progressive_val_score(rows, tree.HoeffdingTreeClassifier(grace_period=50), metrics.Accuracy())
    kappa = evaluate.progressive_val_score(rows, tree.HoeffdingTreeClassifier(grace_period=50), metrics.CohenKappa())
    assert ours.accuracy == pytest.approx(river_acc.get())
    assert ours.kappa == pytest.approx(kappa.get())
    assert ours.n == 1200 and len(ours.curve) == 4
    assert sum(ours.curve) / 4 == pytest.approx(ours.accuracy, abs=1 / 1200)  # the first instance has no prediction
    assert ours.throughput > 0 and ours.peak_memory_bytes > 0 and ours.router_share is None


def test_driftmoe_reports_its_router_share():
    result = prequential(DriftMoEClassifier(seed=0), make_stream("sea_a", length=600, seed=0), window=200)
    assert 0 < result.router_share < 1
    assert result.to_dict()["throughput"] == pytest.approx(result.throughput)
    with pytest.raises(InputError):
        prequential(DriftMoEClassifier(), [], window=10)


def test_every_benchmark_model_builds_and_learns():
    rows = make_stream("phishing", length=200)
    for name in list_benchmark_models():
        model = make_model(name, seed=0)
        for x, y in rows:
            model.learn_one(x, y)
        assert model.predict_one(rows[0][0]) in (True, False), name
    with pytest.raises(InputError, match="unknown model"):
        make_model("xgboost", seed=0)


def test_reused_records_keep_the_date_of_the_run_that_measured_them(tmp_path, monkeypatch):
    import json

    from moe_zoo.streams import benchmark

    plan = benchmark.make_plan(True, [0], ["ht", "hat"])
    path = tmp_path / "records.json"
    monkeypatch.setattr(benchmark.Plan, "records_path", property(lambda self: path))
    rows = [{"stream": "sea_a", "model": "ht", "seed": 0, "reused": "2026-12-02"},
            {"stream": "sea_a", "model": "hat", "seed": 0}]
    path.write_text(json.dumps({"date": "2026-12-06", "records": rows}))
    assert [r["reused"] for r in benchmark._reused(plan, ())] == ["2026-12-02", "2026-12-06"]
    path.write_text(json.dumps({"records": rows[1:]}))
    assert [r["reused"] for r in benchmark._reused(plan, ())] == ["unknown date"]
