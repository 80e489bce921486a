"""How the shipped model's snippet scores sit against ``predict``'s default threshold of 0.5.

For the built-in training and test splits: quantiles of the scores of normal clips, of the event
snippets of anomalous clips and of their other snippets, and, per threshold, the share of each
group at or above it (normal snippets flagged, event snippets found, snippets next to events
flagged).

``uv run --locked --no-sync python packages/vad/benchmarks/score_calibration.py [--mil]`` (about
30 s; ``--mil`` also trains the MIL baseline with seed 0, about 40 s more, and reports it the same way)
"""

import argparse

import numpy as np
import torch

from moe_zoo.vad.builtin import load_builtin
from moe_zoo.vad.predict import load_default_model
from moe_zoo.vad.train import TrainConfig, snippet_scores, train

THRESHOLDS = (0.5, 0.7, 0.8, 0.9)


def report(label: str, model: torch.nn.Module, variant: str) -> None:
    for split in ("train", "test"):
        data = load_builtin(split, progress=False)
        groups: dict[str, list[np.ndarray]] = {"normal clips": [], "event snippets": [], "other snippets of anomalous clips": []}
        for video in data.videos:
            scores = snippet_scores(model, video.load(), variant=variant, device="cpu")
            if video.label == 0:
                groups["normal clips"].append(scores)
                continue
            event = video.frame_labels[:len(scores) * data.snippet_len].reshape(len(scores), -1).max(1) == 1
            groups["event snippets"].append(scores[event])
            groups["other snippets of anomalous clips"].append(scores[~event])
        print(f"\n{split} split ({label})")
        for name, parts in groups.items():
            values = np.concatenate(parts)
            quantiles = ", ".join(f"q{int(100 * q)} {v:.3f}" for q, v in zip((0.1, 0.5, 0.9, 0.99), np.quantile(values, (0.1, 0.5, 0.9, 0.99))))
            shares = ", ".join(f">= {t}: {np.mean(values >= t):.3f}" for t in THRESHOLDS)
            print(f"  {name} ({len(values)} snippets): {quantiles}; share {shares}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mil", action="store_true", help="also the MIL baseline (trained here, seed 0)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    report("GS-MoE, shipped weights", load_default_model("cpu"), "gsmoe")
    if args.mil:
        mil = train(load_builtin("train", progress=False), TrainConfig(variant="mil", seed=0), progress=False).model
        report("MIL ranking, seed 0", mil, "mil")


if __name__ == "__main__":
    main()
