"""The privileged rule-based planner (the demonstrator and the reference) and the labelling rules.

The planner sees the simulator's state: IDM for speed, MOBIL for discretionary lane changes
(highway-env's own models, run on the ego), mandatory lane changes where the route needs them
(the merge ramp, the exit lane; taken when MOBIL's safety criterion holds and the ego need not
brake harder than 4 m/s^2, else the ego slows at 1 m/s^2, down to 15 m/s, until a gap opens), and a conflict check for crossing traffic: every vehicle within
40 m is extrapolated at constant velocity and the ego along its route at constant speed over
3 s (0.25 s steps); a predicted gap under 6 m to a vehicle that is ahead of the ego or crossing
its path makes the ego brake (``a = -clip(v / max(t_c, 0.5), 2.5, 6)``).

Skill label of a step (first rule that holds; Bench2Drive's skill set, one index in :data:`SKILLS`):
1. ``emergency_brake``: the planner commands <= -3.5 m/s^2;
2. ``give_way``: the conflict check is braking the ego for a crossing or merging vehicle;
3. ``merging``: the ego is on the merge ramp or changing lane in the merge scenario;
4. ``traffic_sign``: the ego follows the exit sign (exit scenario: a lane change toward the exit
   lane pending or under way, or on the exit lane / ramp); highway-env has no other signs;
5. ``overtaking``: a lane change (MOBIL) with a slower vehicle ahead in the current lane;
6. ``normal``. ``parking_exit`` never occurs here (no parking scenario in this closed loop).

Camera label (one of the five non-front views, :data:`~moe_zoo.driving.cameras.ROUTED_CAMERAS`),
``camera_rule="manoeuvre"`` (the default): what the ego is doing, after the DriveMoE authors'
heuristics for Bench2Drive (their ``data/data.md``; steps with no critical view are "NULL", read as
``CAM_BACK``), in this order: turning at a junction (intersection / roundabout: the route's heading
20 m ahead differs from the ego's by more than 30 degrees) -> the front-side view toward the exit; a
lane change (all highway-env lanes run the same way) -> the rear-side view of the target side; the
merge ramp -> front-left (the merge point lies ahead on the left), the merge lane -> back-left;
otherwise ``back``.

``camera_rule="agent"`` (an option, the package's default before): the view whose sector holds the
most relevant agent that the front camera does not cover, in this order: the vehicle the conflict
check brakes for; during a lane change the nearest vehicle in the target lane; else the nearest
vehicle within 30 m. With no such vehicle outside the front sector, the lane-change direction picks
front-left / front-right, and otherwise ``back``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moe_zoo.core import InputError
from moe_zoo.driving.cameras import ROUTED_CAMERAS, view_of

SKILLS = ("merging", "parking_exit", "overtaking", "emergency_brake", "give_way", "traffic_sign", "normal")
HARD_BRAKE = -3.5
HORIZON_S, HORIZON_STEP_S, CONFLICT_GAP_M, RANGE_M = 3.0, 0.25, 6.0, 40.0
CAMERA_RULES = ("agent", "manoeuvre")
DEFAULT_CAMERA_RULE = "manoeuvre"     # the DriveMoE authors' rule
TURN_AHEAD_M, TURN_MIN_RAD = 20.0, np.radians(30.0)


@dataclass(frozen=True)
class PlannerDecision:
    acceleration: float       # m/s^2
    steering: float           # rad
    skill: int                # index in SKILLS
    camera: int               # index in ROUTED_CAMERAS
    conflict: bool


def to_ego(points: np.ndarray, ego_xy: np.ndarray, heading: float) -> np.ndarray:
    """World points ``[..., 2]`` (highway-env frame, y to the right) -> ego frame (x ahead, y left)."""
    d = np.asarray(points, dtype=float) - ego_xy
    c, s = np.cos(heading), np.sin(heading)
    return np.stack([d[..., 0] * c + d[..., 1] * s, d[..., 0] * s - d[..., 1] * c], axis=-1)


def _mandatory_lane(ego, scenario: str, lanes_count: int):
    """The lane the route needs the ego in (merge ramp -> main road, highway -> exit lane), or None."""
    frm, to, lane_id = ego.lane_index
    if scenario == "merge" and (frm, to) == ("b", "c") and lane_id == 2:
        return (frm, to, 1)
    if scenario == "exit":
        want = lanes_count - 1 if (frm, to) == ("0", "1") else lanes_count if (frm, to) == ("1", "2") else None
        if want is not None and lane_id != want and ego.target_lane_index == ego.lane_index:
            return (frm, to, lane_id + int(np.sign(want - lane_id)))
    return None


def _safe_change(ego, lane_index) -> bool:
    """MOBIL's safety criterion alone: the new follower need not brake harder than allowed, nor the ego."""
    road = ego.road
    preceding, following = road.neighbour_vehicles(ego, lane_index)
    if following is not None and ego.acceleration(following, ego) < -ego.LANE_CHANGE_MAX_BRAKING_IMPOSED:
        return False
    if following is not None and np.linalg.norm(following.position - ego.position) < ego.LENGTH + 2:
        return False
    return preceding is None or ego.acceleration(ego, preceding) > -4.0


