"""Time-based snippets (fps resampling), out-of-scope warnings, per-camera calibration and the
input checks of ``vad.predict`` (frames of several sizes, generators, audio-only files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moe_zoo.core import InputError
from moe_zoo.core.video import VideoInputError
from moe_zoo.vad.calibration import MIN_SNIPPETS, Calibration
from moe_zoo.vad.features import MOTION_DIM, FeatureConfig, MobileNetMotionExtractor
from moe_zoo.vad.model import GSMoE, GSMoEConfig
from moe_zoo.vad.predict import calibrate, predict
from moe_zoo.vad.scope import FeatureStats, out_of_distribution
from moe_zoo.vad.synthesis import AnomalyEvent, opencv_data_path, render
from moe_zoo.vad.timing import frame_to_resampled, resample


def _model(seed: int = 0, stats: bool = False) -> GSMoE:
    torch.manual_seed(seed)
    config = GSMoEConfig(feature_dim=MOTION_DIM, features=FeatureConfig(use_cnn=False), d_model=16, memory_slots=8,
                         expert_hidden=16, gate_dim=8, gate_hidden=8, scope_stats=stats)
    return GSMoE(config).eval()


EXTRACTOR = MobileNetMotionExtractor(FeatureConfig(use_cnn=False))


@pytest.fixture(scope="module")
def frames(vtest_frames) -> np.ndarray:
    return np.ascontiguousarray(vtest_frames[0][:, ::4, ::4])     # 48 real frames 192x144 at 10 fps


def test_resampling_keeps_the_frames_nearest_in_time():
    index = [np.full(1, i) for i in range(30)]
    assert [int(f[0]) for f in resample(index, 30.0, 10.0)] == list(range(0, 30, 3))
    assert [int(f[0]) for f in resample(index, 25.0, 10.0)] == [0, 2, 5, 7, 10, 12, 15, 17, 20, 22, 25, 27]
    assert [int(f[0]) for f in resample(index, 10.0, 10.0)] == list(range(30))
    assert [int(f[0]) for f in resample(index, 6.0, 10.0)] == list(range(30))    # never upsampled
    np.testing.assert_array_equal(frame_to_resampled(9, 30.0, 10.0, 3), [0, 0, 0, 1, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(frame_to_resampled(6, 25.0, 10.0, 3), [0, 0, 1, 1, 1, 2])


def test_a_30fps_clip_is_scored_like_the_same_scene_at_10fps(frames):
    model = _model()
    slow = predict(frames, model, extractor=EXTRACTOR, fps=10.0)
    fast = predict(np.repeat(frames, 3, axis=0), model, extractor=EXTRACTOR, fps=30.0)
    assert fast.n_frames == 144 and fast.fps == 30.0 and fast.model_fps == 10.0
    np.testing.assert_allclose(fast.snippet_scores, slow.snippet_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast.frame_scores, np.repeat(slow.frame_scores, 3), rtol=1e-5, atol=1e-6)
    # without resampling the 30 fps clip would be cut into 18 snippets of a third of the time
    assert len(fast.snippet_scores) == 6


@pytest.mark.parametrize("fps", [0, -5, float("nan"), float("inf")])
def test_invalid_frame_rates_are_errors(frames, fps):
    with pytest.raises(InputError, match="fps must be a positive"):
        predict(frames, _model(), extractor=EXTRACTOR, fps=fps)
    with pytest.raises(InputError, match="positive frame rate"):
        FeatureConfig(fps=fps)


def test_out_of_scope_inputs_come_back_with_warnings(frames, tmp_path):
    model = _model()

    def warned(video, **kw) -> str:
        return " | ".join(predict(video, model, extractor=EXTRACTOR, fps=kw.pop("fps", 10.0), **kw).warnings)

    assert warned(frames) == ""
    assert "shorter than one snippet" in warned(frames[:5])
    assert "still image" in warned(frames[:1])
    assert "no pixel changes" in warned(np.repeat(frames[:1], 16, axis=0))
    assert "too small" in warned(np.ascontiguousarray(frames[:16, :20, :24]))
    assert "below the model's" in warned(frames, fps=5.0)
    truncated = tmp_path / "truncated.avi"            # the first 300 kB of a 795-frame AVI
    truncated.write_bytes(opencv_data_path("vtest.avi").read_bytes()[:300_000])
    result = predict(truncated, model, extractor=EXTRACTOR)
    assert "decoded only partly" in " ".join(result.warnings) and "of the 795 frames" in " ".join(result.warnings)
    assert "warning: the file decoded only partly" in result.summary() and result.to_dict()["warnings"]


def test_features_far_from_training_are_flagged():
    rng = np.random.default_rng(0)
    stats = FeatureStats(8).fit(torch.from_numpy(rng.normal(size=(500, 8)).astype(np.float32)))
    assert stats.fitted and 0.5 < float(stats.limit) < 3.0
    near = rng.normal(size=(20, 8)).astype(np.float32)
    assert out_of_distribution(stats, near) is None
    message = out_of_distribution(stats, near + 4.0)
    assert message is not None and "far from the training data" in message
    assert out_of_distribution(FeatureStats(8), near + 4.0) is None        # never fitted: no claim


def test_the_fitted_statistics_travel_with_the_model(frames, tmp_path):
    from moe_zoo.core import load_model, save_checkpoint

    model = _model(stats=True)
    model.registry_name = "gsmoe-vad"
    features = EXTRACTOR.extract(frames)
    model.feature_stats.fit(torch.from_numpy(features))
    assert predict(frames, model, extractor=EXTRACTOR, fps=10.0).warnings == []
    save_checkpoint(tmp_path / "m.safetensors", model, {})
    loaded = load_model(tmp_path / "m.safetensors")
    torch.testing.assert_close(loaded.feature_stats.limit, model.feature_stats.limit)
    noise = np.random.default_rng(0).integers(0, 255, frames.shape, dtype=np.uint8)
    assert any("far from the training data" in w for w in predict(noise, loaded, extractor=EXTRACTOR).warnings)


def test_calibration_lowers_normal_scores_and_keeps_tampering_high(vtest_frames, tmp_path):
    """Fit on the camera's first 48 frames; score later normal frames and an occlusion."""
    clip = np.ascontiguousarray(vtest_frames[0][:, ::4, ::4])
    model = _model(seed=3)
    camera = calibrate(clip, model, extractor=EXTRACTOR, fps=10.0, scored=("score", "features"))
    assert camera.n_snippets == 6 >= MIN_SNIPPETS
    occluded, truth = render(clip, AnomalyEvent("occlusion", 16, 40, seed=2))
    normal = predict(clip, model, extractor=EXTRACTOR, fps=10.0, calibration=camera)
    tampered = predict(occluded, model, extractor=EXTRACTOR, fps=10.0, calibration=camera)
    assert normal.calibrated and (normal.frame_scores < 0.5).all()
    assert tampered.frame_scores[truth > 0].mean() > 0.5 > tampered.frame_scores[:16].max()
    # stored as safetensors + JSON, loads to the same scores; bound to its model
    path = camera.save(tmp_path / "camera.safetensors")
    again = predict(occluded, model, extractor=EXTRACTOR, fps=10.0, calibration=path)
    np.testing.assert_allclose(again.frame_scores, tampered.frame_scores)
    with pytest.raises(InputError, match="another model"):
        predict(clip, _model(seed=4), extractor=EXTRACTOR, fps=10.0, calibration=camera)
    (tmp_path / "junk.safetensors").write_bytes(b"not a calibration")
    with pytest.raises(InputError, match="not a vad calibration file"):
        Calibration.load(tmp_path / "junk.safetensors")
    default = calibrate(clip, model, extractor=EXTRACTOR, fps=10.0)    # the model's score alone: a re-scaling
    assert default.scored == ("score",)
    raw = predict(occluded, model, extractor=EXTRACTOR, fps=10.0)
    rescaled = predict(occluded, model, extractor=EXTRACTOR, fps=10.0, calibration=default)
    assert (np.argsort(rescaled.snippet_scores, kind="stable") == np.argsort(raw.snippet_scores, kind="stable")).all()
    with pytest.raises(InputError, match="at least"):
        calibrate(clip[:24], model, extractor=EXTRACTOR, fps=10.0)


