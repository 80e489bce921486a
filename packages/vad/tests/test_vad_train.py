"""Training recipes learn a known signal; checkpoints round-trip; interrupted runs resume."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from moe_zoo.core import InputError, load_model
from moe_zoo.vad.data import NORMAL, FeatureSet, VideoFeatures
from moe_zoo.vad.evaluate import evaluate
from moe_zoo.vad.features import FeatureConfig
from moe_zoo.vad.model import GSMoEConfig
from moe_zoo.vad.train import (
    URDMU_ATTENTION_LAYERS,
    TrainConfig,
    _Resume,
    load_weight_ema,
    snippet_scores,
    train,
    update_weight_ema,
)

CLASSES = ("alpha", "beta", "gamma")
DIM, T, SNIPPET = 8, 16, 4


def _videos(n_per_class: int, n_normal: int, seed: int) -> FeatureSet:
    """Noise features; an anomaly of class c adds direction c on a contiguous run of snippets."""
    rng = np.random.default_rng(seed)
    directions = np.eye(DIM, dtype=np.float32)[:len(CLASSES)] * 4.0
    videos = []
    for kind in [*CLASSES * n_per_class, *[NORMAL] * n_normal]:
        x = rng.normal(size=(T, DIM)).astype(np.float32)
        labels = np.zeros(T * SNIPPET, dtype=np.uint8)
        if kind != NORMAL:
            length = int(rng.integers(4, 8))
            start = int(rng.integers(0, T - length + 1))
            x[start:start + length] += directions[CLASSES.index(kind)]
            labels[start * SNIPPET:(start + length) * SNIPPET] = 1
        videos.append(VideoFeatures(f"{kind}_{len(videos)}", (), int(kind != NORMAL), (kind,), labels, x))
    return FeatureSet(videos, SNIPPET)


MODEL = GSMoEConfig(feature_dim=DIM, class_names=CLASSES, d_model=16, memory_slots=8, expert_hidden=16,
                    expert_mlp=(16,), gate_dim=8, gate_heads=2, gate_hidden=8, gate_mlp=(8,),
                    features=FeatureConfig(snippet_len=SNIPPET, use_cnn=False))
SHORT = {"encoder_steps": 120, "expert_steps": 100, "gate_steps": 60, "mil_steps": 150, "batch_size": 8,
         "lr": 3e-3, "encoder_lr": 3e-3, "head_lr": 2e-3}


@pytest.fixture(scope="module")
def splits():
    return _videos(16, 32, seed=0), _videos(4, 8, seed=1)


@pytest.mark.parametrize("variant", ["gsmoe", "gsmoe-attn", "mil"])
def test_learns_a_known_signal_well_above_chance(splits, variant):
    train_set, test_set = splits
    result = train(train_set, TrainConfig(variant=variant, seed=0, **SHORT),
                   None if variant == "mil" else MODEL, progress=False)
    metrics = evaluate(result.model, test_set, variant=variant, device="cpu")
    assert metrics["auc"] > 0.75, metrics          # chance is 0.5
    if variant != "mil":  # the default encoder has no self-attention; gsmoe-attn has UR-DMU's two layers
        assert len(result.model.encoder.blocks) == (URDMU_ATTENTION_LAYERS if variant == "gsmoe-attn" else 0)
    assert result.history and all(np.isfinite(v).all() for v in result.history.values())


def _interrupt_and_resume(train_set, config, state, at: tuple[int, int]):
    """Train with ``state_path``, stop right after the state of ``(stage, step)`` is saved, resume."""
    original = _Resume.save

    def interrupt(self, stage, step, optimizer=None):
        original(self, stage, step, optimizer)
        if (stage, step) == at:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_Resume, "save", interrupt)
        with pytest.raises(KeyboardInterrupt):
            train(train_set, config, MODEL, progress=False, state_path=state)
    return train(train_set, config, MODEL, progress=False, state_path=state)


def test_checkpoint_round_trip_and_resume(splits, tmp_path):
    train_set, _ = splits
    config = TrainConfig(seed=1, **{**SHORT, "encoder_steps": 30, "expert_steps": 20, "gate_steps": 10},
                         checkpoint_every=10)
    full = train(train_set, config, MODEL, progress=False, checkpoint=tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    x = train_set.videos[0].load()
    np.testing.assert_allclose(snippet_scores(loaded, x, device="cpu"), snippet_scores(full.model, x, device="cpu"),
                               rtol=1e-5, atol=1e-6)
    assert loaded.config == full.model.config
    # a run interrupted right after stage 1 was saved resumes at stage 2 and finishes
    resumed = _interrupt_and_resume(train_set, config, tmp_path / "state.safetensors", at=(1, 0))
    assert len(resumed.history["experts"]) == 20 and len(resumed.history["gate"]) == 10
    full_state, resumed_state = full.model.state_dict(), resumed.model.state_dict()
    assert full_state.keys() == resumed_state.keys()
    for name, value in full_state.items():    # the resumed run ends on the uninterrupted run's weights
        torch.testing.assert_close(resumed_state[name], value, msg=name)


def test_resume_refuses_a_state_written_with_other_settings(splits, tmp_path):
    train_set, _ = splits
    config = TrainConfig(seed=1, **{**SHORT, "encoder_steps": 20, "expert_steps": 4, "gate_steps": 4},
                         checkpoint_every=10)
    state = tmp_path / "state.safetensors"
    _interrupt_and_resume(train_set, config, state, at=(0, 10))
    for changed, data in ((config.replace(seed=2), train_set), (config.replace(encoder_lr=1e-4), train_set),
                          (config, train_set.subset(range(len(train_set) - 1)))):
        with pytest.raises(InputError, match="other settings"):
            train(data, changed, MODEL, progress=False, state_path=state)
    # --force-restart discards the old state: the run equals a fresh one with the new seed
    fresh = train(train_set, config.replace(seed=2), MODEL, progress=False)
    forced = train(train_set, config.replace(seed=2), MODEL, progress=False, state_path=state, force_restart=True)
    for a, b in zip(fresh.model.parameters(), forced.model.parameters()):
        torch.testing.assert_close(a, b)


def test_weight_ema_follows_its_formula_and_ends_the_stage():
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = torch.optim.SGD([w], lr=0.1)
    update_weight_ema(optimizer, 0.99, step=0)                # first call: the average starts at w
    with torch.no_grad():
        w.copy_(torch.tensor([3.0, 0.0]))
    update_weight_ema(optimizer, 0.99, step=1)                # b = min(0.99, 2 / 11)
    b = 2 / 11
    expected = b * torch.tensor([1.0, -2.0]) + (1 - b) * torch.tensor([3.0, 0.0])
    torch.testing.assert_close(optimizer.state[w]["ema"], expected)
    load_weight_ema(optimizer)
    torch.testing.assert_close(w.detach(), expected)
    with pytest.raises(InputError):
        TrainConfig(encoder_ema=1.0)


def test_a_run_interrupted_inside_stage_one_resumes_to_the_same_encoder(splits, tmp_path):
    """Batches are drawn per (stage, step) and the weight average is saved with the optimizer, so
    resuming in the middle of stage 1 ends on the same encoder as the uninterrupted run."""
    train_set, _ = splits
    config = TrainConfig(seed=4, **{**SHORT, "encoder_steps": 30, "expert_steps": 2, "gate_steps": 2},
                         checkpoint_every=10)
    full = train(train_set, config, MODEL, progress=False)
    resumed = _interrupt_and_resume(train_set, config, tmp_path / "state.safetensors", at=(0, 20))
    assert len(resumed.history["encoder"]) == 10
    for a, b in zip(full.model.encoder.parameters(), resumed.model.encoder.parameters()):
        torch.testing.assert_close(a, b)


def test_encoder_from_skips_stage_one(splits):
    train_set, _ = splits
    config = TrainConfig(seed=2, **{**SHORT, "encoder_steps": 20, "expert_steps": 10, "gate_steps": 5})
    first = train(train_set, config, MODEL, progress=False)
    second = train(train_set, config.replace(variant="single"), MODEL, progress=False,
                   encoder_from=first.model)
    assert "encoder" not in second.history
    for a, b in zip(first.model.encoder.parameters(), second.model.encoder.parameters()):
        torch.testing.assert_close(a, b)
    with pytest.raises(InputError, match="own task encoder"):   # GS-MoE's encoder had TGS, no-tgs must not
        train(train_set, config.replace(variant="gsmoe-no-tgs", encoder_tgs_from=0.5), MODEL, progress=False,
              encoder_from=first.model)


def test_tgs_supervises_the_task_encoder_after_its_warm_up(splits, monkeypatch):
    """Stage 1 (``variant='urdmu'``) with the TGS term, without it (``tgs_weight=0``) and with the
    warm-up covering the whole stage (``encoder_tgs_from=1``): the warm-up steps are UR-DMU's loss
    alone, after it the term is the BCE between the encoder's coarse scores and the splats fitted to
    them (checked against ``tgs_loss`` on the same scores), and it changes the encoder's weights."""
    train_module = importlib.import_module("moe_zoo.vad.train")   # the package's `train` is the function
    train_set, _ = splits
    assert TrainConfig().encoder_tgs_from == 1.0          # the built-in recipe: off (README); presets: 0.5
    config = TrainConfig(variant="urdmu", seed=3, **{**SHORT, "encoder_steps": 12}, encoder_ema=0.0,
                         encoder_tgs_from=0.5)
    seen = []
    original = train_module.tgs_loss

    def spy(scores, weight=None, **options):
        value = original(scores, weight, **options)
        seen.append((scores.detach().clone(), weight.clone(), value.item(), options))
        return value

    monkeypatch.setattr(train_module, "tgs_loss", spy)
    guided = train(train_set, config, MODEL, progress=False)
    assert len(seen) == 6 and len(guided.history["encoder_tgs"]) == 6           # steps 6-11 of 12
    for scores, weight, value, options in seen:
        assert scores.shape == (2 * SHORT["batch_size"], T) and weight.tolist() == [0.0] * 8 + [1.0] * 8
        assert options == {"prominence": config.tgs_prominence, "rel_height": config.tgs_rel_height}
        assert value == pytest.approx(original(scores, weight, **options).item()) and value > 0
    seen.clear()
    plain = train(train_set, config.replace(tgs_weight=0.0), MODEL, progress=False)
    warm_only = train(train_set, config.replace(encoder_tgs_from=1.0), MODEL, progress=False)
    assert not seen and plain.history["encoder_tgs"] == warm_only.history["encoder_tgs"] == []
    for a, b in zip(plain.model.encoder.parameters(), warm_only.model.encoder.parameters()):
        torch.testing.assert_close(a, b)                      # TGS off = warm-up only: identical
    changed = [not torch.allclose(a, c) for a, c in zip(plain.model.encoder.parameters(),
                                                         guided.model.encoder.parameters())]
    assert any(changed)                                       # the TGS term reached the encoder
    with pytest.raises(InputError, match="encoder_tgs_from"):
        TrainConfig(encoder_tgs_from=1.5)


def test_the_gate_kl_term_pulls_the_gate_towards_the_plain_average(splits):
    """Same encoder and experts (gate-only variant), gate trained with and without ``L_kl``."""
    train_set, _ = splits
    short = {**SHORT, "encoder_steps": 30, "expert_steps": 20, "gate_steps": 60, "head_lr": 1e-2}
    base = train(train_set, TrainConfig(seed=2, gate_uniform_kl=10.0, **short), MODEL, progress=False).model
    free = train(train_set, TrainConfig(variant="gsmoe-free-gate", seed=2, **short), MODEL, progress=False,
                 encoder_from=base).model
    x = torch.as_tensor(np.stack([v.load() for v in train_set.videos]))

    def distance_from_uniform(model) -> float:
        with torch.inference_mode():
            weights = model(x).gate_weights
        return float((weights - 1 / weights.shape[-1]).abs().mean())

    assert torch.equal(base.experts.qkv.weight, free.experts.qkv.weight)   # only the gate differs
    assert distance_from_uniform(base) < 0.5 * distance_from_uniform(free)
