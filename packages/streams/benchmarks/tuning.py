"""DriftMoE+ settings against ARF(10) on tuning seeds (not the benchmark's 0-2), side by side.

``python packages/streams/benchmarks/tuning.py STREAM[:N],... SEED,... '{"name": {kwargs}, ...}'``
runs each DriftMoE+ setting (``DriftMoEClassifier(variant="plus", seed=seed, **kwargs)``) and
ARF(10) interleaved in one process on the same instances (so the machine's other jobs slow them
alike) and prints one JSON line per (stream, seed): prequential accuracy (%) and throughput
relative to ARF. The records under ``benchmarks/results/tuning/`` are its output; the README's
choice of 10 experts was made on seeds 10 and 11 with it, so the benchmark's seeds 0-2 were not
used to choose it.
"""

from __future__ import annotations

import json
import sys
import time

import torch

from moe_zoo.streams import DriftMoEClassifier, make_stream
from moe_zoo.streams.baselines import make_model
from moe_zoo.streams.evaluate import prequential_side_by_side
from moe_zoo.streams.router import warm_up


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__)
        return 2
    torch.set_num_threads(1)
    warm_up()
    items, seeds, configs = argv[0].split(","), [int(s) for s in argv[1].split(",")], json.loads(argv[2])
    if not isinstance(configs, dict) or "arf" in configs or not all(isinstance(kw, dict) for kw in configs.values()):
        print("settings: a JSON object of {name: {DriftMoEClassifier kwargs}}; 'arf' is the baseline's name")
        return 2
    for seed in seeds:
        for item in items:
            stream, _, n = item.partition(":")
            data = make_stream(stream, length=int(n) if n else None, seed=seed)
            models = {name: DriftMoEClassifier(variant="plus", seed=seed, **kw) for name, kw in configs.items()}
            models["arf"] = make_model("arf", seed)
            began = time.time()
            results = prequential_side_by_side(models, data, window=max(25, len(data) // 40))
            arf = results["arf"].throughput
            print(json.dumps({"stream": stream, "n": len(data), "seed": seed, "wall": round(time.time() - began),
                              "acc": {k: round(100 * r.accuracy, 2) for k, r in results.items()},
                              "speed": {k: round(r.throughput / arf, 2) for k, r in results.items()}}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
