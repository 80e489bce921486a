"""The camera-label rules: the default manoeuvre rule (the DriveMoE authors' Bench2Drive heuristics,
adapted to highway-env) and the optional agent rule; the intersection's command texts."""

import numpy as np
import pytest

from moe_zoo.core import InputError
from moe_zoo.driving import cli
from moe_zoo.driving.cameras import ROUTED_CAMERAS
from moe_zoo.driving.env import DrivingEnv, normalise_action
from moe_zoo.driving.planner import CAMERA_RULES, label_from_agents, label_from_manoeuvre, plan
from moe_zoo.driving.scenarios import INTERSECTION_COMMANDS


def view(index: int) -> str:
    return ROUTED_CAMERAS[index]


def test_manoeuvre_rule_cases_and_order():
    assert view(label_from_manoeuvre()) == "back"                          # the authors' NULL -> CAM_BACK
    assert view(label_from_manoeuvre(turn=1)) == "front_left"
    assert view(label_from_manoeuvre(turn=-1)) == "front_right"
    assert view(label_from_manoeuvre(lane_change_side=1)) == "back_left"    # same-direction lane change
    assert view(label_from_manoeuvre(lane_change_side=-1)) == "back_right"
    assert view(label_from_manoeuvre(merge="ramp")) == "front_left"
    assert view(label_from_manoeuvre(merge="lane")) == "back_left"
    assert view(label_from_manoeuvre(turn=-1, lane_change_side=1, merge="ramp")) == "front_right"
    assert view(label_from_manoeuvre(lane_change_side=-1, merge="lane")) == "back_right"


def test_agent_rule_takes_the_first_agent_outside_the_front_view():
    agents = np.array([[20.0, 0.0], [-10.0, 0.5], [5.0, 10.0]])           # ahead (front view), behind, ahead-left
    assert view(label_from_agents(agents)) == "back"
    assert view(label_from_agents(agents[[0, 2]])) == "front_left"
    assert view(label_from_agents(agents[:1], lane_change_side=-1)) == "front_right"


def _labels(scenario: str, seed: int, rule: str, steps: int) -> list[str]:
    env = DrivingEnv(scenario, cameras=False, camera_rule=rule)
    env.reset(seed=seed)
    out = []
    for _ in range(steps):
        decision = env.planner_decision()
        out.append(view(decision.camera))
        _, _, terminated, truncated, _ = env.step(normalise_action(decision.acceleration, decision.steering))
        if terminated or truncated:
            break
    env.close()
    return out


def _seed_for(destination: str) -> int:
    """The first episode seed whose intersection destination is ``destination`` (env.reset's draw)."""
    return next(s for s in range(100) if np.random.default_rng(s).choice(list(INTERSECTION_COMMANDS)) == destination)


# highway-env's intersection: from o0, il1 -> o1 is its "left turn" lane, il3 -> o3 its "right turn"
@pytest.mark.parametrize(("destination", "toward", "away"), [("o1", "front_left", "front_right"),
                                                              ("o3", "front_right", "front_left")])
def test_manoeuvre_rule_names_the_exit_side_when_turning_at_the_intersection(destination, toward, away):
    labels = _labels("intersection", _seed_for(destination), "manoeuvre", 40)
    assert toward in labels and away not in labels
    assert labels[0] == "back"                                   # approaching, not yet turning


def test_manoeuvre_rule_on_the_merge_ramp_and_the_rules_share_the_drive():
    manoeuvre = _labels("merge", 0, "manoeuvre", 25)
    agent = _labels("merge", 0, "agent", 25)
    assert manoeuvre[0] == "front_left"                          # on the ramp: the merge point ahead-left
    assert len(manoeuvre) == len(agent) and manoeuvre != agent   # same driving, other labels


def test_unknown_camera_rule():
    with pytest.raises(InputError, match="camera_rule"):
        DrivingEnv("highway", camera_rule="nearest")
    env = DrivingEnv("highway", cameras=False)
    env.reset(seed=0)
    with pytest.raises(InputError, match="camera_rule"):
        plan(env.ego, "highway", 3, "nearest")
    env.close()


def test_cli_knows_the_planners_camera_rules():
    assert cli.CAMERA_RULES == CAMERA_RULES


@pytest.mark.parametrize("destination", sorted(INTERSECTION_COMMANDS))
def test_intersection_command_text_matches_the_routes_geometry(destination):
    """The text names the turn that highway-env's route to ``destination`` makes: the heading change
    from the first lane's start to the last lane's end (heading grows clockwise, y down: left < 0)."""
    env = DrivingEnv("intersection", cameras=False)
    env.reset(seed=_seed_for(destination))
    network, route = env.ego.road.network, env.ego.route
    assert route[-1][1] == destination
    first, last = network.get_lane(route[0]), network.get_lane(route[-1])
    change = np.degrees((last.heading_at(last.length) - first.heading_at(0.0) + np.pi) % (2 * np.pi) - np.pi)
    env.close()
    expected = "turn left" if change < -60 else "turn right" if change > 60 else "go straight" if abs(change) < 30 else "?"
    assert INTERSECTION_COMMANDS[destination].startswith(expected)
