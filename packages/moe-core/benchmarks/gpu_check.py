"""moe-core's prepared check on a CUDA machine (``make gpu-check``): tests, bf16 benchmark, domain
training steps; writes report.md + report.json to ``--out``. Refuses without CUDA (exit 2).
See :mod:`moe_zoo.core.gpu_check` and the package README."""

import sys

from moe_zoo.core.gpu_check import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
