"""CLI verbs, argument errors, the registry and checkpoints of the package's models."""

import argparse

import pytest
import torch

from moe_zoo.core import create_model, list_models, load_model, save_checkpoint
from moe_zoo.driving.cli import configure


def parser():
    p = argparse.ArgumentParser()
    configure(p)
    return p


def test_verbs_and_bad_scenario(capsys):
    p = parser()
    for verb in ("collect", "train", "eval", "drive", "bench", "demo"):
        assert p.parse_args([verb]).verb == verb
    with pytest.raises(SystemExit):
        p.parse_args(["eval", "--scenarios", "highway,parking"])
    assert "unknown scenario" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        p.parse_args(["collect", "--episodes", "0"])


def test_eval_scores_the_router_against_the_given_camera_rule(monkeypatch):
    from moe_zoo.driving import closed_loop

    seen = {}

    class Called(Exception):
        pass

    def fake_evaluate(model, scenarios, episodes, *, seed, camera_rule):
        seen["camera_rule"] = camera_rule
        raise Called

    monkeypatch.setattr(closed_loop, "evaluate", fake_evaluate)
    args = parser().parse_args(["eval", "--camera-rule", "agent"])
    with pytest.raises(Called):
        args.func(args)
    assert seen["camera_rule"] == "agent"
    assert parser().parse_args(["eval"]).camera_rule == "manoeuvre"
    with pytest.raises(SystemExit):
        parser().parse_args(["eval", "--camera-rule", "nearest"])


def test_registry_and_checkpoint_round_trip(tmp_path):
    assert {"drivemoe", "drive-pi0-lite-front", "drive-pi0-lite-all", "drivemoe-no-vision-moe",
            "drivemoe-no-action-moe", "driving-bc-mlp"} <= set(list_models())
    model = create_model("drivemoe", d_model=16, n_heads=2, pca_dim=8, expert_hidden=8, router_hidden=16)
    with torch.no_grad():
        model.feat_mean.normal_()
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    back = load_model(path)
    assert back.config == model.config and torch.equal(back.feat_mean, model.feat_mean)
