"""``make bench-nerf``: Switch-NeRF++ vs baselines on the built-in scene; writes packages/nerf/BENCHMARKS.md."""

import sys

from moe_zoo.nerf.benchmark import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
