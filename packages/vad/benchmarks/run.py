"""`make bench-vad`: GS-MoE vs its baselines and ablations; writes packages/vad/BENCHMARKS.md and plots."""

import sys

from moe_zoo.vad.benchmark import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
