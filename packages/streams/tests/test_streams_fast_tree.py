"""The vectorised Hoeffding tree against river's: the same leaf statistics (bitwise), the same
splits and predictions on fixed streams with Poisson sample weights, shared tables, inputs."""

import math

import numpy as np
import pytest
from river import tree

from moe_zoo.core import InputError
from moe_zoo.streams import make_stream
from moe_zoo.streams.fast_tree import (
    FastHoeffdingTreeClassifier,
    LeafTable,
    learn_together,
    predict_together,
)


def _weights(n, seed=0):
    return np.random.default_rng(seed).poisson(6, size=n).tolist()  # online bagging's Poisson(6)


def _leaves(node):
    return _leaves(node.left) + _leaves(node.right) if hasattr(node, "threshold") else [node]


def test_leaf_statistics_equal_rivers_bit_for_bit():
    stream = make_stream("led_a", length=300, seed=0)  # 24 features, 10 classes
    ours = FastHoeffdingTreeClassifier(grace_period=10**6)  # no split: compare the root's observers
    theirs = tree.HoeffdingTreeClassifier(grace_period=10**6)
    for (x, y), w in zip(stream, _weights(len(stream))):
        if w:
            ours.learn_one(x, y, w=w)
            theirs.learn_one(x, y, w=w)
    table, row = ours._table, ours._root.row
    space = table.space
    root = theirs._root
    assert {space.classes[c]: table.stats[row, c] for c in range(len(space.classes))} == root.stats
    checked = 0
    for feature, splitter in root.splitters.items():
        f = space.feature_index[feature]
        for label, gaussian in splitter._att_dist_per_class.items():
            c = space.class_index[label]
            var = gaussian._var
            assert (table.n[row, c, f], table.mean[row, c, f], table.m2[row, c, f]) == (var.mean.n, var.mean._mean, var._S)
            assert (table.lo[row, c, f], table.hi[row, c, f]) == (splitter._min_per_class[label],
                                                                  splitter._max_per_class[label])
            checked += 1
    assert checked == 24 * len(root.stats)
    assert (table.mc[row], table.nb[row]) == (root._mc_correct_weight, root._nb_correct_weight)


@pytest.mark.parametrize("name,n", [("sea_a", 1500), ("led_a", 800), ("agr_a", 1000), ("bananas", 800), ("phishing", 800)])
def test_same_splits_and_predictions_as_river_with_sample_weights(name, n):
    stream = make_stream(name, length=n, seed=0)
    ours = FastHoeffdingTreeClassifier(grace_period=50, delta=0.01)
    theirs = tree.HoeffdingTreeClassifier(grace_period=50, delta=0.01)
    worst = 0.0
    for (x, y), w in zip(stream, _weights(n)):
        p, q = ours.predict_proba_one(x), theirs.predict_proba_one(x)
        assert p.keys() == q.keys()
        worst = max([worst, *(abs(p[k] - q[k]) for k in q)])
        if w:
            ours.learn_one(x, y, w=w)
            theirs.learn_one(x, y, w=w)
    # same tree, split for split (probabilities differ only in the last bits of the log-density)
    assert ours.n_nodes == theirs.n_nodes > 1
    assert worst < 1e-9
    thresholds = sorted(b.threshold for b in _branches(theirs._root))
    assert sorted(b.threshold for b in _branches(ours._root)) == thresholds


def _branches(node):
    if hasattr(node, "threshold"):
        return [node, *_branches(node.children[0] if hasattr(node, "children") else node.left),
                *_branches(node.children[1] if hasattr(node, "children") else node.right)]
    return []


def test_trees_sharing_a_table_learn_together_as_they_would_alone():
    stream = make_stream("bananas", length=600, seed=1)
    table = LeafTable()
    shared = [FastHoeffdingTreeClassifier(grace_period=30, delta=0.01, table=table) for _ in range(3)]
    alone = [FastHoeffdingTreeClassifier(grace_period=30, delta=0.01) for _ in range(3)]
    rng = np.random.default_rng(3)
    for x, y in stream:
        weights = rng.poisson(2, size=3).tolist()
        together = predict_together(shared, table.space.encode(x))
        for tree_alone, proba in zip(alone, together):
            expected = tree_alone.predict_proba_one(x)
            assert (proba is None) == (not expected)
            if proba is not None:  # over the space's classes: 0 for those this tree has not seen
                ours = dict(zip(table.space.classes, proba.tolist()))
                assert {k: ours[k] for k in expected} == pytest.approx(expected, abs=1e-12)
                assert sum(ours.values()) == pytest.approx(sum(expected.values()))
        learn_together(shared, table.space.encode(x), table.space.class_id(y), weights)
        for tree_alone, w in zip(alone, weights):
            if w:
                tree_alone.learn_one(x, y, w=w)
    assert [t.n_nodes for t in shared] == [t.n_nodes for t in alone]
    assert max(t.n_nodes for t in shared) > 1


