"""`make bench-streams`: DriftMoE vs river's adaptive ensembles (see moe_zoo.streams.benchmark)."""

import sys

from moe_zoo.core import setup_logging
from moe_zoo.streams.benchmark import main

if __name__ == "__main__":
    setup_logging("INFO")
    sys.exit(main(sys.argv[1:]))
