"""`make bench-finance`: MIGA vs baselines on the built-in data (see moe_zoo.finance.benchmark)."""

import sys

from moe_zoo.finance.benchmark import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