def _route_lanes(ego, distances) -> list[tuple[object, float]]:
    """(lane, longitudinal position) of the points ``distances`` m ahead along the ego's route
    (lane ids clipped to each edge)."""
    net = ego.road.network
    route = [tuple(ego.lane_index[:2])] + [tuple(r[:2]) for r in (ego.route or []) if tuple(r[:2]) != ego.lane_index[:2]]
    lane_id = ego.target_lane_index[2]
    s0 = ego.lane.local_coordinates(ego.position)[0]
    out = []
    for d in distances:
        s, k = s0 + d, 0
        lanes = net.graph[route[0][0]][route[0][1]]
        lane = lanes[min(lane_id, len(lanes) - 1)]
        while s > lane.length and k + 1 < len(route):
            s -= lane.length
            k += 1
            lanes = net.graph[route[k][0]][route[k][1]]
            lane = lanes[min(lane_id, len(lanes) - 1)]
        out.append((lane, s))
    return out


def _ego_path(ego, times: np.ndarray) -> np.ndarray:
    """``[T, 2]`` ego positions along its route at constant speed."""
    return np.asarray([lane.position(s, 0.0) for lane, s in _route_lanes(ego, ego.speed * np.asarray(times))])


def _route_turn(ego) -> float:
    """+1 / -1 when the route turns left / right (its heading :data:`TURN_AHEAD_M` ahead differs from
    the ego's by more than :data:`TURN_MIN_RAD`), else 0. highway-env's heading grows clockwise (y down)."""
    (lane, s), = _route_lanes(ego, [TURN_AHEAD_M])
    change = (lane.heading_at(s) - ego.heading + np.pi) % (2 * np.pi) - np.pi
    return float(-np.sign(change)) if abs(change) > TURN_MIN_RAD else 0.0


def _lane_change_side(ego) -> float:
    """+1 / -1 while changing lane to the left / right, else 0."""
    if ego.lane_index == ego.target_lane_index:
        return 0.0
    lateral = ego.lane.local_coordinates(ego.road.network.get_lane(ego.target_lane_index).position(
        ego.lane.local_coordinates(ego.position)[0], 0))[1]
    return float(np.sign(-lateral))          # highway-env lateral > 0 is to the right


def _conflict(ego, others: list) -> tuple[object | None, float]:
    """The vehicle the ego must yield to (constant-velocity extrapolation) and the time of conflict."""
    if not others:
        return None, np.inf
    times = np.arange(HORIZON_STEP_S, HORIZON_S + 1e-9, HORIZON_STEP_S)
    ego_path = _ego_path(ego, times)
    pos = np.stack([v.position for v in others])
    vel = np.stack([v.velocity for v in others])
    future = pos[:, None, :] + vel[:, None, :] * times[None, :, None]
    gaps = np.linalg.norm(future - ego_path[None], axis=-1)            # [V, T]
    crossing = np.abs(np.sin(np.array([v.heading for v in others]) - ego.heading)) > 0.3
    hit = (gaps < CONFLICT_GAP_M) & crossing[:, None]                  # same-direction traffic is IDM's job
    if not hit.any():
        return None, np.inf
    first = np.where(hit.any(1), hit.argmax(1), len(times))
    v = int(first.argmin())
    return others[v], float(times[first[v]])


