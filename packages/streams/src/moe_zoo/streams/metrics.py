"""The paper's prequential metrics: accuracy, Cohen's kappa, kappa_m and kappa_t.

Accuracy and Cohen's kappa are river's (:class:`river.metrics.Accuracy`,
:class:`river.metrics.CohenKappa`). The two stream-specific kappas (Bifet et al., 2015; MOA's
``BasicClassificationPerformanceEvaluator``, which the paper's capymoa evaluator wraps) compare
the accuracy ``p0`` with a trivial prequential baseline:

- ``kappa_m = (p0 - p_maj) / (1 - p_maj)``, ``p_maj`` = accuracy of the majority-class classifier
  (predicts the most frequent label seen *before* each instance);
- ``kappa_t = (p0 - p_per) / (1 - p_per)``, ``p_per`` = accuracy of the no-change classifier
  (predicts the previous instance's label), which exposes temporal dependence (Electricity).

Both are cumulative over the stream, as the paper reports them; they are 0 when the baseline is
perfect (``p_* = 1``). Ties for the majority go to the label seen first.
"""

from __future__ import annotations

from collections import Counter

from river import metrics


class _KappaAgainstBaseline(metrics.base.ClassificationMetric):
    """``(p0 - p_b) / (1 - p_b)`` for a prequential baseline ``b`` (subclasses give ``b``).

    A river classification metric (so ``Accuracy() + KappaM()`` works in river's evaluation
    tools); it keeps its own counts, not a confusion matrix.
    """

    _fmt = ".4f"

    def __init__(self) -> None:
        super().__init__()
        self._baseline_correct = 0.0
        self._baseline_seen = 0.0
        self._correct = 0.0

    def _baseline_prediction(self) -> object:
        raise NotImplementedError

    def _observe_label(self, y_true: object, w: float) -> None:
        raise NotImplementedError

    def update(self, y_true, y_pred, w: float = 1.0) -> None:
        baseline = self._baseline_prediction()
        self._baseline_correct += w * (baseline is not None and baseline == y_true)
        self._baseline_seen += w
        self._correct += w * (y_pred == y_true)
        self._observe_label(y_true, w)

    def revert(self, y_true, y_pred, w: float = 1.0) -> None:
        raise NotImplementedError(f"{type(self).__name__} depends on the order of the stream and cannot be reverted")

    @property
    def baseline_accuracy(self) -> float:
        return self._baseline_correct / self._baseline_seen if self._baseline_seen else 0.0

    def get(self) -> float:
        if not self._baseline_seen:
            return 0.0
        p0 = self._correct / self._baseline_seen
        pb = self.baseline_accuracy
        return 0.0 if pb >= 1.0 else (p0 - pb) / (1.0 - pb)


class KappaM(_KappaAgainstBaseline):
    """``kappa_m = (p0 - p_maj) / (1 - p_maj)`` against the prequential majority-class classifier.

    >>> from moe_zoo.streams.metrics import KappaM
    >>> metric = KappaM()
    >>> for y_true, y_pred in [(0, 0), (0, 0), (1, 1), (0, 1)]:
    ...     metric.update(y_true, y_pred)
    >>> metric.get()  # p0 = 3/4; majority says (none, 0, 0, 0): p_maj = 2/4
    0.5
    """

    def __init__(self) -> None:
        super().__init__()
        self._counts: Counter = Counter()

    def _baseline_prediction(self) -> object:
        if not self._counts:
            return None
        return max(self._counts, key=self._counts.__getitem__)  # first-seen label wins ties

    def _observe_label(self, y_true: object, w: float) -> None:
        self._counts[y_true] += w


class KappaT(_KappaAgainstBaseline):
    """``kappa_t = (p0 - p_per) / (1 - p_per)`` against the no-change (persistent) classifier.

    >>> from moe_zoo.streams.metrics import KappaT
    >>> metric = KappaT()
    >>> for y_true, y_pred in [(0, 0), (0, 0), (1, 1), (1, 0)]:
    ...     metric.update(y_true, y_pred)
    >>> metric.get()  # p0 = 3/4; no-change says (none, 0, 0, 1): p_per = 2/4
    0.5
    """

    def __init__(self) -> None:
        super().__init__()
        self._last: object = None

    def _baseline_prediction(self) -> object:
        return self._last

    def _observe_label(self, y_true: object, w: float) -> None:
        self._last = y_true


def stream_metrics() -> dict[str, metrics.base.Metric]:
    """Fresh instances of the four metrics the benchmark reports, by name."""
    return {"accuracy": metrics.Accuracy(), "kappa": metrics.CohenKappa(), "kappa_m": KappaM(), "kappa_t": KappaT()}
