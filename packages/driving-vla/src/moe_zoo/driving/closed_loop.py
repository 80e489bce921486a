"""Closed-loop evaluation with Bench2Drive-style metrics.

Per episode: route completion ``RC`` (fraction of the scenario's route driven), infractions
(collision with a vehicle: penalty 0.60, Bench2Drive's; leaving the road: 0.65, Bench2Drive's
static-collision factor, as highway-env has no kerbs), driving score ``DS = RC * prod penalties``,
success = route completed without infraction. An episode ends at a collision, off-road, off-route
(another road than the route's), route completion or the scenario's time limit.

Abilities (Bench2Drive's five, success rate over the episodes that exercise them): merging
(merge and exit scenarios; Bench2Drive counts highway exits as merging), overtaking (highway),
emergency brake (any episode in which the planner's label rule fires ``emergency_brake`` on the
closed-loop state), give way (intersection, roundabout), traffic sign (exit: following the exit
sign). Router accuracy: the policy's argmax camera / top skill against the planner's labels of the
same closed-loop states.
"""

from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from moe_zoo.core import InputError
from moe_zoo.driving.cameras import CAMERAS
from moe_zoo.driving.env import DrivingEnv, normalise_action
from moe_zoo.driving.planner import DEFAULT_CAMERA_RULE, SKILLS
from moe_zoo.driving.scenarios import check_scenarios

PENALTIES = {"collision": 0.60, "off_road": 0.65}
ABILITIES = ("merging", "overtaking", "emergency_brake", "give_way", "traffic_sign")
_SCENARIO_ABILITIES = {"merge": ("merging",), "exit": ("merging", "traffic_sign"), "highway": ("overtaking",),
                       "intersection": ("give_way",), "roundabout": ("give_way",)}


@dataclass
class EpisodeResult:
    scenario: str
    seed: int
    route_completion: float
    collision: bool
    off_road: bool
    off_route: bool
    done_reason: str
    steps: int
    abilities: list[str]
    camera_hits: int = 0
    camera_total: int = 0
    skill_hits: int = 0
    skill_total: int = 0
    decision_seconds: float = 0.0

    @property
    def driving_score(self) -> float:
        penalty = np.prod([p for k, p in PENALTIES.items() if getattr(self, k)])
        return float(self.route_completion * penalty)

    @property
    def success(self) -> bool:
        return self.done_reason == "completed" and not (self.collision or self.off_road)


@dataclass
class EvalReport:
    episodes: list[EpisodeResult] = field(default_factory=list)

    def summary(self, scenario: str | None = None) -> dict[str, float]:
        eps = [e for e in self.episodes if scenario is None or e.scenario == scenario]
        if not eps:
            return {}
        out = {"driving_score": 100 * float(np.mean([e.driving_score for e in eps])),
               "success_rate": 100 * float(np.mean([e.success for e in eps])),
               "route_completion": 100 * float(np.mean([e.route_completion for e in eps])),
               "collision_rate": 100 * float(np.mean([e.collision for e in eps])),
               "off_road_rate": 100 * float(np.mean([e.off_road for e in eps])),
               "episodes": len(eps)}
        for ability in ABILITIES:
            mine = [e.success for e in eps if ability in e.abilities]
            out[f"ability_{ability}"] = 100 * float(np.mean(mine)) if mine else float("nan")
        cam = sum(e.camera_total for e in eps)
        skill = sum(e.skill_total for e in eps)
        out["camera_router_acc"] = 100 * sum(e.camera_hits for e in eps) / cam if cam else float("nan")
        out["skill_router_acc"] = 100 * sum(e.skill_hits for e in eps) / skill if skill else float("nan")
        steps = sum(e.steps for e in eps)
        seconds = sum(e.decision_seconds for e in eps)
        out["decisions_per_s"] = steps / seconds if seconds > 0 else float("nan")
        return out

    def to_dict(self) -> dict:
        return {"episodes": [asdict(e) | {"driving_score": e.driving_score, "success": e.success}
                             for e in self.episodes]}


