"""``moe-zoo streams demo``: DriftMoE against ARF and a Hoeffding tree on a short drifting SEA
stream, in plain words, with the accuracy dip and recovery around each drift."""

from __future__ import annotations

import time

from moe_zoo.core import InputError
from moe_zoo.streams.baselines import describe, make_model
from moe_zoo.streams.data import get_stream_spec
from moe_zoo.streams.evaluate import PrequentialResult, prequential

DEMO_MODELS = ("driftmoe-plus", "driftmoe-data", "driftmoe-task", "arf", "ht")
MIN_LENGTH = 100  # the report compares accuracy windows before and after each drift


def _around(result: PrequentialResult, position: int) -> tuple[float, float]:
    """Windowed accuracy just before a drift and two windows after it."""
    index = position // result.window
    before = result.curve[max(0, index - 1)]
    after = result.curve[min(len(result.curve) - 1, index + 1)]
    return before, after


def run_demo(stream: str = "sea_a", length: int = 4000, seed: int = 0, models: tuple[str, ...] = DEMO_MODELS) -> str:
    """Prequential runs of ``models`` on ``length`` instances of ``stream``; a text report."""
    if not isinstance(length, int) or length < MIN_LENGTH:
        raise InputError(f"demo: length must be an integer >= {MIN_LENGTH}, got {length!r}")
    if not isinstance(seed, int) or seed < 0:
        raise InputError(f"demo: seed must be an integer >= 0, got {seed!r}")
    began = time.perf_counter()
    spec = get_stream_spec(stream)
    drifts = spec.drift_positions(length)
    window = max(10, length // 30)
    results = {m: prequential(make_model(m, seed), spec.build(length, seed), window=window, total=length)
               for m in models}
    lines = [f"stream {stream}: {spec.description}",
             f"{length:,} instances (the paper: 1M), drifts centred at {', '.join(f'{p:,}' for p in drifts) or '-'}; "
             f"test-then-train, seed {seed}",
             "",
             f"{'model':<15} {'accuracy':>8} {'kappa':>7} {'kappa_m':>8} {'kappa_t':>8} {'inst/s':>8} {'router':>7}"]
    for name, r in results.items():
        share = "" if r.router_share is None else f"{100 * r.router_share:6.1f}%"
        lines.append(f"{name:<15} {100 * r.accuracy:7.2f}% {100 * r.kappa:6.1f}% {100 * r.kappa_m:7.1f}% "
                     f"{100 * r.kappa_t:7.1f}% {r.throughput:8.0f} {share:>7}")
    if drifts:
        lines += ["", f"windowed accuracy ({window} instances) just before -> just after each drift:"]
        for name, r in results.items():
            cells = [f"{100 * b:.0f}->{100 * a:.0f}" for b, a in (_around(r, p) for p in drifts)]
            lines.append(f"  {name:<15} " + "   ".join(cells) + f"   (end: {100 * r.curve[-1]:.0f}%)")
    lines += ["", *(f"  {m}: {describe(m)}" for m in models),
              f"({time.perf_counter() - began:.0f} s on CPU; throughput measured on this machine as it is)"]
    return "\n".join(lines)
