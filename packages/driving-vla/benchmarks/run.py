"""``make bench-driving-vla``: DriveMoE vs its baselines in closed loop; writes BENCHMARKS.md.

See ``moe_zoo.driving.benchmark`` for what runs; ``--report-only`` re-renders from results.json.
"""

import sys

from moe_zoo.driving.benchmark import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
