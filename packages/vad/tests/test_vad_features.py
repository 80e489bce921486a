"""Snippet features: MobileNetV2 ImageNet weights, motion statistics, streaming extraction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moe_zoo.core import InputError
from moe_zoo.vad.features import (
    MOTION_DIM,
    FeatureConfig,
    MobileNetMotionExtractor,
    _phase_shift,
    extract_stream,
)
from moe_zoo.vad.synthesis import AnomalyEvent, render

MOTION_ONLY = FeatureConfig(use_cnn=False)
# motion feature columns (see motion_features' docstring)
DIFF_MEAN, SHIFT_MEAN, BRIGHT_STEP_MAX = 0, 3, 7


def test_phase_correlation_recovers_a_translation():
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((72, 96))).float()
    image = torch.nn.functional.avg_pool2d(image[None, None], 3, 1, 1)[0, 0]   # some spatial structure
    shifted = torch.roll(image, shifts=(3, 4), dims=(0, 1))
    assert _phase_shift(shifted[None], image[None]).item() == pytest.approx(5.0)
    assert _phase_shift(image[None], image[None]).item() == 0.0


def _downscaled(frames):
    return np.ascontiguousarray(frames[:, ::2, ::2])        # 384x288, as predict decodes


def test_motion_features_respond_to_shake_and_flash(vtest_frames):
    frames = _downscaled(vtest_frames[0][:32])
    extractor = MobileNetMotionExtractor(MOTION_ONLY)
    base = extractor.extract(frames)
    assert base.shape == (4, MOTION_DIM) and np.isfinite(base).all()
    shaken, _ = render(frames, AnomalyEvent("camera_shake", 8, 16, seed=1))
    flashed, _ = render(frames, AnomalyEvent("flash", 8, 16, seed=1))
    shake, flash = extractor.extract(shaken), extractor.extract(flashed)
    assert shake[1, SHIFT_MEAN] > 3 * base[1, SHIFT_MEAN] + 0.2
    assert flash[1, BRIGHT_STEP_MAX] > 5 * base[1, BRIGHT_STEP_MAX] + 0.5
    np.testing.assert_allclose(shake[3], base[3], atol=1e-5)       # untouched snippets are unchanged


def test_streaming_in_chunks_equals_one_pass(vtest_frames):
    frames = _downscaled(vtest_frames[0][:44])                        # 5.5 snippets: padded tail
    extractor = MobileNetMotionExtractor(MOTION_ONLY)
    streamed, n = extract_stream(iter(frames), extractor, chunk_snippets=2)
    padded = np.concatenate([frames, frames[[42, 41, 40, 39]]])      # mirrored, no repeated frame
    assert n == 44 and streamed.shape == (6, MOTION_DIM)
    np.testing.assert_allclose(streamed, extractor.extract(padded), atol=1e-5)


def test_repeated_frame_share_tells_a_frozen_feed_from_a_still_scene(vtest_frames):
    """The repeated-frame column (``repeat_feature``): 1 on a frozen snippet, 0 on live footage, and
    the padding of a partial last snippet repeats no frame."""
    frames = _downscaled(vtest_frames[0][:32])
    frozen, _ = render(frames, AnomalyEvent("freeze", 8, 24, seed=1))
    extractor = MobileNetMotionExtractor(FeatureConfig(use_cnn=False, repeat_feature=True))
    assert extractor.dim == MOTION_DIM + 1 and FeatureConfig(repeat_feature=True).dim == 1280 + MOTION_DIM + 1
    live, still = extractor.extract(frames)[:, -1], extractor.extract(frozen)[:, -1]
    np.testing.assert_array_equal(live, 0.0)
    np.testing.assert_array_equal(still, [0.0, 1.0, 1.0, 0.0])      # frames 8-23 repeat frame 8
    np.testing.assert_array_equal(extractor.extract(frames)[:, :-1], MobileNetMotionExtractor(MOTION_ONLY).extract(frames))
    tail, _ = extract_stream(iter(frames[:27]), extractor)            # 3 frames + 5 of padding
    assert tail[-1, -1] == 0.0
    assert extract_stream(iter(frames[:1]), extractor)[0][0, -1] == 1.0   # one frame: only repeats


def test_extractor_input_errors():
    extractor = MobileNetMotionExtractor(MOTION_ONLY)
    with pytest.raises(InputError, match="multiple of snippet_len=8"):
        extractor.extract(np.zeros((5, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(InputError, match="uint8"):
        extractor.extract(np.zeros((8, 32, 32, 3), dtype=np.float32))
    with pytest.raises(InputError, match="no frames"):
        extract_stream(iter([]), extractor)
    with pytest.raises(InputError, match="frames_per_snippet"):
        MobileNetMotionExtractor(FeatureConfig(use_cnn=False, frames_per_snippet=9))


def test_cnn_features_are_pooled_relu6(vtest_frames):
    """With the CNN on, each snippet gets MobileNetV2's pooled [1280] (ReLU6, so >= 0) plus motion."""
    extractor = MobileNetMotionExtractor(FeatureConfig())
    features = extractor.extract(_downscaled(vtest_frames[0][:16]))
    assert features.shape == (2, 1280 + MOTION_DIM) and (features[:, :1280] >= 0).all()   # ReLU6 pooled
