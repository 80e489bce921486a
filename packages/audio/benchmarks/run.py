"""``make bench-audio``: the UniMoE-Audio benchmark, written into this folder (BENCHMARKS.md,
figures/, examples/, records/). Options: ``--help``; the code is ``moe_zoo.audio.benchmark``."""

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from moe_zoo.audio.benchmark import main

if __name__ == "__main__":
    sys.exit(main(["--out", str(Path(__file__).resolve().parent), *sys.argv[1:]]))
