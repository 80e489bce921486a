"""Frame metrics on a hand-made test set whose AUCs can be counted by hand."""

import numpy as np
import pytest

from moe_zoo.core import InputError
from moe_zoo.vad.data import VideoFeatures
from moe_zoo.vad.metrics import frame_metrics


def _videos():
    return [
        VideoFeatures("shake", label=1, classes=("shake",), frame_labels=np.array([0, 1, 1, 0])),
        VideoFeatures("flash", label=1, classes=("flash",), frame_labels=np.array([1, 0])),
        VideoFeatures("normal", frame_labels=np.array([0, 0, 0])),
    ]


def test_frame_metrics_split_the_errors_between_normal_videos_and_the_background_of_anomalies():
    scores = [np.array([0.5, 0.9, 0.7, 0.1]), np.array([0.6, 0.8]), np.array([0.2, 0.65, 0.3])]
    m = frame_metrics(scores, _videos())
    # anomalous frames 0.9, 0.7, 0.6; background of anomalous videos 0.5, 0.1, 0.8
    # pairs won: 0.9 beats 3, 0.7 beats 2, 0.6 beats 2 -> 7 / 9
    assert m["auc_abnormal"] == pytest.approx(7 / 9)
    # against the normal video 0.2, 0.65, 0.3: 0.9 -> 3, 0.7 -> 3, 0.6 -> 2 -> 8 / 9
    assert m["auc_vs_normal_videos"] == pytest.approx(8 / 9)
    # all six negatives: 0.9 -> 6, 0.7 -> 5, 0.6 -> 4 -> 15 / 18
    assert m["auc"] == pytest.approx(15 / 18)
    # class "flash": its anomalous frame 0.6 vs 0.8 and the normal video -> 2 / 4
    assert m["auc_flash"] == pytest.approx(2 / 4)
    # class "shake": 0.9 and 0.7 beat its background 0.5, 0.1 and the normal video -> 10 / 10
    assert m["auc_shake"] == pytest.approx(1.0)


def test_frame_metrics_reject_misaligned_scores():
    with pytest.raises(InputError, match="frame scores"):
        frame_metrics([np.zeros(3), np.zeros(2), np.zeros(3)], _videos())