def test_released_trees_give_their_rows_back():
    table = LeafTable()
    stream = make_stream("bananas", length=400, seed=0)
    first = FastHoeffdingTreeClassifier(grace_period=20, delta=0.05, table=table)
    for x, y in stream:
        first.learn_one(x, y, w=3)
    used = table._top
    first.release()
    second = FastHoeffdingTreeClassifier(grace_period=20, delta=0.05, table=table)
    for x, y in stream:
        second.learn_one(x, y, w=3)
    assert second.n_nodes > 1 and table._top == used  # the second tree reused the first one's rows


def test_missing_and_emerging_features_and_bad_inputs():
    model = FastHoeffdingTreeClassifier(grace_period=10)
    rng = np.random.default_rng(0)
    for i in range(200):
        x = {"a": float(rng.normal()), "b": float(rng.normal())}
        if i > 100:
            x["c"] = float(rng.normal())  # a feature that appears later
        if i % 7 == 0:
            del x["a"]  # and one that goes missing now and then
        model.learn_one(x, x.get("b", 0.0) > 0)
    proba = model.predict_proba_one({"b": 1.0})
    assert set(proba) == {False, True} and math.isclose(sum(proba.values()), 1.0)
    with pytest.raises(InputError, match="non-numeric"):
        model.learn_one({"a": "red", "b": 1.0}, True)
    with pytest.raises(InputError, match="leaf_prediction"):
        FastHoeffdingTreeClassifier(leaf_prediction="bayes")
    with pytest.raises(InputError, match="shared table"):
        FastHoeffdingTreeClassifier(leaf_prediction="mc", table=LeafTable("nba"))
    assert FastHoeffdingTreeClassifier().predict_proba_one({"a": 1.0}) == {}


def test_feature_subspaces_restrict_the_splits():
    stream = make_stream("led_a", length=1500, seed=0)
    model = FastHoeffdingTreeClassifier(grace_period=50, delta=0.01, max_features=5, seed=0)
    for x, y in stream:
        model.learn_one(x, y)
    table = model._table
    leaves = _leaves(model._root)
    assert model.n_nodes > 1 and all(table.sub[leaf.row].sum() == 5 for leaf in leaves if leaf.drawn)


@pytest.mark.parametrize(("unit", "expected"), [("weight", list(range(9, 151, 9))), ("instances", [50, 100, 150])])
def test_grace_counted_in_weight_or_in_instances(unit, expected, monkeypatch):
    attempts = []
    original = FastHoeffdingTreeClassifier._due

    def counting(self, leaf, routed, gap=math.inf):
        weight = original(self, leaf, routed, gap)
        if weight is not None:
            attempts.append(count)
        return weight

    monkeypatch.setattr(FastHoeffdingTreeClassifier, "_due", counting)
    model = FastHoeffdingTreeClassifier(grace_period=50, grace_unit=unit)
    for count in range(1, 151):  # one class only: the root never splits, it only tries
        model.learn_one({"a": float(count % 7), "b": float(count % 3)}, True, w=6)
    assert attempts == expected and model.n_nodes == 1  # weight 6: river tries every 9 instances (54 >= 50)
    with pytest.raises(InputError, match="grace_unit"):
        FastHoeffdingTreeClassifier(grace_unit="seconds")


def test_a_tree_is_walked_once_for_a_prediction_and_the_learning_that_follows(monkeypatch):
    table = LeafTable()
    trees = [FastHoeffdingTreeClassifier(grace_period=20, delta=0.01, table=table) for _ in range(3)]
    walks = []
    original = FastHoeffdingTreeClassifier._route
    monkeypatch.setattr(FastHoeffdingTreeClassifier, "_route", lambda self, values: walks.append(1) or original(self, values))
    stream = make_stream("sea_a", length=400, seed=0)
    for x, y in stream:
        encoded = table.space.encode(x)
        predict_together(trees, encoded)
        learn_together(trees, encoded, table.space.class_id(y), [1, 2, 3])
    assert sum(t.n_nodes > 1 for t in trees) >= 1  # the trees grew, so the memo was invalidated on the way
    assert len(walks) == 3 * len(stream)  # not 6 per instance
