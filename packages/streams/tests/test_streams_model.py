"""DriftMoE as a river classifier: river's checks, routing, the mask update, drift recovery."""

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from river import base, evaluate, metrics
from river.checks import check_estimator
from river.datasets import synth

from moe_zoo.core import InputError, create_model
from moe_zoo.streams import DriftMoEClassifier, DriftMoEConfig, make_stream
from moe_zoo.streams.data import drift_chain
from moe_zoo.streams.losses import correctness_mask


@pytest.mark.parametrize("variant", ["data", "task", "plus"])
def test_river_estimator_checks_pass(variant):
    # MoE-Task's published cadence (one torch step per instance) adds nothing to API compliance but time
    check_estimator(DriftMoEClassifier(variant=variant, seed=1, batch_size=32 if variant == "task" else None))


class _Oracle(base.Classifier):
    """An expert that is right exactly where ``right(x)`` holds and wrong elsewhere; never learns."""

    def __init__(self, right):
        self.right = right

    def learn_one(self, x, y):
        pass

    def predict_proba_one(self, x):
        label = x["b"] > 0  # the stream's label
        return {label if self.right(x) else not label: 1.0}


def test_router_learns_to_send_instances_to_the_expert_that_is_right():
    rng = np.random.default_rng(0)
    model = DriftMoEClassifier(variant="data", n_experts=4, top_k=1, seed=0)
    stream = [({"a": float(a), "b": float(b)}, bool(b > 0)) for a, b in rng.uniform(-1, 1, (3000, 2))]
    model.learn_one(*stream[0])
    # expert 2 is always right where a < 0, expert 1 where a >= 0, the others never
    model._pool.experts[:] = [_Oracle(lambda x: False), _Oracle(lambda x: x["a"] >= 0),
                              _Oracle(lambda x: x["a"] < 0), _Oracle(lambda x: False)]
    for x, y in stream[1:]:
        model.learn_one(x, y)
    test = [{"a": float(a), "b": float(b)} for a, b in rng.uniform(-1, 1, (400, 2))]
    chosen = [max(model.gate_weights_one(x).items(), key=lambda kv: kv[1])[0] for x in test]
    expected = [1 if x["a"] >= 0 else 2 for x in test]
    assert np.mean(np.array(chosen) == np.array(expected)) > 0.9
    accuracy = np.mean([model.predict_one(x) == (x["b"] > 0) for x in test])
    assert accuracy > 0.9  # top-1 prediction uses the chosen expert


def test_learn_one_buffers_the_mask_of_the_experts_before_they_learn():
    stream = make_stream("led_a", length=400, seed=3)
    model = DriftMoEClassifier(variant="data", seed=3, batch_size=1000)  # no step: the buffer keeps every row
    for x, y in stream[:399]:
        model.learn_one(x, y)
    x, y = stream[399]
    classes = model.classes + ([y] if y not in model.classes else [])
    before = [expert.predict_proba_one(x) for expert in model.experts]
    rows = np.array([[p.get(c, 0.0) for c in classes] for p in before])
    abstain = rows.sum(1) == 0
    rows = np.where(abstain[:, None], 1 / len(classes), rows / np.where(abstain, 1, rows.sum(1))[:, None])
    expected = correctness_mask(rows, classes.index(y), abstain)
    model.learn_one(x, y)
    np.testing.assert_array_equal(model.router._masks[399], expected)
    right = (rows.argmax(1) == classes.index(y)) & ~abstain
    assert not right.any()  # no expert answers this LED digit right yet, so the rule's fallback marks ...
    assert expected.sum() == 1 and expected[np.argmax(rows[:, classes.index(y)])] == 1  # ... the closest one


def test_router_step_matches_torch_and_the_numpy_snapshot_tracks_it():
    model = DriftMoEClassifier(variant="data", seed=5, batch_size=64, scaling="running")
    for x, y in make_stream("sea_a", length=64, seed=5):
        model.learn_one(x, y)
    router = model.router
    assert router.steps == 1 and np.isfinite(router.last_loss)
    raw = np.random.default_rng(0).uniform(0, 10, size=(5, router.gate.d_in))
    z = (raw - router.scaler.mean) / router.scaler.std  # the standardisation the step learned with
    with torch.no_grad():
        torch_weights = router.gate(torch.from_numpy(z).float()).weights.numpy()
    np.testing.assert_allclose(np.stack([router.route(row) for row in raw]), torch_weights, rtol=1e-4, atol=1e-6)
    stream = make_stream("sea_a", length=64, seed=5)
    rows = np.array([[x[k] for k in sorted(x)] for x, _ in stream])
    np.testing.assert_allclose(router.scaler.mean, rows.mean(0))  # running statistics = batch statistics
    np.testing.assert_allclose(router.scaler.std, rows.std(0))