def test_frames_of_several_sizes_generators_and_audio_only_files(frames, tmp_path):
    model = _model()
    with pytest.raises(InputError, match="frame 2 is 96x72, frame 0 is 192x144"):
        predict([frames[0], frames[1], np.ascontiguousarray(frames[2, ::2, ::2])], model, extractor=EXTRACTOR)
    as_array = predict(frames, model, extractor=EXTRACTOR, fps=10.0)
    from_generator = predict((f for f in frames), model, extractor=EXTRACTOR, fps=10.0)
    np.testing.assert_array_equal(from_generator.frame_scores, as_array.frame_scores)
    with pytest.raises(InputError, match="frame 3 is"):
        predict((f if i != 3 else f[:10] for i, f in enumerate(frames)), model, extractor=EXTRACTOR)
    with pytest.raises(InputError, match="yielded no frames"):
        predict((f for f in []), model, extractor=EXTRACTOR)
    with pytest.raises(InputError, match="got int"):
        predict(42, model, extractor=EXTRACTOR)
    import av

    audio = tmp_path / "speech.m4a"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    with pytest.raises(VideoInputError, match=r"no video stream .* holds 1 stream: #0 audio \(aac\)"):
        predict(audio, model, extractor=EXTRACTOR)


def test_non_utf8_list_files_are_clear_errors(tmp_path):
    from moe_zoo.vad.data import read_list, read_ucf_annotations

    (tmp_path / "latin1.list").write_bytes("Vid\xe9o001__0.npy\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"not UTF-8 text \(byte 0xe9 at line 1"):
        read_list(tmp_path / "latin1.list")
    (tmp_path / "notes.txt").write_bytes(b"ok.mp4 Abuse 1 2 -1 -1\n\xff\xfe\n")
    with pytest.raises(InputError, match=r"annotation file .* line 2"):
        read_ucf_annotations(tmp_path / "notes.txt")


def test_the_cli_checks_the_path_before_loading_video_or_model_code():
    import subprocess
    import sys

    code = ("import sys; from moe_zoo.core.cli import main; rc = main(['vad', 'predict', '/no/such/clip.mp4']); "
            "print(rc, sorted(m for m in ('av', 'torchvision', 'moe_zoo.vad.model') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "2 []", out
    assert "video file not found: /no/such/clip.mp4" in out.stderr