def plan(ego, scenario: str, lanes_count: int = 3, camera_rule: str = DEFAULT_CAMERA_RULE) -> PlannerDecision:
    """One decision of the privileged planner for the ego (mutates only the ego's lane intent);
    ``camera_rule`` picks the camera label's rule (:data:`CAMERA_RULES`, module docstring)."""
    if camera_rule not in CAMERA_RULES:      # any other value would silently give the agent rule
        raise InputError(f"unknown camera_rule {camera_rule!r}; known: {', '.join(CAMERA_RULES)}")
    road = ego.road
    others = [v for v in road.vehicles
              if v is not ego and np.linalg.norm(v.position - ego.position) < RANGE_M]
    ego.follow_road()
    mandatory = _mandatory_lane(ego, scenario, lanes_count)
    blocked = False
    if mandatory is not None and mandatory[2] < len(road.network.graph[mandatory[0]][mandatory[1]]):
        blocked = not _safe_change(ego, mandatory)
        if not blocked:
            ego.target_lane_index = mandatory
    elif mandatory is None and scenario in ("highway", "exit", "merge") and ego.lane_index[:2] != ("b", "c"):
        ego.change_lane_policy()
    steering = float(np.clip(ego.steering_control(ego.target_lane_index), -ego.MAX_STEERING_ANGLE,
                             ego.MAX_STEERING_ANGLE))
    front, rear = road.neighbour_vehicles(ego, ego.lane_index)
    accel = ego.acceleration(ego_vehicle=ego, front_vehicle=front, rear_vehicle=rear)
    changing = ego.lane_index != ego.target_lane_index
    if changing:
        front_t, rear_t = road.neighbour_vehicles(ego, ego.target_lane_index)
        accel = min(accel, ego.acceleration(ego_vehicle=ego, front_vehicle=front_t, rear_vehicle=rear_t))
    if blocked and ego.speed > 15.0:          # slow down until the needed lane has a gap
        accel = min(accel, -1.0)
    blocker, t_conflict = _conflict(ego, others)
    if blocker is not None:
        accel = min(accel, -float(np.clip(ego.speed / max(t_conflict, 0.5), 2.5, 6.0)))
    accel = float(np.clip(accel, -6.0, 4.0))

    crossing_blocker = blocker is not None and abs(np.sin(blocker.heading - ego.heading)) > 0.3
    if accel <= HARD_BRAKE:
        skill = "emergency_brake"
    elif blocker is not None and (crossing_blocker or scenario in ("intersection", "roundabout", "merge")):
        skill = "give_way"
    elif scenario == "merge" and (ego.lane_index[:2] in (("j", "k"), ("k", "b")) or ego.lane_index == ("b", "c", 2)
                                  or changing):
        skill = "merging"
    elif scenario == "exit" and (changing or mandatory is not None or ego.lane_index[2] == lanes_count
                                 or ego.lane_index[:2] == ("2", "exit")):
        skill = "traffic_sign"
    elif changing and front is not None and front.speed < ego.speed + 1.0:
        skill = "overtaking"
    else:
        skill = "normal"
    camera = (manoeuvre_camera_label(ego, scenario) if camera_rule == "manoeuvre"
              else camera_label(ego, others, blocker, changing))
    return PlannerDecision(accel, steering, SKILLS.index(skill), camera, blocker is not None)


def camera_label(ego, others: list, blocker, changing: bool) -> int:
    """The labelling rule of the module docstring, on the simulator's vehicles."""
    candidates: list = []
    if blocker is not None:
        candidates.append(blocker)
    if changing:
        in_target = [v for v in others if v.lane_index == ego.target_lane_index]
        candidates += sorted(in_target, key=lambda v: np.linalg.norm(v.position - ego.position))
    near = [v for v in others if np.linalg.norm(v.position - ego.position) < 30.0]
    candidates += sorted(near, key=lambda v: np.linalg.norm(v.position - ego.position))
    return label_from_agents(np.array([to_ego(v.position, ego.position, ego.heading) for v in candidates])
                             .reshape(-1, 2), _lane_change_side(ego))


def manoeuvre_camera_label(ego, scenario: str) -> int:
    """The ``manoeuvre`` rule of the module docstring, on the simulator's state."""
    merge = None
    if scenario == "merge":
        merge = "ramp" if ego.lane_index[:2] in (("j", "k"), ("k", "b")) else \
            "lane" if ego.lane_index == ("b", "c", 2) else None
    turn = _route_turn(ego) if scenario in ("intersection", "roundabout") else 0.0
    return label_from_manoeuvre(turn, _lane_change_side(ego), merge)


def label_from_manoeuvre(turn: float = 0.0, lane_change_side: float = 0.0, merge: str | None = None) -> int:
    """Camera label from the ego's manoeuvre (+1 left, -1 right; ``merge`` None, ``"ramp"`` or
    ``"lane"``): junction turn -> front side, lane change -> rear side of the target, merge ramp ->
    front-left, merge lane -> back-left, else ``back`` (the authors' NULL)."""
    if turn:
        return ROUTED_CAMERAS.index("front_left" if turn > 0 else "front_right")
    if lane_change_side:
        return ROUTED_CAMERAS.index("back_left" if lane_change_side > 0 else "back_right")
    if merge is not None:
        return ROUTED_CAMERAS.index({"ramp": "front_left", "lane": "back_left"}[merge])
    return ROUTED_CAMERAS.index("back")


def label_from_agents(rel_xy: np.ndarray, lane_change_side: float = 0.0) -> int:
    """Camera label from candidate agents in ego frame, most relevant first (also used for Bench2Drive).

    The first agent outside the front sector names the view; else the lane-change side
    (+1 left, -1 right) or ``back``."""
    if len(rel_xy):
        views = view_of(rel_xy)
        outside = np.flatnonzero(views != 0)
        if len(outside):
            return int(views[outside[0]]) - 1
    if lane_change_side > 0:
        return ROUTED_CAMERAS.index("front_left")
    if lane_change_side < 0:
        return ROUTED_CAMERAS.index("front_right")
    return ROUTED_CAMERAS.index("back")