@pytest.mark.parametrize("variant", ["data", "plus"])
def test_accuracy_recovers_after_an_abrupt_drift_on_a_short_sea_stream(variant):
    # SEA function 4 -> 3 (threshold 9.5 -> 7): about a fifth of the input space changes label
    concepts = [synth.SEA(variant=3, noise=0.0, seed=1), synth.SEA(variant=2, noise=0.0, seed=2)]
    stream = list(itertools.islice(drift_chain(concepts, [2000], width=50, seed=0), 5000))
    model = DriftMoEClassifier(variant=variant, seed=0)
    hits = []
    for x, y in stream:
        hits.append(model.predict_one(x) == y)
        model.learn_one(x, y)
    hits = np.array(hits)
    before, just_after, end = hits[1000:1975].mean(), hits[2000:2200].mean(), hits[4000:].mean()
    assert before > 0.9
    assert just_after < before - 0.08  # the drift hurts ...
    assert end > 0.93  # ... and DriftMoE recovers to its pre-drift level


@pytest.mark.parametrize("variant", ["data", "task", "plus"])
def test_every_variant_learns_well_above_the_majority_class(variant):
    rows = make_stream("rbf_m", length=2000, seed=0)  # 5 classes
    majority = max(Counter(y for _, y in rows).values()) / len(rows)
    model = DriftMoEClassifier(variant=variant, seed=0)
    accuracy = evaluate.progressive_val_score(rows, model, metrics.Accuracy()).get()
    assert accuracy > majority + 0.1
    assert model.router.seconds > 0


def test_task_variant_grows_one_expert_per_class():
    model = DriftMoEClassifier(variant="task", seed=0)
    assert model.predict_proba_one({"a": 1.0}) == {}
    for i in range(30):
        model.learn_one({"a": float(i % 3)}, "abc"[i % 3] if i < 20 else "d")
    assert model.classes == ["a", "b", "c", "d"] and len(model.experts) == 4
    proba = model.predict_proba_one({"a": 0.0})
    assert set(proba) == {"a", "b", "c", "d"} and sum(proba.values()) == pytest.approx(1.0)
    with pytest.raises(InputError, match="max_classes"):
        small = DriftMoEClassifier(variant="task", max_classes=2)
        for label in "xyz":
            small.learn_one({"a": 1.0}, label)


def test_mixture_combine_and_categorical_features():
    model = DriftMoEClassifier(variant="data", combine="mixture", seed=0)
    for i in range(300):
        model.learn_one({"colour": "red" if i % 2 else "blue", "v": float(i % 7)}, i % 2 == 0)
    assert model.predict_one({"colour": "blue", "v": 3.0}) is True
    assert model.router.encoder.categories["colour"] == {"blue": 0, "red": 1}


def test_config_round_trips_and_registry_builds_both_variants():
    model = create_model("driftmoe-task", seed=4)
    assert isinstance(model, DriftMoEClassifier) and model.variant == "task" and model.seed == 4
    config = DriftMoEClassifier(variant="data", top_k=2, seed=1).config
    assert DriftMoEConfig.from_json(config.to_json()) == config
    assert DriftMoEClassifier.from_config(config).top_k == 2


@pytest.mark.parametrize("kwargs", [{"variant": "both"}, {"top_k": 13}, {"temperature": 0.0}, {"combine": "vote"},
                                    {"variant": "task", "combine": "mixture"}, {"dropout": 1.0}])
def test_bad_parameters_and_inputs_raise_input_errors(kwargs):
    with pytest.raises(InputError):
        DriftMoEClassifier(**kwargs)


def test_bad_instances_raise_input_errors():
    model = DriftMoEClassifier(seed=0)
    with pytest.raises(InputError, match="dict"):
        model.learn_one([1.0, 2.0], 1)
    with pytest.raises(InputError, match="y is None"):
        model.learn_one({"a": 1.0}, None)
    model.learn_one({"a": 1.0}, 1)
    with pytest.raises(InputError, match="finite"):
        model.learn_one({"a": float("inf")}, 1)


def test_running_statistics_merge_batches_and_skip_missing_values():
    from moe_zoo.streams.router import RunningStandardizer

    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(300, 2))
    data[rng.random(300) < 0.2, 1] = np.nan
    scaler = RunningStandardizer(2)
    for start in range(0, 300, 64):
        scaler.update(data[start:start + 64])
    np.testing.assert_allclose(scaler.mean, np.nanmean(data, axis=0))
    np.testing.assert_allclose(scaler.std, np.nanstd(data, axis=0))
    z = scaler.transform(np.array([[3.0, np.nan]]))
    assert z[0, 1] == 0.0 and z.dtype == np.float32
