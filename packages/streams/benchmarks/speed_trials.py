"""DriftMoE+ settings against ARF(10), side by side in one process: accuracy and throughput ratio.

``python packages/streams/benchmarks/speed_trials.py [--streams led_a:3000 ...] [--seeds 0]`` runs
ARF(10) and each setting of :data:`SETTINGS` interleaved on the same instances (so the machine's
other jobs slow them alike) and writes ``benchmarks/results/speed_trials.md``: prequential accuracy
and throughput relative to ARF (instances per CPU second of each model's own calls). It is the
evidence behind DriftMoE+'s default number of experts and features (README, "Speed"); the
``river-splitter`` setting is the previous default with river's own Gaussian splitter, i.e. what
:class:`~moe_zoo.streams.splitter.FastGaussianSplitter` saves.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from river.tree.splitter import GaussianSplitter

from moe_zoo.core.reporting import (
    format_mean_std,
    hardware_summary,
    markdown_table,
    write_text_atomic,
)
from moe_zoo.streams import DriftMoEClassifier, make_stream
from moe_zoo.streams.baselines import make_model
from moe_zoo.streams.evaluate import prequential_side_by_side

OUT = Path(__file__).resolve().parent / "results" / "speed_trials.md"
PREVIOUS = {"n_experts": 12, "max_features": "sqrt"}  # the default before this comparison
SETTINGS: dict[str, dict] = {
    "12 sqrt, river splitter": PREVIOUS | {"river_splitter": True},
    "12 sqrt": PREVIOUS,
    "10 all (default)": {},
    "6 all": {"n_experts": 6},
    "6 sqrt": {"n_experts": 6, "max_features": "sqrt"},
    "5 sqrt (lite)": {"n_experts": 5, "max_features": "sqrt"},
}


class _RiverSplitter(DriftMoEClassifier):
    """DriftMoE+ whose trees use river's ``GaussianSplitter`` (the speed before FastGaussianSplitter)."""

    def _expert_factory(self, n_features):
        factory = super()._expert_factory(n_features)

        def make():
            expert = factory()
            expert.splitter = GaussianSplitter()  # leaves clone the tree's splitter for each feature
            return expert

        return make


def _model(setting: dict, seed: int) -> DriftMoEClassifier:
    kwargs = {k: v for k, v in setting.items() if k != "river_splitter"}
    cls = _RiverSplitter if setting.get("river_splitter") else DriftMoEClassifier
    return cls(variant="plus", seed=seed, **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", nargs="+", default=["led_a:3000", "rbf_f:3000", "agr_a:3000", "sea_a:3000"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    began = time.perf_counter()
    cells: dict[tuple[str, str], list[tuple[float, float]]] = {}
    arf_acc: dict[str, list[float]] = {}
    for item in args.streams:
        stream, n = item.split(":")
        for seed in args.seeds:
            models = {"arf": make_model("arf", seed)} | {name: _model(s, seed) for name, s in SETTINGS.items()}
            results = prequential_side_by_side(models, make_stream(stream, length=int(n), seed=seed),
                                               window=max(1, int(n) // 20))
            arf = results.pop("arf")
            arf_acc.setdefault(item, []).append(100 * arf.accuracy)
            for name, r in results.items():
                cells.setdefault((item, name), []).append((100 * r.accuracy, r.throughput / arf.throughput))
            print(item, seed, {k: (round(100 * r.accuracy, 2), round(r.throughput / arf.throughput, 2))
                               for k, r in results.items()}, flush=True)
    rows = [[item, format_mean_std(arf_acc[item], 2),
             *[f"{format_mean_std([a for a, _ in cells[item, name]], 2)} / "
               f"{format_mean_std([s for _, s in cells[item, name]], 2)}x" for name in SETTINGS]] for item in args.streams]
    text = (f"DriftMoE+ settings side by side with ARF(10) in one process: accuracy % / throughput relative to ARF, "
            f"seeds {', '.join(map(str, args.seeds))} (`python packages/streams/benchmarks/speed_trials.py "
            f"{' '.join(sys.argv[1:])}`; {hardware_summary()}; {time.perf_counter() - began:.0f} s wall on a shared "
            f"machine; {time.strftime('%Y-%m-%d')}):\n\n"
            + markdown_table(["stream:instances", "arf accuracy %", *SETTINGS], rows) + "\n")
    write_text_atomic(OUT, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
