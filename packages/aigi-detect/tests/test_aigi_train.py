"""Both training stages on a tiny set: which parameters each phase trains, the head reset, resuming,
and that the detector learns a known artifact."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from moe_zoo.aigi.data import ImageSet
from moe_zoo.aigi.model import OmniAID
from moe_zoo.aigi.predict import score
from moe_zoo.aigi.train import RECON, TrainConfig, plan_phases, train, training_subset
from moe_zoo.core import InputError

DOMAINS = ("human_animal", "nature", "urban_object")


def _tiny_set(n_per: int = 16, seed: int = 0) -> ImageSet:
    """Smooth random images per domain (domain = colour cast); fakes carry a 2-pixel checkerboard
    (an upsampling artifact), recon fakes a weaker one."""
    rng = np.random.default_rng(seed)
    images, labels, domains, gens = [], [], [], []
    checker = (np.indices((16, 16)).sum(0) % 2)[..., None] * 2 - 1
    for d in range(3):
        for kind in ("real", "gan", RECON):
            base = rng.uniform(0, 1, (n_per, 4, 4, 3)).repeat(4, 1).repeat(4, 2)
            base[..., d] = base[..., d] * 0.5 + 0.5
            amp = {"real": 0.0, "gan": 0.25, RECON: 0.15}[kind]
            images.append(np.clip((base + amp * checker) * 255, 0, 255).astype(np.uint8))
            labels += [int(kind != "real")] * n_per
            domains += [d] * n_per
            gens += [kind] * n_per
    return ImageSet(np.concatenate(images), np.array(labels), np.array(domains), np.array(gens), DOMAINS)


def _snapshot(model: OmniAID) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _changed(before, after) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_phases_follow_the_paper(tiny_clip_config):
    data = _tiny_set(4)
    phases = plan_phases(OmniAID(tiny_clip_config), data, TrainConfig())
    assert [p.expert for p in phases] == [0, 1, 2, 3, None]
    for e in range(3):   # semantic expert e: its own domain, no reconstructions
        assert set(data.domains[phases[e].index]) == {e} and RECON not in data.generators[phases[e].index]
    artifact = phases[3].index
    assert set(data.generators[artifact]) == {"real", RECON}
    assert len(phases[4].index) == len(data)     # stage 2: every image (official: same data paths)


def test_each_phase_trains_only_its_own_parameters(tiny_clip_config, monkeypatch):
    train_module = importlib.import_module("moe_zoo.aigi.train")

    model = OmniAID(tiny_clip_config)
    data = _tiny_set(4)
    changes = []
    heads = []
    original = train_module._run_phase

    def spy(model, data, phase, config, rng, device):
        heads.append(model.head.weight.detach().clone())
        before = _snapshot(model)
        record = original(model, data, phase, config, rng, device)
        changes.append((phase.expert, _changed(before, _snapshot(model))))
        return record

    monkeypatch.setattr(train_module, "_run_phase", spy)
    initial_head = model.head.weight.detach().clone()
    train(model, data, config=TrainConfig(stage1_epochs=1, stage2_epochs=1, batch_size=8))
    for expert, changed in changes:
        assert changed, f"phase {expert} trained nothing"
        if expert is None:
            assert all(k.startswith(("router", "head.")) for k in changed)
        else:
            assert all(k.startswith("head.") or f"_experts.{expert}" in k for k in changed)
            assert any(f"U_experts.{expert}" in k for k in changed)
    assert len(heads) == 5       # head reset before each stage-1 expert and before stage 2 (official)
    for head in heads:
        assert torch.equal(head, initial_head)
    assert not torch.equal(model.head.weight, initial_head)


def test_resume_continues_after_the_last_finished_phase(tiny_clip_config, tmp_path, monkeypatch):
    train_module = importlib.import_module("moe_zoo.aigi.train")

    data = _tiny_set(4)
    config = TrainConfig(stage1_epochs=1, stage2_epochs=1, batch_size=8)
    state = tmp_path / "state.safetensors"
    original = train_module._run_phase
    calls = []

    def failing(model, data, phase, config, rng, device):
        if phase.expert == 2:
            raise KeyboardInterrupt
        calls.append(phase.expert)
        return original(model, data, phase, config, rng, device)

    monkeypatch.setattr(train_module, "_run_phase", failing)
    with pytest.raises(KeyboardInterrupt):
        train(OmniAID(tiny_clip_config), data, config=config, state_path=state)
    assert calls == [0, 1]
    monkeypatch.setattr(train_module, "_run_phase", lambda *a: calls.append(a[2].expert) or original(*a))
    result = train(OmniAID(tiny_clip_config), data, config=config, state_path=state)
    assert calls == [0, 1, 2, 3, None] and len(result.history) == 5
    with pytest.raises(InputError, match="seed"):
        train(OmniAID(tiny_clip_config), data, config=config, state_path=state, seed=1)


def test_the_detector_learns_a_known_artifact_and_generalises_to_held_out_images(tiny_clip_config):
    torch.manual_seed(0)          # the router and head initialisation, whatever ran before this test
    model = OmniAID(tiny_clip_config)
    train(model, _tiny_set(24, seed=0), config=TrainConfig(stage1_epochs=3, stage2_epochs=2, batch_size=16, lr=3e-3))
    test = _tiny_set(16, seed=1)
    test = test.subset(test.generators != RECON)
    probs, gates = score(model, test.images)
    accuracy = ((probs >= 0.5) == test.labels).mean()
    assert accuracy >= 0.8
    # the router learned the domains (router CE), one semantic expert per image
    assert (gates[:, :3].argmax(1) == test.domains).mean() >= 0.8


def test_training_subset_and_domain_checks(tiny_clip_config):
    data = _tiny_set(2)
    assert set(training_subset(data, ["gan"]).generators) == {"real", "gan", RECON}
    with pytest.raises(InputError, match="ddpm"):
        training_subset(data, ["ddpm"])
    with pytest.raises(InputError, match="domains"):
        train(OmniAID(tiny_clip_config.replace(domains=("a", "b", "c"))), data)
