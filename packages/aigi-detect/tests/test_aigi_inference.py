"""The fast inference path (router-grouped merged weights, folded batch norms, channels-last) gives
the per-image expert path's outputs."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from moe_zoo.aigi.builtin import DEFAULT_DOMAINS, finish, real_crops
from moe_zoo.aigi.demo import shipped_fakes
from moe_zoo.aigi.inference import cached_inference_copy, fold_batchnorms, inference_copy
from moe_zoo.aigi.predict import load, score
from moe_zoo.aigi.speed import expert_path
from moe_zoo.core.backbones import load_mobilenet_v2


def test_folded_mobilenet_equals_the_original():
    trunk = load_mobilenet_v2(trunk_only=True, frozen=True).eval()
    folded = load_mobilenet_v2(trunk_only=True, frozen=True).eval()
    norms = sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert fold_batchnorms(folded) == norms == 52
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), trunk(x), atol=1e-4, rtol=1e-4)


def test_fast_path_equals_the_per_image_expert_path_on_mixed_routing():
    model = load("omniaid-mnv2", device="cpu")
    real = [finish(img) for d in DEFAULT_DOMAINS for img in real_crops(d, "test", 4, seed=0, clips=False)]
    images = np.concatenate([np.stack(real), shipped_fakes()[0][:6]])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    x = torch.nn.functional.interpolate(x, size=model.config.image_size, mode="bilinear", antialias=True)
    with torch.no_grad():
        reference = expert_path(model, x).softmax(-1)[:, 1]
        gates = model.route(model.normalise(x))[0]
        assert len(torch.unique(gates, dim=0)) >= 2          # several router groups in the batch
        grouped = model(x).prob_fake                          # grouped merged weights, unfolded
        fast = inference_copy(model)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(grouped, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(fast.prob_fake, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(fast.gates, gates)
    probs, _ = score(model, images)
    np.testing.assert_allclose(probs, reference.numpy(), atol=1e-5)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.adapted.modules()) == 52   # the original is untouched


def test_the_cached_inference_copy_follows_changes_to_the_model():
    model = load("omniaid-mnv2", device="cpu")
    images = shipped_fakes()[0][:4]
    before, _ = score(model, images)
    assert cached_inference_copy(model) is cached_inference_copy(model)
    with torch.no_grad():
        model.head.bias.copy_(torch.tensor([0.0, 50.0]))          # an in-place update, as an optimiser's
    after, _ = score(model, images)
    assert (after > 0.999).all() and not np.allclose(before, after)
