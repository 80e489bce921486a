"""Camera router (teacher forcing / Gumbel hard / argmax) and the skill router (shared + top-3 of 7)."""

import pytest
import torch

from moe_zoo.core import InputError
from moe_zoo.driving.model import CameraRouter, DriveMoE, DriveMoEConfig, select_camera

TINY = DriveMoEConfig(d_model=16, n_heads=2, pca_dim=8, expert_hidden=8, router_hidden=16, context_layers=1,
                      action_layers=3, moe_layers=2)


def batch(b=6, cfg=TINY):
    g = torch.Generator().manual_seed(1)
    return {"features": torch.randn(b, 6, cfg.tokens_per_camera, cfg.pca_dim, generator=g),
            "front_prev": torch.randn(b, cfg.tokens_per_camera, cfg.pca_dim, generator=g),
            "command": torch.randint(0, cfg.n_commands, (b,), generator=g),
            "command_point": torch.randn(b, 2, generator=g) * 20, "history": torch.randn(b, 5, 10, generator=g),
            "camera": torch.tensor([0, 1, 2, 3, 4, 0])[:b]}


def test_camera_router_shapes():
    router = CameraRouter(16, 2, 32)
    logits = router(torch.randn(4, 2), torch.randn(4, 4, 16))
    assert logits.shape == (4, 5)


def test_teacher_forcing_is_the_label_and_argmax_the_best_logit():
    logits = torch.randn(5, 5)
    label = torch.tensor([4, 3, 2, 1, 0])
    assert torch.equal(select_camera(logits, "teacher", label), torch.eye(5)[label])
    assert torch.equal(select_camera(logits, "argmax"), torch.eye(5)[logits.argmax(-1)])
    with pytest.raises(InputError):
        select_camera(logits, "teacher")


def test_gumbel_is_one_hot_with_gradient_to_the_logits():
    logits = torch.tensor([[0.0, 0.0, 8.0, 0.0, 0.0]] * 200, requires_grad=True)
    choice = select_camera(logits, "gumbel")
    assert torch.equal(choice.sum(-1), torch.ones(200)) and set(choice.unique().tolist()) <= {0.0, 1.0}
    # a dominant logit wins almost always, but Gumbel noise lets others through sometimes
    assert (choice.argmax(-1) == 2).float().mean() > 0.9
    (choice * torch.arange(5.0)).sum().backward()         # straight-through: gradient reaches the logits
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_teacher_forcing_feeds_the_labelled_camera_only():
    torch.manual_seed(0)
    model = DriveMoE(TINY).eval()
    b = batch()
    x, t = torch.randn(6, 10, 2), torch.rand(6)
    out = model(b, x, t, camera_mode="teacher")
    changed = dict(b)
    changed["features"] = b["features"].clone()
    for i, cam in enumerate(b["camera"]):                 # perturb every view but the labelled one
        others = [c for c in range(5) if c != int(cam)]
        changed["features"][i, [1 + c for c in others]] += torch.randn(4, 4, TINY.pca_dim)
    same = model(changed, x, t, camera_mode="teacher")
    assert torch.allclose(out.velocity, same.velocity, atol=1e-5)
    changed["features"][:, 1:] = b["features"][:, 1:] + torch.randn(6, 5, 4, TINY.pca_dim)  # labelled ones too
    assert not torch.allclose(out.velocity, model(changed, x, t, camera_mode="teacher").velocity, atol=1e-4)


def test_skill_router_one_decision_per_trajectory_top3_renormalised():
    torch.manual_seed(0)
    model = DriveMoE(TINY)
    out = model(batch(), torch.randn(6, 10, 2), torch.rand(6))
    r = out.routing
    assert r.indices.shape == (6, 3) and r.weights.shape == (6, 3) and r.probs.shape == (6, 7)
    assert torch.allclose(r.weights.sum(-1), torch.ones(6), atol=1e-6)
    top3 = r.probs.topk(3, dim=-1)
    assert torch.equal(r.indices.sort(-1).values, top3.indices.sort(-1).values)
    assert torch.allclose(r.weights, top3.values / top3.values.sum(-1, keepdim=True), atol=1e-6)
    assert out.skill_logits.shape == (6, 7)


def test_skill_temperature_scales_the_logits():
    torch.manual_seed(0)
    model = DriveMoE(TINY).eval()
    b, x, t = batch(), torch.randn(6, 10, 2), torch.rand(6)
    base = model(b, x, t).skill_logits
    with torch.no_grad():
        model.log_temperature.fill_(torch.log(torch.tensor(2.0)))
    assert torch.allclose(model(b, x, t).skill_logits, base / 2, atol=1e-5)


def test_routing_gradient_is_scaled_by_the_number_of_moe_layers():
    from moe_zoo.driving.model import scale_grad

    w = torch.ones(3, requires_grad=True)
    scale_grad(w, 0.25).sum().backward()
    assert torch.allclose(w.grad, torch.full((3,), 0.25))


def test_variants_build_and_run():
    for cameras, moe in (("front", False), ("all", False), ("front", True), ("moe", False)):
        model = DriveMoE(TINY.replace(cameras=cameras, action_moe=moe))
        out = model(batch(), torch.randn(6, 10, 2), torch.rand(6))
        assert out.velocity.shape == (6, 10, 2)
        assert (out.camera_logits is None) == (cameras != "moe") and (out.routing is None) == (not moe)
    with pytest.raises(InputError):
        DriveMoEConfig(cameras="rear")
