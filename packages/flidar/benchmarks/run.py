"""`make bench-flidar`: EvidenceMoE vs its baselines; writes packages/flidar/BENCHMARKS.md and figures."""

import sys

from moe_zoo.flidar.benchmark import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
