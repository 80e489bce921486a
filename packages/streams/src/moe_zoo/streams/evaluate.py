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
from collections.abc import Callable, Iterable
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


class _Run:
    """One model's running measurements inside :func:`prequential_side_by_side`."""

    def __init__(self, model: base.Classifier, window: int) -> None:
        self.model = model
        self.window = window
        self.metrics = stream_metrics()
        self.curve: list[float] = []
        self.window_correct = 0
        self.seconds = self.cpu_seconds = 0.0
        self.peak = 0

    def step(self, x: dict, y: object, n: int) -> None:
        """Test-then-train on the ``n``-th instance (1-based), timing only the model's calls."""
        began, cpu_began = time.perf_counter(), time.process_time()
        y_pred = self.model.predict_one(x)
        self.model.learn_one(x, y)
        self.cpu_seconds += time.process_time() - cpu_began
        self.seconds += time.perf_counter() - began
        if y_pred is not None:  # river's rule: no prediction yet (nothing learned), no score
            for metric in self.metrics.values():
                metric.update(y, y_pred)
        self.window_correct += y_pred == y
        if n % self.window == 0:
            self.curve.append(self.window_correct / self.window)
            self.window_correct = 0

    def result(self, n: int) -> PrequentialResult:
        self.peak = max(self.peak, self.model._raw_memory_usage)
        m = self.metrics
        return PrequentialResult(n=n, accuracy=m["accuracy"].get(), kappa=m["kappa"].get(), kappa_m=m["kappa_m"].get(),
                                 kappa_t=m["kappa_t"].get(), seconds=self.seconds, cpu_seconds=self.cpu_seconds,
                                 peak_memory_bytes=int(self.peak), router_seconds=_router_seconds(self.model),
                                 window=self.window, curve=self.curve)


def prequential_side_by_side(models: dict[str, base.Classifier], stream: Iterable[tuple[dict, object]], *,
                             window: int = 500, memory_probes: int = 10, total: int | None = None,
                             progress: bool = False, description: str = "prequential",
                             on_checkpoint: Callable[[dict[str, PrequentialResult]], None] | None = None,
                             checkpoint_every: int = 100_000) -> dict[str, PrequentialResult]:
    """Test-then-train every model of ``models`` on the same stream in one process, instance by
    instance in turn, so that whatever else runs on the machine slows them alike and their
    throughputs can be compared (see the module docstring for what is measured).

    ``on_checkpoint`` (long runs) receives the results so far every ``checkpoint_every`` instances.
    """
    if window < 1:
        raise InputError(f"prequential: window must be >= 1, got {window}")
    if not models:
        raise InputError("prequential: no models given")
    warm_up()  # torch's lazy optimiser imports must not be timed as DriftMoE's first instance
    runs = {name: _Run(model, window) for name, model in models.items()}
    probe_every = max(1, (total or 10_000) // max(1, memory_probes))
    n = 0
    for x, y in tqdm(stream, total=total, disable=not progress, desc=description, mininterval=2.0):
        n += 1
        for run in runs.values():
            run.step(x, y, n)
        if n % probe_every == 0:
            for run in runs.values():
                run.peak = max(run.peak, run.model._raw_memory_usage)
        if on_checkpoint is not None and n % checkpoint_every == 0:
            on_checkpoint({name: run.result(n) for name, run in runs.items()})
    if n == 0:
        raise InputError("prequential: the stream is empty")
    return {name: run.result(n) for name, run in runs.items()}


def prequential(model: base.Classifier, stream: Iterable[tuple[dict, object]], *, window: int = 500,
                memory_probes: int = 10, total: int | None = None, progress: bool = False,
                description: str = "prequential") -> PrequentialResult:
    """Test-then-train ``model`` on ``stream`` (see the module docstring for what is measured).

    ``total`` (the stream's length, when known) spaces the memory probes and sizes the progress bar.
    """
    return prequential_side_by_side({description: model}, stream, window=window, memory_probes=memory_probes,
                                    total=total, progress=progress, description=description)[description]
