"""Regenerate packages/moe-core/BENCHMARKS.md (``make bench-moe-core``; ``--quick`` for a smoke run)."""

import sys

from moe_zoo.core.benchmark import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
