"""The prequential (test-then-train) harness of the benchmark.

For every instance: ``y_hat = model.predict_one(x)``, the metrics see ``(y, y_hat)`` (skipped
while a model has no prediction at all, i.e. before it learned anything: river's rule), then
``model.learn_one(x, y)``; exactly what :func:`river.evaluate.progressive_val_score` does, plus
what the benchmark reports:

- accuracy, Cohen's kappa, kappa_m, kappa_t over the whole stream (:mod:`moe_zoo.streams.metrics`);
- an accuracy-over-time curve: accuracy in consecutive windows of ``window`` instances;
- throughput = instances / CPU seconds spent inside ``predict_one`` + ``learn_one`` (process CPU
  time: on a machine shared with other jobs wall time mostly measures the others; every model
  here computes on one thread), and the same over wall seconds; metric updates and memory probes
  are not timed;
- peak model memory: the largest of river's ``_raw_memory_usage`` (a deep ``sys.getsizeof`` walk;
  DriftMoE adds its router's tensors) over ``memory_probes`` evenly spaced probes and the end;
- for DriftMoE, the share of its wall seconds spent inside its router (``router.seconds``, timed
  with ``perf_counter``, the cheap clock, against the same clock over ``predict_one`` + ``learn_one``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from river import base
from tqdm.auto import tqdm

from moe_zoo.core import InputError
from moe_zoo.streams.metrics import stream_metrics
from moe_zoo.streams.router import warm_up


@dataclass
class PrequentialResult:
    """What one prequential run of one model over one stream measured."""

    n: int
    accuracy: float
    kappa: float
    kappa_m: float
    kappa_t: float
    seconds: float
    cpu_seconds: float
    peak_memory_bytes: int
    router_seconds: float | None = None
    window: int = 0
    curve: list[float] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Instances per CPU second of model time."""
        return self.n / self.cpu_seconds if self.cpu_seconds > 0 else float("inf")

    @property
    def wall_throughput(self) -> float:
        """Instances per wall second of model time."""
        return self.n / self.seconds if self.seconds > 0 else float("inf")

    @property
    def router_share(self) -> float | None:
        """Fraction of the model time spent in DriftMoE's router (None for other models)."""
        if self.router_seconds is None or self.seconds <= 0:
            return None
        return self.router_seconds / self.seconds

    def to_dict(self) -> dict:
        return asdict(self) | {"throughput": self.throughput, "wall_throughput": self.wall_throughput,
                               "router_share": self.router_share}


def _router_seconds(model: base.Classifier) -> float | None:
    router = getattr(model, "router", None)
    return None if router is None else float(router.seconds)


def prequential(model: base.Classifier, stream: Iterable[tuple[dict, object]], *, window: int = 500,
                memory_probes: int = 10, total: int | None = None, progress: bool = False,
                description: str = "prequential") -> PrequentialResult:
    """Test-then-train ``model`` on ``stream`` (see the module docstring for what is measured).

    ``total`` (the stream's length, when known) spaces the memory probes and sizes the progress bar.
    """
    if window < 1:
        raise InputError(f"prequential: window must be >= 1, got {window}")
    warm_up()  # torch's lazy optimiser imports must not be timed as DriftMoE's first instance
    metrics = stream_metrics()
    probe_every = max(1, (total or 10_000) // max(1, memory_probes))
    curve: list[float] = []
    window_correct = 0
    seconds = cpu_seconds = 0.0
    peak = 0
    n = 0
    clock, cpu_clock = time.perf_counter, time.process_time
    for x, y in tqdm(stream, total=total, disable=not progress, desc=description, mininterval=2.0):
        began, cpu_began = clock(), cpu_clock()
        y_pred = model.predict_one(x)
        model.learn_one(x, y)
        cpu_seconds += cpu_clock() - cpu_began
        seconds += clock() - began
        if y_pred is not None:  # river's rule: no prediction yet (nothing learned), no score
            for metric in metrics.values():
                metric.update(y, y_pred)
        n += 1
        window_correct += y_pred == y
        if n % window == 0:
            curve.append(window_correct / window)
            window_correct = 0
        if n % probe_every == 0:
            peak = max(peak, model._raw_memory_usage)
    if n == 0:
        raise InputError("prequential: the stream is empty")
    peak = max(peak, model._raw_memory_usage)
    return PrequentialResult(n=n, accuracy=metrics["accuracy"].get(), kappa=metrics["kappa"].get(),
                             kappa_m=metrics["kappa_m"].get(), kappa_t=metrics["kappa_t"].get(), seconds=seconds,
                             cpu_seconds=cpu_seconds,
                             peak_memory_bytes=int(peak), router_seconds=_router_seconds(model), window=window,
                             curve=curve)
