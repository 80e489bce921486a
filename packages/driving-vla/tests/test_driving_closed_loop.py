"""The environment, the policy API and a 2-episode closed-loop smoke run."""

import numpy as np
import pytest
import torch

from moe_zoo.core import InputError
from moe_zoo.driving.closed_loop import EvalReport, evaluate, run_episode
from moe_zoo.driving.env import DrivingEnv
from moe_zoo.driving.model import BCMLP, DriveMoE, DriveMoEConfig
from moe_zoo.driving.policy import DrivingPolicy

TINY = DriveMoEConfig(d_model=16, n_heads=2, pca_dim=8, expert_hidden=8, router_hidden=16, context_layers=1,
                      action_layers=2, moe_layers=1)


def test_env_observation_and_planner_labels():
    env = DrivingEnv("highway")
    obs, _ = env.reset(seed=3)
    assert obs["cameras"].shape == (6, 64, 64, 3) and obs["cameras"].dtype == np.uint8
    assert obs["history"].shape == (5, 10) and obs["kinematics"].shape == (8, 7)
    assert env.observation_space.contains(obs)
    assert obs["cameras"].std() > 0                       # rendered, not black frames
    decision = env.planner_decision()
    assert 0 <= decision.camera < 5 and 0 <= decision.skill < 7
    with pytest.raises(InputError):
        env.step([0.0, np.nan])
    env.close()


def test_intersection_does_not_leak_its_idm_parameters_into_later_scenarios():
    from highway_env.vehicle.behavior import IDMVehicle

    from moe_zoo.driving.scenarios import IDM_CLASS_PARAMETERS

    def params():
        return [getattr(IDMVehicle, k) for k in IDM_CLASS_PARAMETERS]

    DrivingEnv("highway").reset(seed=0)
    before = params()
    env = DrivingEnv("intersection")
    env.reset(seed=0)
    assert params() != before                      # highway-env sets them class-wide for its intersection
    DrivingEnv("highway").reset(seed=0)
    assert params() == before


def test_idm_defaults_are_taken_before_a_first_intersection_env_is_built():
    """highway-env resets an env when it builds it, so a process whose first env is an intersection
    must take the library's values before that (else it keeps the intersection's as "defaults")."""
    from highway_env.vehicle.behavior import IDMVehicle

    from moe_zoo.driving import scenarios

    scenarios.restore_idm_defaults()
    library = dict(scenarios._idm_defaults)
    try:
        scenarios._idm_defaults.clear()                  # as in a fresh process
        DrivingEnv("intersection").reset(seed=0)
        DrivingEnv("highway").reset(seed=0)
        assert {k: getattr(IDMVehicle, k) for k in library} == library
    finally:
        scenarios._idm_defaults.update(library)
        scenarios.restore_idm_defaults()


def test_unknown_scenario_and_bad_observation():
    with pytest.raises(InputError, match="unknown scenario"):
        DrivingEnv("parking-lot")
    policy = DrivingPolicy(DriveMoE(TINY))
    obs = {"cameras": np.zeros((5, 64, 64, 3), np.uint8), "history": np.zeros((5, 10)), "command": 0,
           "command_point": np.zeros(2)}
    with pytest.raises(InputError, match="6 camera views"):
        policy.act(obs)


def test_evaluate_passes_the_camera_rule_on():
    with pytest.raises(InputError, match="camera_rule"):
        evaluate("planner", ["merge"], 1, progress=False, camera_rule="nearest")


def test_two_episode_closed_loop_smoke():
    torch.manual_seed(0)
    policy = DrivingPolicy(DriveMoE(TINY))
    report = EvalReport([run_episode(policy, "merge", 1, max_steps=8)[0],
                         run_episode(DrivingPolicy(BCMLP()), "intersection", 2, max_steps=8)[0]])
    for episode in report.episodes:
        assert episode.steps >= 1 and 0.0 <= episode.route_completion <= 1.0
    assert report.episodes[0].camera_total == report.episodes[0].steps     # the router decided every step
    summary = report.summary()
    assert summary["episodes"] == 2 and 0 <= summary["driving_score"] <= 100
    assert policy.last["waypoints"].shape == (10, 2)


def test_planner_reference_completes_a_highway_route():
    result, frames = run_episode("planner", "highway", 5, record=True, max_steps=100)
    assert result.done_reason == "completed" and result.success and result.driving_score == 1.0
    assert frames and frames[0].ndim == 3
