"""``make bench-audio``: the UniMoE-Audio benchmark, writes ../BENCHMARKS.md and, in this folder,
figures/, examples/, records/; re-renders the README's results block. Options: ``--help``; the code is ``moe_zoo.audio.benchmark``."""

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from moe_zoo.audio.benchmark import main

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    sys.exit(main(["--out", str(here), "--report", str(here.parent / "BENCHMARKS.md"),
                   "--readme", str(here.parent / "README.md"), *sys.argv[1:]]))
