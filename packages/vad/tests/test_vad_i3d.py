"""The optional I3D extractor: the standard Inception-3D layout, loaded from a safetensors path
(random weights here), and a benchmark-layout model scoring raw frames through it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from moe_zoo.core import InputError
from moe_zoo.vad.features import FeatureConfig
from moe_zoo.vad.i3d import I3D_DIM, I3DExtractor, InceptionI3d
from moe_zoo.vad.model import GSMoE, GSMoEConfig
from moe_zoo.vad.predict import predict


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = InceptionI3d()
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["logits.conv3d.weight"] = torch.zeros(400, 1024, 1, 1, 1)      # the port's classifier: ignored
    path = tmp_path_factory.mktemp("i3d") / "i3d.safetensors"
    save_file(state, str(path))
    return path, model.eval()


def test_inception_i3d_shapes_follow_the_architecture():
    model, seen = InceptionI3d().eval(), {}
    for name in ("Conv3d_1a_7x7", "MaxPool3d_4a_3x3", "Mixed_4f", "Mixed_5c"):
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape)))
    with torch.inference_mode():
        out = model(torch.zeros(1, 3, 16, 64, 64))
    assert out.shape == (1, I3D_DIM)
    assert seen == {"Conv3d_1a_7x7": (1, 64, 8, 32, 32), "MaxPool3d_4a_3x3": (1, 480, 4, 4, 4),
                    "Mixed_4f": (1, 832, 4, 4, 4), "Mixed_5c": (1, 1024, 2, 2, 2)}
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(12.29e6, rel=0.01)


def test_extractor_loads_user_weights_and_scores_raw_frames(weights, vtest_frames, tmp_path):
    path, reference = weights
    extractor = I3DExtractor(path, size=64)
    frames = np.ascontiguousarray(vtest_frames[0][:32, ::8, ::8])      # 72x96 real frames
    features = extractor.extract(frames)
    assert features.shape == (2, I3D_DIM) and np.isfinite(features).all()
    np.testing.assert_allclose(extractor.extract(frames[:16]), features[:1], rtol=1e-4, atol=1e-5)
    with torch.inference_mode():      # same as the reference model on the resized, cropped [-1, 1] input
        video = torch.nn.functional.interpolate(torch.from_numpy(frames[:16]).permute(0, 3, 1, 2).float(),
                                                size=(64, 85), mode="bilinear", antialias=True, align_corners=False)
        video = video[:, :, :, 10:74] / 127.5 - 1
        expected = reference(video.transpose(0, 1)[None])
    np.testing.assert_allclose(features[0], expected[0].numpy(), rtol=1e-4, atol=1e-5)
    model = GSMoE(GSMoEConfig(feature_dim=I3D_DIM, features=FeatureConfig(snippet_len=16, fps=10.0), d_model=16,
                              memory_slots=8, expert_hidden=16, gate_dim=8, gate_hidden=8)).eval()
    result = predict(frames, model, extractor=extractor, fps=10.0)
    assert result.n_frames == 32 and len(result.snippet_scores) == 2
    (tmp_path / "bad.safetensors").write_bytes(b"nope")
    with pytest.raises(InputError, match="not a safetensors file"):
        I3DExtractor(tmp_path / "bad.safetensors")
    save_file({"weight": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(InputError, match="not an Inception-I3D state dict"):
        I3DExtractor(tmp_path / "other.safetensors")
