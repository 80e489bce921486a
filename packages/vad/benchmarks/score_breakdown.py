"""Which normal frames a detector confuses with the events: GS-MoE (with or without UR-DMU's
self-attention in the task encoder) against the MIL baseline on the built-in test split.

The normal frames are split into groups: those within two snippets (16 frames) before or after an
event of each class, the rest of the anomalous clips, and the normal clips' frames 672-711 of
``vtest.avi`` (a pedestrian close to the camera; every normal test clip contains them) against the
rest. For each group: its mean frame score and the ROC-AUC of all anomalous test frames against it
(1 = every event frame scores above every frame of the group).

``uv run --locked --no-sync python packages/vad/benchmarks/score_breakdown.py [--seed 0]
[--encoder-layers 0 2]`` (about 40 s per model on a free core)
"""

import argparse

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from moe_zoo.vad.builtin import clip_specs, load_builtin
from moe_zoo.vad.evaluate import frame_scores
from moe_zoo.vad.metrics import frame_metrics
from moe_zoo.vad.train import TrainConfig, model_config_for, train

NEAR = 16                  # frames on each side of an event counted as "next to" it
CLOSE_PEDESTRIAN = (672, 712)  # footage frames of the normal test clips' hardest stretch


def groups_of(scores: list[np.ndarray], test) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """All anomalous frames' scores, and the normal frames' scores by group."""
    specs = clip_specs()
    events, groups = [], {}

    def add(name: str, values: np.ndarray) -> None:
        groups.setdefault(name, []).append(values)

    for video, s in zip(test.videos, scores):
        spec, labels = specs[video.name], video.frame_labels.astype(bool)
        if not video.label:
            frame = spec.start + np.arange(len(s))
            close = (frame >= CLOSE_PEDESTRIAN[0]) & (frame < CLOSE_PEDESTRIAN[1])
            add(f"normal clips, frames {CLOSE_PEDESTRIAN[0]}-{CLOSE_PEDESTRIAN[1] - 1}", s[close])
            add("normal clips, other frames", s[~close])
            continue
        events.append(s[labels])
        first, last = np.flatnonzero(labels)[[0, -1]]
        near = np.zeros_like(labels)
        near[max(0, first - NEAR):first] = True
        near[last + 1:last + 1 + NEAR] = True
        add(f"next to {video.classes[0]} events", s[near & ~labels])
        add("rest of the anomalous clips", s[~near & ~labels])
    return np.concatenate(events), {name: np.concatenate(parts) for name, parts in sorted(groups.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encoder-layers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    train_set, test = load_builtin("train", progress=False), load_builtin("test", progress=False)
    models = {f"GS-MoE, {n} self-attention layers": (train(
        train_set, TrainConfig(seed=args.seed), model_config_for(train_set, encoder_layers=n), progress=False).model,
        "gsmoe") for n in args.encoder_layers}
    models["MIL ranking"] = (train(train_set, TrainConfig(variant="mil", seed=args.seed), progress=False).model, "mil")
    for label, (model, variant) in models.items():
        scores = frame_scores(model, test, variant=variant, device="cpu")
        metrics = frame_metrics(scores, test.videos)
        events, groups = groups_of(scores, test)
        print(f"\n{label} (seed {args.seed}): frame ROC-AUC {metrics['auc']:.4f}; "
              f"{len(events)} event frames, mean score {events.mean():.3f}")
        for name, values in groups.items():
            auc = roc_auc_score(np.r_[np.ones(len(events)), np.zeros(len(values))], np.r_[events, values])
            print(f"  {name:45s} {len(values):5d} frames, mean score {values.mean():.3f}, "
                  f"events vs these AUC {auc:.3f}")


if __name__ == "__main__":
    main()
