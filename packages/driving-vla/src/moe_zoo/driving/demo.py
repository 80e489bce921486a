"""``moe-zoo driving demo``: the shipped DriveMoE drives one merge episode in closed loop."""

from __future__ import annotations

import time
from collections import Counter

from moe_zoo.driving.cameras import ROUTED_CAMERAS
from moe_zoo.driving.planner import SKILLS


def run_demo(scenario: str = "merge", seed: int = 2000, video: str | None = None, max_steps: int = 25) -> str:
    """The first ``max_steps`` decisions (5 s of driving) of one episode with the shipped weights; a text report."""
    import torch

    from moe_zoo.core import read_checkpoint_metadata
    from moe_zoo.core.registry import get_model_spec
    from moe_zoo.driving.api import as_policy, load
    from moe_zoo.driving.closed_loop import run_episode

    torch.set_num_threads(1)
    began = time.perf_counter()
    meta = read_checkpoint_metadata(get_model_spec("drivemoe").weights_path()).get("metadata", {})
    policy = as_policy(load("drivemoe"))
    cameras, skills = Counter(), Counter()
    act = policy.act

    def counting_act(observation):
        action = act(observation)
        cameras[ROUTED_CAMERAS[policy.last["camera"]]] += 1
        skills[SKILLS[policy.last["skill"]]] += 1
        return action

    policy.act = counting_act
    result, frames = run_episode(policy, scenario, seed, record=video is not None, max_steps=max_steps)
    lines = [
        "DriveMoE (camera router over 5 views + action MoE: 1 shared + 7 skill experts, top-3), "
        "flow-matching waypoints (10 Euler steps) -> PID, highway-env closed loop",
        f"weights: trained on {meta.get('episodes', '?')} planner episodes ({meta.get('samples', '?')} steps) "
        f"of {', '.join(meta.get('scenarios', []))}; seed {meta.get('seed')}",
        f"scenario {scenario}, seed {seed} (not a training seed), first {max_steps} decisions at 5 Hz:",
        f"  DriveMoE: {'no infraction' if result.done_reason == 'cut' else result.done_reason} after "
        f"{result.steps} decisions, {100 * result.route_completion:.0f}% of the route driven "
        f"(full closed-loop results: README.md, BENCHMARKS.md)",
        f"  camera router picked: {dict(cameras.most_common())}; agreement with the label rule "
        f"{100 * result.camera_hits / max(result.camera_total, 1):.0f}%",
        f"  top skill expert: {dict(skills.most_common())}; agreement with the skill labels "
        f"{100 * result.skill_hits / max(result.skill_total, 1):.0f}%",
        f"  {result.steps / max(result.decision_seconds, 1e-9):.1f} decisions/s (camera encoding + 10 Euler steps + PID)",
    ]
    if video:
        from moe_zoo.driving.media import write_episode_video

        lines.append(f"  video: {write_episode_video(video, frames)}")
    lines.append(f"({time.perf_counter() - began:.1f} s on CPU)")
    return "\n".join(lines)
