"""``vad.predict`` on a short real clip with the shipped weights, pluggable extractors, bad videos, CLI."""

from __future__ import annotations

import json
from importlib.resources import files

import numpy as np
import pytest
import torch

from moe_zoo.core import InputError
from moe_zoo.core.cli import main
from moe_zoo.core.video import VideoInputError
from moe_zoo.vad.features import MOTION_DIM, FeatureConfig, MobileNetMotionExtractor
from moe_zoo.vad.model import GSMoE, GSMoEConfig
from moe_zoo.vad.predict import predict
from moe_zoo.vad.synthesis import AnomalyEvent, render

SHIPPED = files("moe_zoo.vad").joinpath("weights/gsmoe_builtin.safetensors")
requires_shipped = pytest.mark.skipif(not SHIPPED.is_file(), reason="shipped weights not built yet")


@requires_shipped
def test_predict_a_real_clip_file_with_the_shipped_weights(short_clip, tmp_path):
    from moe_zoo import vad

    result = vad.predict(short_clip, plot=tmp_path / "scores.png")
    assert result.n_frames == 48 and result.fps == 10.0 and result.snippet_len == 8
    assert result.frame_scores.shape == (48,) and ((result.frame_scores >= 0) & (result.frame_scores <= 1)).all()
    n = len(result.class_names)      # one expert per class of the shipped model's training data
    assert result.favoured_class in result.class_names and n >= 5
    assert sum(result.class_evidence.values()) == pytest.approx(1.0)
    assert result.gate_weights.shape == (6, n) and result.expert_scores.shape == (n, 6)
    assert (tmp_path / "scores.png").stat().st_size > 10_000
    assert result.timings["decode_and_features"] > 0 and "max anomaly score" in result.summary()


def test_segments_are_exactly_the_runs_of_frames_at_or_above_the_threshold(vtest_frames):
    """With the threshold between the lowest and highest snippet score there is at least one
    segment, and the segments are exactly the maximal runs of frames scoring >= the threshold."""
    torch.manual_seed(1)
    config = GSMoEConfig(feature_dim=MOTION_DIM, features=FeatureConfig(use_cnn=False), d_model=16,
                         memory_slots=8, expert_hidden=16, gate_dim=8, gate_hidden=8)
    model, extractor = GSMoE(config).eval(), MobileNetMotionExtractor(FeatureConfig(use_cnn=False))
    frames = np.ascontiguousarray(vtest_frames[0][:, ::4, ::4])
    flashed, _ = render(frames, AnomalyEvent("flash", 20, 30, seed=1))
    snippets = predict(flashed, model, extractor=extractor, fps=10.0).snippet_scores
    threshold = float(np.sort(snippets)[-2:].mean())          # between the two highest snippet scores
    assert snippets.min() < threshold < snippets.max()
    result = predict(flashed, model, extractor=extractor, fps=10.0, threshold=threshold)
    assert len(result.segments) >= 1
    covered = np.zeros(result.n_frames, dtype=bool)
    for segment in result.segments:
        covered[segment.start:segment.end] = True
        assert segment.peak == pytest.approx(result.frame_scores[segment.start:segment.end].max())
        assert segment.start == 0 or result.frame_scores[segment.start - 1] < threshold     # maximal runs
        assert segment.end == result.n_frames or result.frame_scores[segment.end] < threshold
    np.testing.assert_array_equal(covered, result.frame_scores >= threshold)


@requires_shipped
def test_shipped_model_scores_an_injected_flash_above_the_rest(vtest_frames):
    """Behaviour, not a number: on real footage the frames of an injected flash score higher."""
    frames = np.ascontiguousarray(vtest_frames[0][:, ::2, ::2])
    flashed, truth = render(frames, AnomalyEvent("flash", 16, 32, seed=5))
    scores = predict(flashed, fps=10.0).frame_scores
    assert scores[truth > 0].mean() > scores[truth == 0].mean() + 0.2


class _MotionOnly:
    """A user extractor (any object with ``snippet_len``, ``dim`` and ``extract``)."""

    snippet_len, dim = 8, MOTION_DIM

    def __init__(self):
        self.inner, self.calls = MobileNetMotionExtractor(FeatureConfig(use_cnn=False)), 0

    def extract(self, frames, previous=None):
        self.calls += 1
        return self.inner.extract(frames, previous)


def test_pluggable_extractor_and_mismatch_errors(vtest_frames):
    torch.manual_seed(0)
    config = GSMoEConfig(feature_dim=MOTION_DIM, features=FeatureConfig(use_cnn=False), d_model=16,
                         memory_slots=8, expert_hidden=16, gate_dim=8, gate_hidden=8)
    model = GSMoE(config).eval()
    extractor = _MotionOnly()
    frames = np.ascontiguousarray(vtest_frames[0][:20, ::4, ::4])
    result = predict(frames, model, extractor=extractor, fps=10.0)
    assert extractor.calls == 1 and result.n_frames == 20 and len(result.snippet_scores) == 3
    wrong = GSMoE(config.replace(feature_dim=MOTION_DIM + 1)).eval()
    with pytest.raises(InputError, match="extractor gives 34-d features"):
        predict(frames, wrong, extractor=extractor)
    with pytest.raises(InputError, match="uint8 RGB"):
        predict(frames.astype(np.float32), model, extractor=extractor)
    with pytest.raises(InputError, match="empty"):
        predict(frames[:0], model, extractor=extractor)
    with pytest.raises(InputError, match="threshold"):
        predict(frames, model, extractor=extractor, threshold=1.5)


def test_bad_video_files_fail_clearly(tmp_path):
    empty, noise = tmp_path / "empty.mp4", tmp_path / "noise.avi"
    empty.write_bytes(b"")
    noise.write_bytes(np.random.default_rng(1).bytes(2048))
    model = GSMoE(GSMoEConfig(feature_dim=MOTION_DIM, features=FeatureConfig(use_cnn=False), d_model=16,
                              memory_slots=8, expert_hidden=16, gate_dim=8, gate_hidden=8))
    extractor = MobileNetMotionExtractor(FeatureConfig(use_cnn=False))
    for path, message in ((empty, "is empty"), (noise, "corrupt or unsupported"), (tmp_path / "no.mp4", "not found")):
        with pytest.raises(VideoInputError, match=message):
            predict(path, model, extractor=extractor)


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert main(["vad", "predict", str(tmp_path / "empty.mp4")]) == 2
    assert "is empty" in capsys.readouterr().err


@requires_shipped
def test_cli_predict_writes_plot_and_json(short_clip, tmp_path, capsys):
    plot, scores = tmp_path / "out.png", tmp_path / "out.json"
    assert main(["vad", "predict", short_clip, "--plot", str(plot), "--json", str(scores)]) == 0
    out = capsys.readouterr().out
    assert "frames/s" in out and plot.is_file()
    record = json.loads(scores.read_text())
    assert len(record["frame_scores"]) == 48 and record["favoured_class"] in record["class_evidence"]
