"""EvidenceMoE: losses against their formulas, shapes, gradients, and that it learns."""

import importlib
import math

import pytest
import torch
from scipy.special import digamma, gammaln

from moe_zoo.flidar.losses import dirichlet_kl_to_uniform, evidential_loss, physics_consistency_loss
from moe_zoo.flidar.model import (
    EvidenceMoE,
    EvidenceMoEConfig,
    SingleRegressor,
    config_for_simulation,
    physics_windows,
)
from moe_zoo.flidar.simulator import TRAINING_SIMULATION, SimulationConfig, simulate
from moe_zoo.flidar.train import TrainConfig, train


def test_evidential_loss_matches_a_hand_computed_case():
    alpha = torch.tensor([[3.0, 1.5, 1.0]], dtype=torch.float64)
    target = torch.tensor([1])
    # by hand: S = 5.5, p = (6/11, 3/11, 2/11), y = (0, 1, 0)
    s = 5.5
    p = [3.0 / s, 1.5 / s, 1.0 / s]
    y = [0.0, 1.0, 0.0]
    fit = sum((yk - pk) ** 2 + pk * (1 - pk) / (s + 1) for yk, pk in zip(y, p))
    tilde = [3.0, 1.0, 1.0]  # the target's evidence removed
    st = sum(tilde)
    kl = (gammaln(st) - gammaln(3) - sum(gammaln(a) for a in tilde)
          + sum((a - 1) * (digamma(a) - digamma(st)) for a in tilde))
    got = evidential_loss(alpha, target, kl_weight=0.7)
    assert float(got) == pytest.approx(fit + 0.7 * kl, rel=1e-10)
    assert float(evidential_loss(alpha, target, kl_weight=0.0)) == pytest.approx(fit, rel=1e-10)


def test_kl_regulariser_is_zero_only_for_the_uniform_dirichlet():
    assert float(dirichlet_kl_to_uniform(torch.ones(4, dtype=torch.float64))) == pytest.approx(0.0, abs=1e-12)
    assert float(dirichlet_kl_to_uniform(torch.tensor([5.0, 1.0, 1.0, 1.0]))) > 0.1


def test_more_evidence_for_the_right_class_lowers_the_loss():
    target = torch.tensor([0])
    weak, strong = torch.tensor([[2.0, 1.0, 1.0]]), torch.tensor([[20.0, 1.0, 1.0]])
    assert float(evidential_loss(strong, target, 1.0)) < float(evidential_loss(weak, target, 1.0))
    wrong = torch.tensor([[1.0, 20.0, 1.0]])
    assert float(evidential_loss(wrong, target, 1.0)) > float(evidential_loss(weak, target, 1.0))


def test_default_windows_cover_the_physics_windows():
    """The early window spans the earliest IRF onset (widest trained IRF, aligned) to the latest
    peak, the late one the earliest peak to the end."""
    early, late = physics_windows(TRAINING_SIMULATION)
    config = EvidenceMoEConfig()
    assert config.early_window[0] <= early[0] and config.early_window[1] >= early[1]
    assert config.late_window[0] <= late[0] and config.late_window[1] == late[1]
    assert config.early_window[1] - config.early_window[0] <= early[1] - early[0] + 8  # still a narrow window
    assert EvidenceMoEConfig.from_json(config.to_json()) == config


def test_ranges_outside_the_default_windows_get_their_own_physics_windows():
    """Training on a deeper box must not keep the default windows (its peaks come later)."""
    from moe_zoo.flidar.benchmark import KNOWN_TISSUE

    assert config_for_simulation(TRAINING_SIMULATION) == EvidenceMoEConfig()
    assert config_for_simulation(KNOWN_TISSUE).early_window == EvidenceMoEConfig().early_window  # covered
    assert physics_windows(SimulationConfig())[0][0] > physics_windows(TRAINING_SIMULATION)[0][0]  # wide IRFs start earlier
    deep = SimulationConfig(depth_mm=(8.0, 20.0))
    config = config_for_simulation(deep, use_critics=False)
    assert (config.early_window, config.late_window) == physics_windows(deep)
    assert config.early_window[1] > EvidenceMoEConfig().early_window[1] and not config.use_critics
    short = SimulationConfig(n_bins=128)  # a shorter period: the shipped late window would not fit
    assert config_for_simulation(short).late_window == physics_windows(short)[1]


