"""kappa_m and kappa_t against their formulas; river's kappa agrees with sklearn."""

import pytest
from river import metrics
from sklearn.metrics import cohen_kappa_score

from moe_zoo.streams.metrics import KappaM, KappaT, stream_metrics

Y_TRUE = ["a", "a", "b", "a", "b", "b", "c", "a"]
Y_PRED = ["a", "b", "b", "a", "a", "b", "c", "a"]


def _feed(metric):
    for t, p in zip(Y_TRUE, Y_PRED):
        metric.update(t, p)
    return metric


def test_kappa_m_by_hand():
    p0 = 6 / 8
    # the majority-class classifier predicts the most frequent label seen before each instance
    counts, majority_right = {}, 0
    for y in Y_TRUE:
        if counts:
            best = max(counts, key=counts.get)
            majority_right += best == y
        counts[y] = counts.get(y, 0) + 1
    p_maj = majority_right / 8
    assert _feed(KappaM()).get() == pytest.approx((p0 - p_maj) / (1 - p_maj))
    assert _feed(KappaM()).baseline_accuracy == pytest.approx(p_maj)


def test_kappa_t_by_hand():
    p0 = 6 / 8
    p_per = sum(a == b for a, b in zip(Y_TRUE[1:], Y_TRUE[:-1])) / 8  # no-change: right on each repeat
    assert _feed(KappaT()).get() == pytest.approx((p0 - p_per) / (1 - p_per))


def test_perfect_model_scores_one_and_copying_the_baseline_scores_zero():
    assert _feed(KappaT()).get() < 1
    perfect = KappaT()
    for y in Y_TRUE:
        perfect.update(y, y)
    assert perfect.get() == pytest.approx(1.0)
    persistent, last = KappaT(), None
    for y in Y_TRUE:
        persistent.update(y, last)
        last = y
    assert persistent.get() == pytest.approx(0.0)


def test_cohen_kappa_matches_sklearn_and_metrics_combine_with_river():
    kappa = _feed(metrics.CohenKappa()).get()
    assert kappa == pytest.approx(cohen_kappa_score(Y_TRUE, Y_PRED))
    combined = metrics.Accuracy() + KappaM() + KappaT()
    _feed(combined)
    assert [m.get() for m in combined] == pytest.approx([6 / 8, _feed(KappaM()).get(), _feed(KappaT()).get()])
    assert set(stream_metrics()) == {"accuracy", "kappa", "kappa_m", "kappa_t"}
    with pytest.raises(NotImplementedError):
        KappaM().revert("a", "a")
