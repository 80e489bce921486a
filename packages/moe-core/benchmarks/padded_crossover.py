"""Where the padded backend stops paying: % of dense speed of each moe-core backend by batch size.

(T, d=512, f=1024, E=8, k=2) for T = 32 ... 1024, fwd and fwd+bwd, 5 interleaved repeats per size
with ``measure()`` (the benchmark's timing, no peers), 2 threads.

``uv run --locked --no-sync python packages/moe-core/benchmarks/padded_crossover.py`` (about 2 minutes)
"""

import torch

from moe_zoo.core.benchmark import Shape, measure


def main() -> None:
    torch.set_num_threads(2)
    print("tokens | backend: fwd % / fwd+bwd % of dense")
    for tokens in (32, 64, 128, 256, 1024):
        result = measure(Shape(tokens, 512, 1024, 8, 2), repeats=5, peers=False)
        cells = [f"{name.removeprefix('moe-core ')} {t['fwd %']:.0f} / {t['fwd+bwd %']:.0f}"
                 for name, t in result.items() if name.startswith("moe-core")]
        print(f"{tokens} | " + ", ".join(cells), flush=True)


if __name__ == "__main__":
    main()