def montage(env: DrivingEnv, cameras: np.ndarray, chosen: int | None) -> np.ndarray:
    """Top-down frame over the six views (the chosen view framed in red)."""
    from PIL import Image

    frame = Image.fromarray(env.frame)
    w = frame.width
    size = w // 3
    canvas = Image.new("RGB", (w, frame.height + 2 * size), (30, 30, 30))
    canvas.paste(frame, (0, 0))
    for i, view in enumerate(cameras):
        tile = np.array(Image.fromarray(view).resize((size - 4, size - 4)))
        if chosen is not None and i == chosen + 1:
            tile[:3], tile[-3:], tile[:, :3], tile[:, -3:] = (220, 40, 40), (220, 40, 40), (220, 40, 40), (220, 40, 40)
        canvas.paste(Image.fromarray(tile), ((i % 3) * size + 2, frame.height + (i // 3) * size + 2))
    return np.asarray(canvas)


def run_episode(policy, scenario: str, seed: int, *, record: bool = False, max_steps: int | None = None,
                camera_rule: str = DEFAULT_CAMERA_RULE) -> tuple[EpisodeResult, list[np.ndarray]]:
    """One closed-loop episode; ``policy`` is a :class:`DrivingPolicy` or ``"planner"`` (the reference);
    ``max_steps`` cuts it short (then ``done_reason`` is ``"cut"``); ``camera_rule`` is the rule of the
    camera labels the router is scored against."""
    env = DrivingEnv(scenario, camera_rule=camera_rule)
    obs, info = env.reset(seed=seed)
    if policy != "planner":
        policy.reset()
    frames, abilities = [], set(_SCENARIO_ABILITIES[scenario])
    result = EpisodeResult(scenario, seed, 0.0, False, False, False, "timeout", 0, [])
    while True:
        labels = env.planner_decision()
        if SKILLS[labels.skill] == "emergency_brake":
            abilities.add("emergency_brake")
        began = time.perf_counter()
        if policy == "planner":
            action, camera, skill = normalise_action(labels.acceleration, labels.steering), labels.camera, labels.skill
        else:
            action = policy.act(obs)
            camera, skill = policy.last.get("camera"), policy.last.get("skill")
        result.decision_seconds += time.perf_counter() - began
        if camera is not None:
            result.camera_hits += int(camera == labels.camera)
            result.camera_total += 1
        if skill is not None:
            result.skill_hits += int(skill == labels.skill)
            result.skill_total += 1
        if record:
            frames.append(montage(env, obs["cameras"], camera))
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
        if max_steps is not None and env.t >= max_steps:
            info["done_reason"] = "cut"
            break
    env.close()
    result.route_completion = info["route_completion"]
    result.collision, result.off_road, result.off_route = info["collision"], info["off_road"], info["off_route"]
    result.done_reason, result.steps = info["done_reason"], info["t"]
    result.abilities = sorted(abilities)
    return result, frames


def evaluate(model, scenarios=None, episodes: int = 2, *, seed: int = 1000, euler_steps: int = 10,
             progress: bool = True, camera_rule: str = DEFAULT_CAMERA_RULE) -> EvalReport:
    """Closed-loop metrics of ``model`` (a registry name / checkpoint path / model / ``"planner"``)
    over ``episodes`` seeded episodes per scenario (seeds ``seed, seed+1, ...``); ``camera_rule``: the
    rule the camera router is scored against (the one the model was trained with)."""
    from tqdm import tqdm

    from moe_zoo.driving.api import as_policy
    from moe_zoo.driving.scenarios import SCENARIOS

    names = check_scenarios(scenarios if scenarios is not None else list(SCENARIOS))
    if not isinstance(episodes, int) or episodes < 1:
        raise InputError(f"evaluate: episodes must be an integer >= 1, got {episodes!r}")
    policy = "planner" if model == "planner" else as_policy(model, euler_steps=euler_steps)
    report = EvalReport()
    for name, s in tqdm([(n, seed + i) for n in names for i in range(episodes)], desc="closed loop",
                        disable=not progress):
        report.episodes.append(run_episode(policy, name, s, camera_rule=camera_rule)[0])
    return report


def peak_memory_mb() -> float:
    """Peak resident memory of this process (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


__all__ = ["ABILITIES", "CAMERAS", "EpisodeResult", "EvalReport", "evaluate", "run_episode"]
