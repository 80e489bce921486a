"""`make bench-recsys`: HoME vs MMoE / PLE / shared-bottom (see moe_zoo.recsys.benchmark)."""

import sys

from moe_zoo.core import setup_logging
from moe_zoo.recsys.benchmark import main

if __name__ == "__main__":
    setup_logging("INFO")
    sys.exit(main(sys.argv[1:]))
