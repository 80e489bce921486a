"""``DrivingEnv``: a gymnasium environment over one highway-env scenario with six cameras.

Observation (a dict, see :data:`OBSERVATION_KEYS`):

- ``cameras``   uint8 ``[6, 64, 64, 3]``, order :data:`~moe_zoo.driving.cameras.CAMERAS`;
- ``history``   float32 ``[5, 10]`` proprioception, newest first, in the current ego frame (x ahead,
  y left): past position x, y (m), cos/sin of the heading change, speed (m/s), commanded
  acceleration (m/s^2) and steering (rad), lateral offset from the lane centre (m, left +),
  heading error to the lane (rad), on-road flag;
- ``command``   int, index of the navigation command's text in :data:`COMMANDS`;
- ``command_point`` float32 ``[2]``: the route point 30 m ahead, ego frame (Bench2Drive's far command);
- ``kinematics`` float32 ``[8, 7]``: nearest vehicles within 60 m (presence, x, y, vx, vy, cos, sin
  of the relative heading), ego frame; for the behaviour-cloning baseline only.

Action: ``[acceleration, steering]`` in ``[-1, 1]`` (mapped to the scenario's physical ranges).
``info`` carries the episode's bookkeeping: route completion, collision, off-road, off-route,
the planner's skill and camera labels for this state (for router accuracy), and ``done_reason``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from moe_zoo.core import InputError
from moe_zoo.driving.cameras import CAMERAS, VIEW_SIZE, render_views
from moe_zoo.driving.planner import CAMERA_RULES, DEFAULT_CAMERA_RULE, PlannerDecision, plan, to_ego
from moe_zoo.driving.scenarios import (
    ACCEL_RANGE,
    INTERSECTION_COMMANDS,
    POLICY_HZ,
    SCENARIOS,
    STEER_RANGE,
    check_scenarios,
    make_env,
    restore_idm_defaults,
)

HISTORY, PROPRIO_DIM, N_AGENTS, AGENT_DIM = 5, 10, 8, 7
COMMAND_AHEAD_M = 30.0
COMMANDS = tuple(dict.fromkeys([s.command for s in SCENARIOS.values()] + list(INTERSECTION_COMMANDS.values())))
OBSERVATION_KEYS = ("cameras", "history", "command", "command_point", "kinematics")
EXIT_GOAL_M = 40.0


def normalise_action(acceleration: float, steering: float) -> np.ndarray:
    """Physical (m/s^2, rad) -> the env's ``[-1, 1]^2`` action."""
    a = 2 * (acceleration - ACCEL_RANGE[0]) / (ACCEL_RANGE[1] - ACCEL_RANGE[0]) - 1
    s = 2 * (steering - STEER_RANGE[0]) / (STEER_RANGE[1] - STEER_RANGE[0]) - 1
    return np.clip(np.array([a, s], dtype=np.float32), -1, 1)


def physical_action(action: np.ndarray) -> tuple[float, float]:
    a, s = np.clip(np.asarray(action, dtype=float), -1, 1)
    return (ACCEL_RANGE[0] + (a + 1) / 2 * (ACCEL_RANGE[1] - ACCEL_RANGE[0]),
            STEER_RANGE[0] + (s + 1) / 2 * (STEER_RANGE[1] - STEER_RANGE[0]))


def _gym():
    import gymnasium

    return gymnasium


