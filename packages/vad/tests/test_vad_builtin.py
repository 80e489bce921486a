"""The built-in data set (real vtest.avi footage + injected anomalies) on a small motion-only plan."""

from __future__ import annotations

import json

import numpy as np
import pytest

from moe_zoo.vad.builtin import (
    BuiltinConfig,
    build,
    clip_specs,
    footage_frames,
    load_builtin,
    plan_clips,
    render_clip,
)
from moe_zoo.vad.data import NORMAL, load_features_list
from moe_zoo.vad.features import FeatureConfig, MobileNetMotionExtractor
from moe_zoo.vad.synthesis import ANOMALY_CLASSES

SMALL = BuiltinConfig(clip_len=32, train_normal=2, train_per_class=1, test_normal=2, test_per_class=1,
                      features=FeatureConfig(use_cnn=False))


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    return build(SMALL, root=tmp_path_factory.mktemp("builtin") / "small", progress=False)


def test_plan_is_reproducible_and_splits_do_not_overlap():
    specs = plan_clips(SMALL)
    assert specs == plan_clips(SMALL)
    for spec in specs:
        lo, hi = SMALL.train_frames if spec.split == "train" else SMALL.test_frames
        assert lo <= spec.start and spec.start + SMALL.clip_len <= hi and spec.start % 8 == 0
    train = [s for s in specs if s.split == "train"]
    assert [s.kind for s in train] == [*ANOMALY_CLASSES, NORMAL, NORMAL]


def test_layout_is_ucf_like_and_readable_by_the_ucf_reader(small_root):
    assert (small_root / "DONE").exists()
    lines = (small_root / "train.list").read_text().split()
    assert lines[0].startswith("train/") and lines[0].endswith(".npy") and len(lines) == 7
    data = load_features_list(small_root / "test.list", gt=small_root / "gt-test.npy", snippet_len=8)
    builtin = load_builtin("test", SMALL, root=small_root)
    assert [v.name for v in data] == [v.name for v in builtin]
    for a, b in zip(data, builtin):
        np.testing.assert_array_equal(a.frame_labels, b.frame_labels)
        np.testing.assert_array_equal(a.load(), b.load())
    assert builtin.anomaly_classes == tuple(sorted(ANOMALY_CLASSES))


def test_features_equal_extraction_from_the_rendered_clip(small_root):
    """Only event snippets are re-extracted when building; that must equal extracting the whole clip."""
    meta = json.loads((small_root / "clips.json").read_text())
    train = load_builtin("train", SMALL, root=small_root)
    plan = clip_specs(SMALL, root=small_root)
    specs = {c["name"]: c for c in meta["clips"]}
    footage, _ = footage_frames(max(plan[v.name].start for v in train.videos))
    extractor = MobileNetMotionExtractor(SMALL.features)
    for video in train.videos[:2] + train.videos[-1:]:
        spec = plan[video.name]
        frames, labels, _ = render_clip(spec, SMALL)
        previous = footage[spec.start - 1] if spec.start else None
        if previous is not None and spec.flip:
            previous = previous[:, ::-1]
        np.testing.assert_allclose(video.load(), extractor.extract(frames, previous), atol=1e-4)
        np.testing.assert_array_equal(video.frame_labels, labels)
        assert video.label == int(specs[video.name]["event"] is not None) == int(labels.any())
