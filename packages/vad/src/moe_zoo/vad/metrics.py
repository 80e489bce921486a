"""Frame-level metrics of weakly-supervised video anomaly detection (scikit-learn).

* ``auc``: ROC-AUC over the frames of all test videos concatenated (UCF-Crime protocol).
* ``ap``: average precision over the same frames (XD-Violence protocol; sklearn's step-wise AP,
  where UR-DMU's script integrates the PR curve with trapezoids).
* ``auc_abnormal``: ROC-AUC over the frames of the anomalous videos only (AUC_A in GS-MoE): the
  anomalous frames against the normal frames around them.
* ``auc_vs_normal_videos``: ROC-AUC of the anomalous frames against the frames of the normal
  videos only (false alarms on normal footage). With ``auc_abnormal`` it splits the errors of ``auc``.
* ``auc_<class>``: ROC-AUC over the frames of the videos of that class together with all normal
  videos (how well that class's anomalies stand out from normal footage).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from moe_zoo.core import InputError
from moe_zoo.vad.data import NORMAL, VideoFeatures


def frame_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC of frame scores against 0/1 frame labels (NaN when only one class is present)."""
    labels = np.asarray(labels)
    return float(roc_auc_score(labels, scores)) if 0 < labels.sum() < len(labels) else float("nan")


def frame_metrics(frame_scores: Sequence[np.ndarray], videos: Sequence[VideoFeatures]) -> dict[str, float]:
    """All metrics for per-video frame scores aligned with ``videos`` (which need ``frame_labels``)."""
    if len(frame_scores) != len(videos):
        raise InputError(f"{len(frame_scores)} score arrays for {len(videos)} videos")
    labels = []
    for video, scores in zip(videos, frame_scores):
        if video.frame_labels is None:
            raise InputError(f"video {video.name!r} has no frame labels; evaluation needs test ground truth")
        if len(video.frame_labels) != len(scores):
            raise InputError(f"video {video.name!r}: {len(scores)} frame scores for {len(video.frame_labels)} labels")
        labels.append(np.asarray(video.frame_labels))
    all_scores, all_labels = np.concatenate(frame_scores), np.concatenate(labels)
    if not 0 < all_labels.sum() < len(all_labels):
        raise InputError("frame-level AUC needs both anomalous and normal frames in the test set")
    abnormal = [i for i, v in enumerate(videos) if v.label]
    normal = [i for i, v in enumerate(videos) if not v.label]
    result = {
        "auc": frame_auc(all_labels, all_scores),
        "ap": float(average_precision_score(all_labels, all_scores)),
        "auc_abnormal": frame_auc(np.concatenate([labels[i] for i in abnormal]),
                             np.concatenate([frame_scores[i] for i in abnormal])) if abnormal else float("nan"),
    }
    if abnormal and normal:
        positive = np.concatenate([frame_scores[i][labels[i] == 1] for i in abnormal])
        negative = np.concatenate([frame_scores[i] for i in normal])
        result["auc_vs_normal_videos"] = frame_auc(np.r_[np.ones(len(positive)), np.zeros(len(negative))],
                                                   np.r_[positive, negative])
    else:
        result["auc_vs_normal_videos"] = float("nan")
    classes = sorted({c for v in videos for c in v.classes if c != NORMAL})
    for cls in classes:
        keep = [i for i, v in enumerate(videos) if cls in v.classes] + normal
        result[f"auc_{cls}"] = frame_auc(np.concatenate([labels[i] for i in keep]),
                                    np.concatenate([frame_scores[i] for i in keep]))
    return result
