"""Where does the paper's fusion gate move the score? Trains GS-MoE with ``gate_fusion=True`` on the
built-in training split and prints, over the test split, the mean and std of its correction
``logit(y_t) - logit(m_t)`` (final score against the soft mixture of the experts) on normal clips,
on the anomalous snippets and on the normal snippets of anomalous clips, next to the frame AUC of
``y`` and of ``m``.

``uv run --locked --no-sync python packages/vad/benchmarks/fusion_correction.py [--seed 1]``
"""

import argparse

import numpy as np
import torch

from moe_zoo.vad.builtin import load_builtin
from moe_zoo.vad.metrics import frame_metrics
from moe_zoo.vad.train import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train_set, test = load_builtin("train", progress=False), load_builtin("test", progress=False)
    model = train(train_set, TrainConfig(variant="gsmoe-fusion", seed=args.seed), progress=False).model
    groups: dict[str, list[np.ndarray]] = {"normal clips": [], "anomalous snippets": [],
                                           "normal snippets of anomalous clips": []}
    final, mixture = [], []
    for video in test.videos:
        with torch.inference_mode():
            out = model(torch.from_numpy(video.load())[None])
        m = (out.gate_weights[0] * out.expert_scores[0].T).sum(-1).clamp(1e-4, 1 - 1e-4)
        y = out.scores[0].clamp(1e-6, 1 - 1e-6)
        correction = (torch.logit(y) - torch.logit(m)).numpy()
        final.append(np.repeat(y.numpy(), test.snippet_len))
        mixture.append(np.repeat(m.numpy(), test.snippet_len))
        if not video.label:
            groups["normal clips"].append(correction)
            continue
        inside = video.frame_labels.reshape(-1, test.snippet_len).max(1) > 0
        groups["anomalous snippets"].append(correction[inside])
        groups["normal snippets of anomalous clips"].append(correction[~inside])
    print(f"seed {args.seed}: frame AUC of the fused score {frame_metrics(final, test.videos)['auc']:.4f}, "
          f"of the soft mixture {frame_metrics(mixture, test.videos)['auc']:.4f}")
    for name, values in groups.items():
        v = np.concatenate(values)
        print(f"correction on {name}: {v.mean():+.2f} ± {v.std():.2f} logits ({len(v)} snippets)")


if __name__ == "__main__":
    main()
