"""FastGaussianSplitter against river's GaussianSplitter: the same split, merit, branch statistics
and naive-Bayes term on random class-conditional data (weighted, ties, constant features)."""

import math
import random

import pytest
from river.tree.split_criterion import InfoGainSplitCriterion
from river.tree.splitter import GaussianSplitter

from moe_zoo.streams.splitter import FastGaussianSplitter


def _pair(rng: random.Random):
    river_splitter, fast = GaussianSplitter(), FastGaussianSplitter()
    n_classes, pre = rng.randint(1, 6), {}
    for _ in range(rng.randint(1, 80)):
        y = rng.randrange(n_classes)
        value = rng.choice([rng.gauss(y, 1.0), float(rng.randint(0, 1)), 0.5])
        w = rng.choice([1, 2, 6, 0.5])
        river_splitter.update(value, y, w)
        fast.update(value, y, w)
        pre[y] = pre.get(y, 0.0) + w
    return river_splitter, fast, pre, n_classes


@pytest.mark.parametrize("seed", range(4))
def test_same_split_merit_and_branches_as_river(seed):
    rng = random.Random(seed)
    criterion = InfoGainSplitCriterion(min_branch_fraction=0.01)
    splits = 0
    for _ in range(300):
        river_splitter, fast, pre, _ = _pair(rng)
        expected = river_splitter.best_evaluated_split_suggestion(criterion, pre, "f", True)
        got = fast.best_evaluated_split_suggestion(criterion, pre, "f", True)
        assert got.split_info == expected.split_info and got.feature == expected.feature
        assert got.merit == pytest.approx(expected.merit, rel=1e-12, abs=1e-12)
        if expected.children_stats is None:
            assert got.children_stats is None
            continue
        splits += 1
        for mine, theirs in zip(got.children_stats, expected.children_stats, strict=True):
            assert mine.keys() == theirs.keys()
            assert all(mine[k] == pytest.approx(theirs[k], rel=1e-12, abs=1e-12) for k in theirs)
    assert splits > 100  # most random leaves do have a split to compare


def test_naive_bayes_term_equals_river():
    rng = random.Random(0)
    for _ in range(100):
        river_splitter, fast, _, n_classes = _pair(rng)
        for y in range(n_classes + 1):  # the last class was never seen: -inf
            x = rng.gauss(0.0, 2.0)
            expected, got = river_splitter.cond_log_proba(x, y), fast.cond_log_proba(x, y)
            assert got == expected or (math.isinf(got) and math.isinf(expected))
