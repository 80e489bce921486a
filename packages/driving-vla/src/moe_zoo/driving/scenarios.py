"""highway-env scenarios, the ego vehicle class and the route each scenario asks the ego to drive.

Every scenario is a stock highway-env environment (configured, never edited) whose ego vehicle is an
:class:`EgoVehicle`: it drives with the continuous (acceleration, steering) command it is given,
and it carries the IDM/MOBIL machinery that the privileged planner (``planner.py``) queries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moe_zoo.core import InputError

POLICY_HZ = 5
SIM_HZ = 10
ACCEL_RANGE = (-6.0, 4.0)
STEER_RANGE = (-np.pi / 4, np.pi / 4)


@dataclass(frozen=True)
class Scenario:
    """``env_id`` plus config overrides; ``time_limit`` in seconds; ``goal_m`` caps the route length
    that counts as "route completed" (``None``: the whole planned route)."""

    name: str
    env_id: str
    config: dict
    time_limit: float
    goal_m: float | None
    command: str


SCENARIOS: dict[str, Scenario] = {
    "highway": Scenario("highway", "highway-v0",
                        {"lanes_count": 3, "vehicles_count": 14, "vehicles_density": 1.3, "ego_spacing": 1.5},
                        14.0, 220.0, "follow the lane and overtake slower traffic"),
    "merge": Scenario("merge", "merge-v0", {}, 14.0, 230.0, "merge onto the highway"),
    "roundabout": Scenario("roundabout", "roundabout-v0", {}, 16.0, None, "drive through the roundabout and exit north"),
    "intersection": Scenario("intersection", "intersection-v0",
                             {"initial_vehicle_count": 6, "spawn_probability": 0.5}, 16.0, None,
                             "cross the intersection"),
    "exit": Scenario("exit", "exit-v0", {"lanes_count": 3, "vehicles_count": 6, "vehicles_density": 1.0},
                     22.0, None, "take the highway exit"),
}
INTERSECTION_COMMANDS = {"o1": "turn left at the intersection", "o2": "go straight through the intersection",
                         "o3": "turn right at the intersection"}


def check_scenarios(names) -> list[str]:
    """Scenario names validated (an unknown one is an :class:`InputError` listing the known ones)."""
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise InputError("scenarios: give at least one of " + ", ".join(SCENARIOS))
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise InputError(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    return names


def _ego_class():
    from highway_env.vehicle.behavior import IDMVehicle
    from highway_env.vehicle.kinematics import Vehicle

    class EgoVehicle(IDMVehicle):
        """IDM/MOBIL machinery for the planner, but driven only by the command it is given."""

        def act(self, action=None):
            Vehicle.act(self, action)

    return EgoVehicle


IDM_CLASS_PARAMETERS = ("DISTANCE_WANTED", "COMFORT_ACC_MAX", "COMFORT_ACC_MIN")
_idm_defaults: dict[str, float] = {}


def restore_idm_defaults() -> None:
    """Put highway-env's ``IDMVehicle`` class parameters back to the library's values.

    ``intersection-v0`` sets ``DISTANCE_WANTED``, ``COMFORT_ACC_MAX`` and ``COMFORT_ACC_MIN`` on the
    class itself when it builds its traffic, so without this every scenario driven later in the same
    process (its traffic and the planner's IDM) would run with the intersection's values. Called
    before every environment is built (highway-env resets an environment when it builds it) and
    before every reset; the values are those found the first time it runs, so before any
    environment of the process exists."""
    from highway_env.vehicle.behavior import IDMVehicle

    if not _idm_defaults:
        _idm_defaults.update({k: getattr(IDMVehicle, k) for k in IDM_CLASS_PARAMETERS})
    for k, v in _idm_defaults.items():
        setattr(IDMVehicle, k, v)


def make_env(scenario: str, *, render: bool = True):
    """A highway-env environment for ``scenario`` with an :class:`EgoVehicle` ego and continuous actions
    (``[-1, 1]^2`` mapped to :data:`ACCEL_RANGE` m/s^2 and :data:`STEER_RANGE` rad)."""
    import gymnasium as gym
    import highway_env  # noqa: F401  (registers the environments)
    from highway_env.envs.common.action import ContinuousAction

    spec = SCENARIOS[check_scenarios(scenario)[0]]
    restore_idm_defaults()          # before gym.make: building intersection-v0 already changes them
    env = gym.make(spec.env_id, render_mode="rgb_array" if render else None)
    inner = env.unwrapped
    ego_class = _ego_class()

    class EgoAction(ContinuousAction):
        @property
        def vehicle_class(self):
            return ego_class

    action_config = {"acceleration_range": ACCEL_RANGE, "steering_range": STEER_RANGE}
    original_define_spaces = inner.define_spaces

    def define_spaces() -> None:
        original_define_spaces()
        inner.action_type = EgoAction(inner, **action_config)
        inner.action_space = inner.action_type.space()

    inner.define_spaces = define_spaces
    # the stock rewards assume discrete actions (merge-v0); this package scores episodes itself
    inner._rewards = lambda action: {}
    inner._reward = lambda action: 0.0
    inner.configure({
        **spec.config, "action": {"type": "ContinuousAction"}, "policy_frequency": POLICY_HZ,
        "simulation_frequency": SIM_HZ, "duration": 10_000, "offscreen_rendering": True,
        "screen_width": 300, "screen_height": 300, "scaling": 3.5, "centering_position": [0.5, 0.5],
        "offroad_terminal": False, "real_time_rendering": False,
    })
    return env
