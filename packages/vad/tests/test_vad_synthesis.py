"""Injected anomalies: every class changes real frames, and the labels are exactly those frames."""

from __future__ import annotations

import numpy as np
import pytest

from moe_zoo.core import InputError
from moe_zoo.vad.synthesis import ALL_CLASSES, AnomalyEvent, render, sample_event


@pytest.fixture(scope="module")
def frames(vtest_frames):
    return np.ascontiguousarray(vtest_frames[0][:, ::2, ::2])      # 48 real frames, 384x288


@pytest.mark.parametrize("kind", ALL_CLASSES)
def test_labels_are_exactly_the_changed_frames(frames, kind):
    event = sample_event(kind, len(frames), 10.0, np.random.default_rng(3), margin=4)
    out, labels = render(frames, event)
    changed = (out != frames).any(axis=(1, 2, 3))
    np.testing.assert_array_equal(labels.astype(bool), changed)
    assert labels.sum() >= 2 and labels[:event.start].sum() == 0 and labels[event.end:].sum() == 0
    again, _ = render(frames, event)
    np.testing.assert_array_equal(out, again)                   # reproducible from the event seed


def test_class_signatures(frames):
    flash, _ = render(frames, AnomalyEvent("flash", 10, 20, seed=0))
    assert flash[10:20].mean() > frames[10:20].mean() + 20
    obj, _ = render(frames, AnomalyEvent("abandoned_object", 10, 30, seed=0))
    moved = (obj[10:30] != frames[10:30]).any(-1)               # [t, h, w] pixels changed
    assert (moved == moved[0]).all() and 0.002 < moved[0].mean() < 0.05   # one small object, in place
    shake, _ = render(frames, AnomalyEvent("camera_shake", 10, 20, seed=0))
    assert (shake[10:20] != frames[10:20]).any(-1).mean() > 0.5    # the whole picture moves


def test_camera_tampering_signatures(frames):
    frozen, labels = render(frames, AnomalyEvent("freeze", 10, 30, seed=0))
    assert (frozen[10:30] == frames[10]).all() and labels[10] == 0 and labels[11:30].all()
    covered, _ = render(frames, AnomalyEvent("occlusion", 10, 30, seed=0))
    hidden = (covered[10:30] != frames[10:30]).any(-1)
    assert (hidden == hidden[0]).all() and 0.2 < hidden[0].mean() < 0.85      # a large patch that stays
    blurred, _ = render(frames, AnomalyEvent("defocus", 10, 30, seed=0))

    def detail(x):  # mean absolute horizontal gradient: high frequencies
        return np.abs(np.diff(x.astype(np.float32), axis=2)).mean()
    assert detail(blurred[25:30]) < 0.6 * detail(frames[25:30])
    turned, _ = render(frames, AnomalyEvent("repoint", 10, 30, seed=0))
    assert (turned[10:30] != frames[10:30]).any(-1).mean() > 0.5 and (turned[:10] == frames[:10]).all()


def test_events_are_validated(frames):
    with pytest.raises(InputError, match="unknown anomaly class"):
        AnomalyEvent("explosion", 0, 5, 0)
    with pytest.raises(InputError, match="start < end"):
        AnomalyEvent("flash", 5, 5, 0)
    with pytest.raises(InputError, match="but the clip has 48 frames"):
        render(frames, AnomalyEvent("flash", 40, 60, 0))
