"""Bad inputs (issue 25): impossible histograms, out-of-range counts, numeric options, resumes of
another run's state. Each must give a clear error (or a flagged answer), never a silent one."""

import pytest
import torch

from moe_zoo import flidar
from moe_zoo.core import InputError
from moe_zoo.core.cli import main
from moe_zoo.flidar.train import TrainConfig, train

TINY = {"n_train": 256, "n_val": 64, "batch_size": 64, "expert_steps": 4, "critic_steps": 2, "joint_steps": 2}


@pytest.fixture(scope="module")
def histograms():
    return flidar.simulate(8, seed=5).histograms


@pytest.mark.parametrize(("change", "message"), [
    (lambda h: h.index_fill(0, torch.tensor([2]), -1.0), "finite and non-negative"),
    (lambda h: h.index_fill(0, torch.tensor([1]), float("nan")), "finite and non-negative"),
    (lambda h: h.index_fill(0, torch.tensor([1]), float("inf")), "finite and non-negative"),
    (lambda h: h * 1e30, "32-bit TCSPC"),
    (lambda h: h.index_fill(0, torch.tensor([3, 6]), 0.0), r"rows \[3, 6\] hold no photons"),
    (lambda h: h[:, :200], r"expected \[N, 256\]"),
    (lambda h: h[:0], r"expected \[N, 256\]"),
])
def test_physically_impossible_histograms_are_rejected(histograms, change, message):
    with pytest.raises(InputError, match=message):
        flidar.predict(change(histograms))


def test_non_numeric_input_is_rejected():
    with pytest.raises(InputError, match="not numeric"):
        flidar.predict([["a"] * 256])


@pytest.mark.parametrize("scale", [1e3, 0.005])
def test_counts_outside_the_training_range_get_maximal_uncertainty_and_a_warning(histograms, scale):
    """Far more (1e7) or far fewer (~100) photons than in training: the answer is flagged, u = 1."""
    odd = (histograms[:4] * scale).round().clamp_min(1.0)
    mixed = torch.cat([histograms[4:], odd])
    with pytest.warns(UserWarning, match="4 of 8 histograms have total counts outside the training range"):
        result = flidar.predict(mixed)
    assert result.in_training_range.tolist() == [True] * 4 + [False] * 4
    assert torch.all(result.depth_uncertainty[4:] == 1.0) and torch.all(result.lifetime_uncertainty[4:] == 1.0)
    assert torch.all(result.depth_uncertainty[:4] < 1.0)
    assert result.rows()[5]["in_training_range"] is False


@pytest.mark.parametrize(("override", "message"), [
    ({"expert_steps": -5}, "steps and seed >= 0"),
    ({"expert_steps": 0, "critic_steps": 0, "joint_steps": 0}, "nothing would be trained"),
    ({"expert_steps": 0}, "needs expert_steps >= 1"),
    ({"seed": -1}, "seed=-1"),
    ({"n_train": 0}, "n_train=0"),
    ({"batch_size": 512}, "exceeds n_train"),
    ({"lr": float("nan")}, "lr must be a finite number > 0"),
    ({"lr": 0.0}, "lr must be a finite number > 0"),
    ({"physics_weight": -1.0}, "physics_weight must be a finite number >= 0"),
    ({"expert_steps": 2.5}, "must be an integer"),
])
def test_train_config_validates_every_number(override, message):
    with pytest.raises(InputError, match=message):
        TrainConfig(**{**TINY, **override})


@pytest.mark.parametrize("argv", [
    ["train", "--expert-steps", "-5"], ["train", "--seed", "-1"], ["train", "--lr", "nan"], ["train", "--threads", "0"],
    ["train", "--n-train", "abc"], ["simulate", "--n", "0", "--out", "x.npz"], ["predict", "x.npz", "--limit", "0"],
    ["eval", "--n", "-3"], ["demo", "--n", "0"],
])
def test_cli_refuses_bad_numbers_at_the_boundary(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["flidar", *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and ("must be" in err or "expected" in err), err
    assert list(tmp_path.iterdir()) == []   # no checkpoint, no file


def test_cli_refuses_settings_that_train_nothing_and_missing_folders(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    steps = ["--expert-steps", "0", "--critic-steps", "0", "--joint-steps", "0"]
    assert main(["flidar", "train", "--n-train", "256", *steps, "--out", str(out)]) == 2
    assert "nothing would be trained" in capsys.readouterr().err and not out.exists()
    data = tmp_path / "d.npz"
    assert main(["flidar", "simulate", "--n", "4", "--out", str(data)]) == 0
    assert main(["flidar", "predict", str(data), "--csv", str(tmp_path / "missing" / "p.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["flidar", "train", "--out", str(tmp_path / "nowhere" / "m.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_resume_refuses_a_state_of_other_settings_unless_forced(tmp_path):
    state = tmp_path / "run.safetensors"
    config = TrainConfig(kind="cnn", **TINY)
    train(config, state_path=state, progress=False, threads=1)
    for change in ({"seed": 1}, {"n_train": 128}, {"lr": 1e-3}):
        with pytest.raises(InputError, match=f"other settings.*{next(iter(change))}.*--force-restart"):
            train(config.replace(**change), state_path=state, progress=False, threads=1)
    fresh = train(config.replace(seed=1), progress=False, threads=1)
    forced = train(config.replace(seed=1), state_path=state, progress=False, threads=1, force_restart=True)
    for a, b in zip(fresh.model.parameters(), forced.model.parameters()):
        assert torch.equal(a, b)   # started afresh with the new settings, not the old state
    train(config.replace(seed=1), state_path=state, progress=False, threads=1)   # now the state is seed 1's