def test_shapes_and_gradients_reach_every_part():
    data = simulate(16, seed=0)
    model = EvidenceMoE()
    out = model(data.histograms)
    assert out.prediction.shape == (16, 2)
    assert out.expert_predictions.shape == (16, 3, 2)
    assert out.alpha.shape == (16, 3, 2, 4) and torch.all(out.alpha >= 1.0)
    assert out.gate_weights.shape == (16, 2, 3)
    assert torch.allclose(out.gate_weights.sum(-1), torch.ones(16, 2))
    assert torch.all((out.uncertainty > 0) & (out.uncertainty <= 1))
    loss = out.prediction.square().sum() + out.alpha.sum() + out.nuisance.sum()
    loss.backward()
    for name in ("experts", "critics", "gates"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads), name
    plain = EvidenceMoE(EvidenceMoEConfig(use_critics=False))
    assert plain.critics is None and plain(data.histograms).alpha is None
    assert SingleRegressor()(data.histograms).shape == (16, 2)


def test_quality_classes_follow_the_thresholds():
    model = EvidenceMoE()
    depth_edges, lifetime_edges = model.config.quality_thresholds
    errors = torch.tensor([[0.0, 0.0], [depth_edges[0] * 0.99, lifetime_edges[0]], [depth_edges[1], lifetime_edges[2] * 1.01],
                           [0.9, 0.9]])
    assert model.quality_class(errors).tolist() == [[0, 0], [0, 1], [2, 3], [3, 3]]


def test_physics_loss_prefers_the_true_parameters_and_has_gradients():
    data = simulate(32, seed=4)
    names = ("depth_mm", "lifetime_ns", "mu_a_per_mm", "mu_sp_per_mm")
    truth = {k: data.params[k].clone().requires_grad_(True) for k in names}
    wrong = {k: (v * 1.3).detach() for k, v in truth.items()}
    at_truth = physics_consistency_loss(truth, data.histograms, SimulationConfig())
    assert float(at_truth.detach()) < float(physics_consistency_loss(wrong, data.histograms, SimulationConfig()))
    assert float(at_truth.detach()) < 2.0  # Pearson chi^2 per bin of a correct model is about 1
    shifted = {k: (v * 1.1 if k in ("depth_mm", "lifetime_ns") else v) for k, v in truth.items()}
    physics_consistency_loss(shifted, data.histograms, SimulationConfig()).backward()
    assert all(math.isfinite(float(truth[k].grad.abs().sum())) and truth[k].grad.abs().sum() > 0
               for k in ("depth_mm", "lifetime_ns"))


def test_evidence_moe_learns_depth_and_lifetime_well_beyond_chance():
    """Predicting the mean of a uniform target gives NRMSE 1/sqrt(12) = 0.29; a short run must beat it clearly."""
    config = TrainConfig(n_train=3000, n_val=512, expert_steps=200, critic_steps=60, joint_steps=100, batch_size=128)
    result = train(config, progress=False, threads=1)
    assert result.metrics["nrmse_lifetime"] < 0.5 / math.sqrt(12)
    assert result.metrics["nrmse_depth"] < 0.75 / math.sqrt(12)


def test_train_takes_its_histograms_from_a_given_simulator():
    """``simulator=`` replaces the default forward model for both the training and validation sets."""
    calls = []

    def narrow_lifetimes(n, config, seed):
        calls.append((n, config, seed))
        return simulate(n, config.replace(lifetime_ns=(0.9, 1.0)), seed=seed)

    config = TrainConfig(kind="cnn", n_train=256, n_val=64, batch_size=64, expert_steps=2, critic_steps=0,
                         joint_steps=0, seed=3)
    result = train(config, progress=False, threads=1, simulator=narrow_lifetimes)
    assert calls == [(256, config.simulation, 3), (64, config.simulation, 4)]
    default = train(config, progress=False, threads=1)
    # validation on lifetimes of 0.9-1.0 ns: NRMSE over a 0.1 ns range, far above the default 0.3-1.5 ns one
    assert result.metrics["nrmse_lifetime"] > 3 * default.metrics["nrmse_lifetime"]


def test_resume_after_an_interruption_is_bit_exact(tmp_path, monkeypatch):
    """A run killed right after its mid-stage save (step 200, in the joint stage) and resumed from
    the state file ends with exactly the weights of an uninterrupted run."""
    train_module = importlib.import_module("moe_zoo.flidar.train")   # the package exports a train() of that name

    config = TrainConfig(n_train=512, n_val=64, batch_size=64, expert_steps=10, critic_steps=10, joint_steps=190)
    reference = train(config, progress=False, threads=1)
    real_save = train_module.save_training_state

    def save_then_die(*args, step, **kwargs):
        real_save(*args, step=step, **kwargs)
        if step == 200:
            raise KeyboardInterrupt

    state = tmp_path / "state.safetensors"
    monkeypatch.setattr(train_module, "save_training_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(config, state_path=state, progress=False, threads=1)
    monkeypatch.setattr(train_module, "save_training_state", real_save)
    resumed = train(config, state_path=state, progress=False, threads=1)
    assert resumed.history[0]["step"] == 200   # it did resume, not restart
    for (name, a), b in zip(reference.model.named_parameters(), resumed.model.parameters()):
        assert torch.equal(a, b), name
