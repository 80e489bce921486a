import itertools

import pytest
import torch
from audio_helpers import TINY

from moe_zoo.audio.batching import Example
from moe_zoo.audio.model import UniMoEAudio
from moe_zoo.audio.tokens import apply_delay
from moe_zoo.audio.train import (
    TASKS,
    TrainConfig,
    fit,
    merge_specialists,
    run_steps,
    split_ffn,
    train_curriculum,
    warmup_parameters,
)
from moe_zoo.core import InputError
from moe_zoo.core.activations import activate
from moe_zoo.core.experts import FeedForward


def pools():
    g = torch.Generator().manual_seed(0)
    out = {}
    for task, token in zip(TASKS, (2, 3)):
        out[task] = [Example(task, [token, 5 + i, 1], apply_delay(torch.randint(0, 16, (2, 6), generator=g), (0, 1), 16))
                     for i in range(4)]
    return out


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_split_ffn_experts_sum_to_the_dense_ffn():
    torch.manual_seed(0)
    ffn = FeedForward(32, 24)
    x = torch.randn(5, 32)
    w_in, w_out = split_ffn(ffn.proj_in.weight, ffn.proj_out.weight, 3)
    assert w_in.shape == (3, 32, 16) and w_out.shape == (3, 8, 32)
    summed = sum(activate(x @ w_in[j], "swiglu") @ w_out[j] for j in range(3))
    assert torch.allclose(summed, ffn(x), atol=1e-5)
    with pytest.raises(InputError):
        split_ffn(ffn.proj_in.weight, ffn.proj_out.weight, 5)


