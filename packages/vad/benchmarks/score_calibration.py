"""How the shipped model's snippet scores sit against ``predict``'s default threshold of 0.5.

For the built-in training and test splits: quantiles of the scores of normal clips, of the event
snippets of anomalous clips and of their other snippets, and, per threshold, the share of each
group at or above it (normal snippets flagged, event snippets found, snippets next to events
flagged).

``uv run --locked --no-sync python packages/vad/benchmarks/score_calibration.py`` (about 30 s)
"""

import numpy as np
import torch

from moe_zoo.vad.builtin import load_builtin
from moe_zoo.vad.predict import load_default_model
from moe_zoo.vad.train import snippet_scores

THRESHOLDS = (0.5, 0.7, 0.8, 0.9)


def main() -> None:
    torch.set_num_threads(2)
    model = load_default_model("cpu")
    for split in ("train", "test"):
        data = load_builtin(split, progress=False)
        groups: dict[str, list[np.ndarray]] = {"normal clips": [], "event snippets": [], "other snippets of anomalous clips": []}
        for video in data.videos:
            scores = snippet_scores(model, video.load(), device="cpu")
            if video.label == 0:
                groups["normal clips"].append(scores)
                continue
            event = video.frame_labels[:len(scores) * data.snippet_len].reshape(len(scores), -1).max(1) == 1
            groups["event snippets"].append(scores[event])
            groups["other snippets of anomalous clips"].append(scores[~event])
        print(f"\n{split} split (shipped weights)")
        for name, parts in groups.items():
            values = np.concatenate(parts)
            quantiles = ", ".join(f"q{int(100 * q)} {v:.3f}" for q, v in zip((0.1, 0.5, 0.9, 0.99), np.quantile(values, (0.1, 0.5, 0.9, 0.99))))
            shares = ", ".join(f">= {t}: {np.mean(values >= t):.3f}" for t in THRESHOLDS)
            print(f"  {name} ({len(values)} snippets): {quantiles}; share {shares}")


if __name__ == "__main__":
    main()
