"""OmniAID model: backbones, router (top-k + always-on artifact expert), losses, checkpoints."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from moe_zoo.aigi.losses import classification_loss, router_loss, stage1_loss, stage2_loss
from moe_zoo.aigi.model import OmniAID, OmniAIDConfig
from moe_zoo.core import InputError, load_balancing_loss, load_model, save_checkpoint


@pytest.fixture(params=["clip", "vit"])
def tiny_config(request, tiny_clip_config, tiny_vit_config):
    return tiny_clip_config if request.param == "clip" else tiny_vit_config


def test_adapted_network_equals_the_pretrained_one_at_init_in_stage_one(tiny_config):
    model = OmniAID(tiny_config)
    assert len(model.svd_layers) == 8 if tiny_config.backbone == "hf-clip" else 4
    x = model.normalise(torch.rand(3, 3, 16, 16))
    with torch.no_grad():
        reference = model._pool(model.frozen, x)
        for expert in range(model.config.n_experts):
            for layer in model.svd_layers:
                layer.gates = F.one_hot(torch.full((3,), expert), model.config.n_experts).float()
            torch.testing.assert_close(model._pool(model.adapted, x), reference, atol=1e-4, rtol=1e-4)


def test_mobilenet_backbone_adapts_every_pointwise_convolution_and_the_head_conv():
    model = OmniAID(OmniAIDConfig(image_size=32))
    # 16 expansion + 17 projection 1x1 convolutions + the 320->1280 head convolution
    assert len(model.svd_layers) == 34
    assert model.svd_layers[-1].weight_main.shape == (1280, 320)
    x = model.normalise(torch.rand(2, 3, 32, 32))
    with torch.no_grad():
        for layer in model.svd_layers:
            layer.gates = torch.tensor([[0.0, 1.0, 0.0, 0.0]] * 2)
        torch.testing.assert_close(model._pool(model.adapted, x), model._pool(model.frozen, x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("top_k", [1, 2])
def test_router_top_k_plus_artifact_expert_always_on_with_gate_one(tiny_clip_config, top_k):
    model = OmniAID(tiny_clip_config.replace(top_k=top_k))
    with torch.no_grad():
        model.router.weight.normal_()
    out = model(torch.rand(6, 3, 16, 16))
    semantic, artifact = out.gates[:, :3], out.gates[:, 3]
    assert torch.equal(artifact, torch.ones(6))
    assert ((semantic > 0).sum(1) == top_k).all()
    torch.testing.assert_close(semantic.sum(1), torch.ones(6))
    # gates = softmax over the chosen router logits
    logits = out.routing.logits
    top = logits.topk(top_k, -1)
    want = torch.zeros_like(semantic).scatter(1, top.indices, top.values.softmax(-1))
    torch.testing.assert_close(semantic, want)


def test_one_routing_decision_per_image_is_shared_by_every_layer(tiny_clip_config):
    model = OmniAID(tiny_clip_config)
    seen = []
    hooks = [layer.register_forward_pre_hook(lambda mod, _inp: seen.append(mod.gates.clone()))
             for layer in model.svd_layers]
    out = model(torch.rand(4, 3, 16, 16))
    for hook in hooks:
        hook.remove()
    assert len(seen) == len(model.svd_layers)
    for gates in seen:
        assert torch.equal(gates, out.gates)


def test_hard_sampling_routes_every_image_to_one_expert(tiny_clip_config):
    model = OmniAID(tiny_clip_config)
    with model.hard_sampling(2):
        out = model(torch.rand(3, 3, 16, 16))
    assert out.routing is None and torch.equal(out.gates, F.one_hot(torch.full((3,), 2), 4).float())
    with pytest.raises(InputError), model.hard_sampling(4):
        pass


def test_variants_single_adapter_and_no_artifact(tiny_clip_config):
    single = OmniAID(tiny_clip_config.replace(domains=()))
    out = single(torch.rand(2, 3, 16, 16))
    assert out.routing is None and torch.equal(out.gates, torch.ones(2, 1))
    semantic_only = OmniAID(tiny_clip_config.replace(artifact_expert=False))
    out = semantic_only(torch.rand(2, 3, 16, 16))
    assert out.gates.shape == (2, 3) and torch.allclose(out.gates.sum(1), torch.ones(2))
    with pytest.raises(InputError):
        OmniAIDConfig(domains=(), artifact_expert=False)
    with pytest.raises(InputError, match="top_k"):
        OmniAIDConfig(top_k=4)


def test_losses_against_their_formulas(tiny_clip_config):
    model = OmniAID(tiny_clip_config.replace(top_k=1))
    with torch.no_grad():
        model.router.weight.normal_()
    x, y, d = torch.rand(8, 3, 16, 16), torch.randint(0, 2, (8,)), torch.tensor([0, 1, 2, -1, 0, 1, 2, 0])
    out = model(x)
    # label smoothing 0.1: q = 0.95 on the label, 0.05 on the other
    logp = out.logits.log_softmax(-1)
    q = F.one_hot(y, 2) * 0.9 + 0.05
    torch.testing.assert_close(classification_loss(out.logits, y), -(q * logp).sum(1).mean())
    # balance: N sum_i f_i P_i over the semantic experts
    probs = out.routing.logits.softmax(-1)
    f = F.one_hot(out.routing.logits.argmax(-1), 3).float().mean(0)
    torch.testing.assert_close(load_balancing_loss(out.routing), 3 * (f * probs.mean(0)).sum())
    # router CE leaves out images without a domain
    valid = d >= 0
    torch.testing.assert_close(router_loss(out, d), F.cross_entropy(out.routing.logits[valid], d[valid]))
    s2 = stage2_loss(model, out, y, d)
    torch.testing.assert_close(s2["loss"], s2["ce"] + 0.1 * s2["balance"] + 0.1 * s2["router"])
    with model.hard_sampling(1):
        s1 = stage1_loss(model, model(x), y, 1)
    torch.testing.assert_close(s1["loss"], s1["ce"] + 0.01 * s1["orth"])


def test_checkpoint_holds_only_trained_tensors_and_round_trips(tiny_clip_config, tmp_path):
    model = OmniAID(tiny_clip_config)
    with torch.no_grad():
        for p in model.state_dict(keep_vars=True).values():
            p.add_(torch.randn_like(p) * 0.1)
    keys = list(model.state_dict())
    assert all(".U_experts." in k or ".S_experts." in k or ".V_experts." in k or k.startswith(("router", "head."))
               for k in keys)
    assert not any(k.startswith("frozen.") for k in keys)
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    loaded = load_model(path)
    x = torch.rand(3, 3, 16, 16)
    torch.testing.assert_close(loaded(x).logits, model(x).logits)


def test_bad_inputs(tiny_clip_config):
    model = OmniAID(tiny_clip_config)
    with pytest.raises(InputError, match="images"):
        model(torch.rand(2, 16, 16))
    with pytest.raises(InputError, match="backbone"):
        OmniAID(OmniAIDConfig(backbone="resnet"))
    with pytest.raises(InputError, match="JSON"):
        OmniAID(tiny_clip_config.replace(backbone_options="{bad"))
    with pytest.raises(InputError, match="do not exist"):
        OmniAID(tiny_clip_config.replace(backbone_weights="/nonexistent/clip"))
