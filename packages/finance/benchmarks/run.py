"""`make bench-finance`: MIGA vs baselines on the built-in data (see moe_zoo.finance.benchmark)."""

import sys

from moe_zoo.core import setup_logging
from moe_zoo.finance.benchmark import main

if __name__ == "__main__":
    setup_logging("INFO")
    sys.exit(main(sys.argv[1:]))