def specialists():
    dense = TINY.replace(ffn="dense", dense_hidden=TINY.expert_hidden * TINY.n_routed // 2)
    out = {}
    for i, task in enumerate(TASKS):
        torch.manual_seed(i)
        out[task] = UniMoEAudio(dense)
    return out


def test_merge_rescale_makes_uniform_gates_over_one_specialists_parts_reproduce_its_dense_ffn():
    specs = specialists()
    parts = TINY.n_routed // len(TASKS)
    x = torch.randn(7, TINY.d_model, generator=torch.Generator().manual_seed(3))
    for rescale in (False, True):
        bank = merge_specialists(specs, TINY, seed=0, rescale=rescale).blocks[1].ffn.experts
        for j, task in enumerate(TASKS):
            dense = specs[task].blocks[1].ffn(x)
            # the router's combination with equal gates 1 / parts over this specialist's parts
            mixed = sum(bank.expert_forward(e, x) for e in range(j * parts, (j + 1) * parts)) / parts
            expected = dense if rescale else dense / parts
            assert torch.allclose(mixed, expected, atol=1e-5), (rescale, task)
            assert not torch.allclose(mixed, dense / parts if rescale else dense, atol=1e-3)
        shared = bank.w_out[TINY.n_routed:]
        assert torch.equal(shared, merge_specialists(specs, TINY, seed=0).blocks[1].ffn.experts.w_out[TINY.n_routed:])


def test_split_rescale_flag_reaches_the_merge(monkeypatch):
    import sys

    train_module = sys.modules["moe_zoo.audio.train"]
    flags = []
    real_merge = train_module.merge_specialists

    def spy(specialists, config, seed=0, rescale=False):
        flags.append(rescale)
        return real_merge(specialists, config, seed, rescale)

    monkeypatch.setattr(train_module, "merge_specialists", spy)
    cfg = TrainConfig(backbone_steps=0, specialist_steps=1, warmup_steps=1, joint_steps=1, batch_size=2)
    fit(pools(), TINY, cfg)
    fit(pools(), TINY, cfg.replace(split_rescale=True))
    assert flags == [False, True]
    with pytest.raises(InputError):
        TrainConfig(split_rescale=1)


def test_stage1_dense_specialist_trains_every_parameter():
    spec = specialists()["speech"]
    before = snapshot(spec)
    run_steps(spec, {"speech": pools()["speech"]}, 2, 1e-2, batch_size=2, seed=0)
    changed = {k for k, v in spec.named_parameters() if not torch.equal(v, before[k])}
    # every weight with a gradient moves (position rows past the batch length get none)
    assert changed >= {k for k in before if "pos_embed" not in k}


def test_stage2_merge_then_only_gates_and_shared_experts_train():
    specs = specialists()
    model = merge_specialists(specs, TINY, seed=0)
    a, b = (s.state_dict() for s in (specs["speech"], specs["music"]))
    assert torch.allclose(model.blocks[0].attn.qkv.weight, (a["blocks.0.attn.qkv.weight"] + b["blocks.0.attn.qkv.weight"]) / 2)
    w_in, _ = split_ffn(specs["music"].blocks[1].ffn.proj_in.weight, specs["music"].blocks[1].ffn.proj_out.weight, 4)
    assert torch.equal(model.blocks[1].ffn.experts.w_in[4:8], w_in)
    before = snapshot(model)
    params, hooks = warmup_parameters(model)
    run_steps(model, pools(), 3, 1e-2, batch_size=2, seed=0, params=params, weight_decay=0.0)
    for h in hooks:
        h.remove()
    n = TINY.n_routed
    for name, value in model.named_parameters():
        old = before[name]
        if name.endswith("router.weight"):
            assert not torch.equal(value, old), name
        elif name.endswith(("experts.w_in", "experts.w_out")):
            assert torch.equal(value[:n], old[:n]), f"{name}: routed experts must stay frozen"
            assert not torch.equal(value[n:], old[n:]), f"{name}: shared experts must train"
        else:
            assert torch.equal(value, old), f"{name} must be frozen in stage 2"


def test_full_curriculum_and_joint_recipes_run_and_stage3_trains_everything():
    cfg = TrainConfig(backbone_steps=1, specialist_steps=2, warmup_steps=2, joint_steps=3, batch_size=2)
    model, log = fit(pools(), TINY, cfg)
    assert isinstance(model.blocks[0].ffn.router.weight, torch.nn.Parameter)
    seen_stages = []
    train_curriculum(pools(), TINY, cfg, on_stage=lambda name, m: seen_stages.append((name, m.config.ffn)))
    assert seen_stages == [("stage0_backbone", "dense"), ("stage1_speech", "dense"), ("stage1_music", "dense"),
                           ("merged", "moe"), ("stage2", "moe"), ("stage3", "moe")]
    assert all(p.requires_grad for p in model.parameters())
    stages = ("stage0_backbone", "stage1_speech", "stage1_music", "stage2", "stage3")
    assert [len(log[k]) for k in stages] == [1, 2, 2, 2, 3]
    # examples per task: backbone 1 + warm-up 2 + joint 3 balanced steps (1 + 1) and 2 own-task steps of 2
    assert {t: v["examples"] for t, v in log["seen"].items()} == {"speech": 10, "music": 10}
    _, joint_log = fit(pools(), TINY, cfg.replace(recipe="joint"))
    assert len(joint_log["joint"]) == cfg.total_steps == 10
    assert {t: v["examples"] for t, v in joint_log["seen"].items()} == {"speech": 10, "music": 10}
    with pytest.raises(InputError):
        fit(pools(), TINY.replace(ffn="dense"), cfg)
    with pytest.raises(InputError):
        TrainConfig(lr=float("nan"))


def test_lr_factor_warms_up_linearly_then_decays_by_cosine_to_the_floor():
    from moe_zoo.audio.train import lr_factor

    steps = [lr_factor(s, 120, warmup=20, floor=0.1) for s in range(120)]
    assert steps[0] == pytest.approx(1 / 20) and steps[19] == pytest.approx(1.0)
    assert steps[20] == pytest.approx(1.0)
    assert steps[70] == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the decay
    assert all(a >= b for a, b in itertools.pairwise(steps[20:]))
    assert lr_factor(120, 120, warmup=20, floor=0.1) == pytest.approx(0.1)


def test_curriculum_specialists_start_from_the_stage0_backbone(monkeypatch):
    import sys

    train_module = sys.modules["moe_zoo.audio.train"]  # the package exports a `train` function too
    starts = {}
    real_merge = train_module.merge_specialists

    def spy(specialists, config, seed=0, rescale=False):
        starts.update({t: m for t, m in specialists.items()})
        return real_merge(specialists, config, seed, rescale)

    monkeypatch.setattr(train_module, "merge_specialists", spy)
    cfg = TrainConfig(backbone_steps=3, specialist_steps=1, warmup_steps=1, joint_steps=1, batch_size=2)
    fit(pools(), TINY, cfg)
    # one step of each specialist from a common 3-step backbone keeps their embeddings close,
    # far closer than two independent initialisations
    a, b = (starts[t].cond_embed.weight for t in TASKS)
    torch.manual_seed(1)
    fresh = UniMoEAudio(TINY.replace(ffn="dense", dense_hidden=32)).cond_embed.weight
    assert (a - b).abs().max() < (a - fresh).abs().max()