class DrivingEnv(_gym().Env):
    """One scenario, six cameras, route bookkeeping; ``planner_decision()`` gives the privileged expert."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": POLICY_HZ}

    def __init__(self, scenario: str = "highway", *, cameras: bool = True, camera_rule: str = DEFAULT_CAMERA_RULE) -> None:
        gym = _gym()
        self.scenario = check_scenarios(scenario)[0]
        if camera_rule not in CAMERA_RULES:
            raise InputError(f"unknown camera_rule {camera_rule!r}; known: {', '.join(CAMERA_RULES)}")
        self.camera_rule = camera_rule
        self.spec_ = SCENARIOS[self.scenario]
        self.with_cameras = cameras
        self.env = make_env(self.scenario, render=True)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = gym.spaces.Dict({
            "cameras": gym.spaces.Box(0, 255, (len(CAMERAS), VIEW_SIZE, VIEW_SIZE, 3), np.uint8),
            "history": gym.spaces.Box(-np.inf, np.inf, (HISTORY, PROPRIO_DIM), np.float32),
            "command": gym.spaces.Discrete(len(COMMANDS)),
            "command_point": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
            "kinematics": gym.spaces.Box(-np.inf, np.inf, (N_AGENTS, AGENT_DIM), np.float32),
        })
        self.frame: np.ndarray | None = None

    # -- episode set-up ------------------------------------------------------------------
    @property
    def ego(self):
        return self.env.unwrapped.vehicle

    @property
    def road(self):
        return self.env.unwrapped.road

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        inner = self.env.unwrapped
        if self.scenario == "intersection":
            rng = np.random.default_rng(seed)
            inner.config["destination"] = str(rng.choice(list(INTERSECTION_COMMANDS)))
        restore_idm_defaults()          # intersection-v0 changes them class-wide (see scenarios.py)
        self.env.reset(seed=seed)
        ego = self.ego
        ego.target_speed = 25.0 if self.scenario in ("highway", "merge", "exit") else ego.target_speed
        if self.scenario == "merge":
            self._put_on_ramp(ego)
        if self.scenario == "exit":
            ego.plan_route_to("exit")
        self.command = (INTERSECTION_COMMANDS[inner.config["destination"]] if self.scenario == "intersection"
                        else self.spec_.command)
        self._route_edges()
        self.t = 0
        self.progress = 0.0
        self.edge_pos = 0
        self.events = {"collision": False, "off_road": False, "off_route": False}
        self.poses = [(ego.position.copy(), ego.heading, ego.speed, 0.0, 0.0)] * HISTORY
        self._update_progress()
        self.start_progress = self.progress
        return self._observation(), self._info(None)

    def _put_on_ramp(self, ego) -> None:
        lane_index = ("j", "k", 0)
        lane = self.road.network.get_lane(lane_index)
        ego.position = lane.position(40.0, 0.0)
        ego.heading = lane.heading_at(40.0)
        ego.speed = 20.0
        ego.lane_index, ego.lane = lane_index, lane
        ego.target_lane_index = lane_index
        ego.route = [("j", "k", 0), ("k", "b", 0), ("b", "c", 2), ("c", "d", 1)]

    def _route_edges(self) -> None:
        ego = self.ego
        route = [tuple(r[:2]) for r in (ego.route or [])] or [ego.lane_index[:2]]
        if ego.lane_index[:2] not in route:
            route.insert(0, ego.lane_index[:2])
        self.edges = list(dict.fromkeys(route))
        net = self.road.network
        self.lengths = [net.get_lane((a, b, 0)).length for a, b in self.edges]
        starts = np.concatenate([[0.0], np.cumsum(self.lengths)[:-1]])
        self.edge_starts = starts
        if self.spec_.goal_m is not None:
            self.goal_abs = None       # relative goal, set after the first progress update
        else:
            last = min(self.lengths[-1], EXIT_GOAL_M if self.scenario == "exit" else 25.0)
            self.goal_abs = float(starts[-1] + last)

    def _update_progress(self) -> None:
        """Progress along the route's lanes (the closest-lane index is unreliable where lanes overlap)."""
        ego = self.ego
        graph = self.road.network.graph
        for k in range(self.edge_pos, min(self.edge_pos + 2, len(self.edges))):
            a, b = self.edges[k]
            for lane in graph[a][b]:
                s, lateral = lane.local_coordinates(ego.position)
                if -4.0 <= s <= lane.length + 4.0 and abs(lateral) <= lane.width_at(s) / 2 + 1.0:
                    self.edge_pos = k
                    self.progress = max(self.progress, float(self.edge_starts[k] + np.clip(s, 0, self.lengths[k])))
                    return
        if self.t > 0 and ego.on_road:
            self.events["off_route"] = True

    @property
    def goal(self) -> float:
        if self.goal_abs is not None:
            return self.goal_abs
        return self.start_progress + float(self.spec_.goal_m)

    @property
    def route_completion(self) -> float:
        span = self.goal - self.start_progress
        return float(np.clip((self.progress - self.start_progress) / max(span, 1e-6), 0.0, 1.0))

    # -- stepping ------------------------------------------------------------------------
    def planner_decision(self) -> PlannerDecision:
        lanes = self.env.unwrapped.config.get("lanes_count", 3)
        return plan(self.ego, self.scenario, lanes, self.camera_rule)

    def step(self, action):
        action = np.asarray(action, dtype=np.float32).reshape(-1)
        if action.shape != (2,) or not np.isfinite(action).all():
            raise InputError(f"DrivingEnv.step: expected a finite action [acceleration, steering], got {action!r}")
        accel, steer = physical_action(action)
        self.env.step(np.clip(action, -1, 1))
        self.t += 1
        ego = self.ego
        self.poses = [(ego.position.copy(), ego.heading, ego.speed, accel, steer), *self.poses[:HISTORY - 1]]
        self._update_progress()
        self.events["collision"] |= bool(ego.crashed)
        self.events["off_road"] |= not ego.on_road
        done_reason = None
        if self.events["collision"]:
            done_reason = "collision"
        elif self.events["off_road"]:
            done_reason = "off_road"
        elif self.events["off_route"]:
            done_reason = "off_route"
        elif self.route_completion >= 1.0:
            done_reason = "completed"
        truncated = done_reason is None and self.t >= self.spec_.time_limit * POLICY_HZ
        if truncated:
            done_reason = "timeout"
        return self._observation(), self.route_completion, done_reason not in (None, "timeout"), truncated, \
            self._info(done_reason)

    def _info(self, done_reason) -> dict:
        return {"scenario": self.scenario, "route_completion": self.route_completion, "done_reason": done_reason,
                **self.events, "t": self.t, "speed": float(self.ego.speed)}

    # -- observation ---------------------------------------------------------------------
    def render(self) -> np.ndarray:
        return self.env.render()

    def _observation(self) -> dict:
        ego = self.ego
        if self.with_cameras:
            self.frame = self.env.render()
            surface = self.env.unwrapped.viewer.sim_surface
            cameras = render_views(self.frame, ego.position, ego.heading, np.asarray(surface.origin),
                                   surface.scaling)
        else:
            cameras = np.zeros(self.observation_space["cameras"].shape, np.uint8)
        return {"cameras": cameras, "history": self._history(), "command": COMMANDS.index(self.command),
                "command_point": self._command_point(), "kinematics": self._kinematics()}

    def _history(self) -> np.ndarray:
        ego = self.ego
        lane = ego.lane
        rows = []
        for position, heading, speed, accel, steer in self.poses:
            xy = to_ego(position, ego.position, ego.heading)
            s, lat = lane.local_coordinates(position)
            err = np.arctan2(np.sin(heading - lane.heading_at(s)), np.cos(heading - lane.heading_at(s)))
            rows.append([xy[0], xy[1], np.cos(heading - ego.heading), np.sin(heading - ego.heading), speed, accel,
                         steer, -lat, -err, float(lane.on_lane(position))])
        return np.asarray(rows, dtype=np.float32)

    def _command_point(self) -> np.ndarray:
        target = min(self.progress + COMMAND_AHEAD_M, self.edge_starts[-1] + self.lengths[-1])
        k = int(np.searchsorted(self.edge_starts, target, side="right") - 1)
        a, b = self.edges[k]
        lanes = self.road.network.graph[a][b]
        lane_id = min(self.ego.target_lane_index[2], len(lanes) - 1) if (a, b) == self.ego.lane_index[:2] else 0
        if self.scenario == "exit" and (a, b) in (("0", "1"), ("1", "2")):
            lane_id = len(lanes) - 1
        point = lanes[lane_id].position(target - self.edge_starts[k], 0.0)
        return to_ego(point, self.ego.position, self.ego.heading).astype(np.float32)

    def _kinematics(self) -> np.ndarray:
        ego = self.ego
        out = np.zeros((N_AGENTS, AGENT_DIM), np.float32)
        others = [v for v in self.road.vehicles if v is not ego]
        if not others:
            return out
        pos = np.stack([v.position for v in others])
        dist = np.linalg.norm(pos - ego.position, axis=1)
        order = [i for i in np.argsort(dist) if dist[i] < 60.0][:N_AGENTS]
        for row, i in enumerate(order):
            v = others[i]
            xy = to_ego(v.position, ego.position, ego.heading)
            vel = to_ego(ego.position + v.velocity - ego.velocity, ego.position, ego.heading)
            out[row] = [1.0, *xy, *vel, np.cos(v.heading - ego.heading), -np.sin(v.heading - ego.heading)]
        return out
