"""Predict throughput of the shipped detector at 224x224, 1 and 2 threads (see moe_zoo.aigi.speed);
writes benchmarks/results/speed-standalone.json and prints a table.

    uv run --locked --no-sync python packages/aigi-detect/benchmarks/speed.py [--threads 1 2]
"""

import argparse
import json
from pathlib import Path

from moe_zoo.aigi.speed import measure
from moe_zoo.core import create_model
from moe_zoo.core.reporting import hardware_summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "speed-standalone.json"))
    args = parser.parse_args()
    model = create_model("omniaid-mnv2", pretrained=True, image_size=224)      # shipped weights, 224 px input
    record = measure(model, tuple(args.threads), repeats=args.repeats)
    record["hardware"] = hardware_summary()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1))
    for threads, row in record["threads"].items():
        for name, rate in row.items():
            print(f"{threads} thread(s)  {name:45s} {rate:7.1f} images/s")
    print(f"load average before {record['load_before']}, after {record['load_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
