"""DriveMoE: vision MoE over cameras + action MoE over driving skills, in closed loop on highway-env.

    from moe_zoo import driving
    env = driving.DrivingEnv("merge")                # six ego-centric cameras, Bench2Drive-style routes
    policy = driving.as_policy(driving.load())       # shipped DriveMoE weights; act(observation) -> action
    report = driving.evaluate("drivemoe", ["merge"], episodes=1)
    report.summary()                                 # driving score, success, abilities, router accuracy

Names are imported on first use (PEP 562), so ``moe-zoo driving ...`` checks its arguments first.
"""

from moe_zoo.core.lazy import lazy_exports

_EXPORTS = {
    "DrivingEnv": "env", "COMMANDS": "env", "CAMERAS": "cameras", "SCENARIOS": "scenarios", "SKILLS": "planner",
    "DriveMoE": "model", "DriveMoEConfig": "model", "BCMLP": "model", "DrivingPolicy": "policy",
    "load": "api", "as_policy": "api", "collect": "episodes", "read_episode": "episodes",
    "write_episode": "episodes", "Episode": "episodes", "read_bench2drive": "bench2drive",
    "train": "training", "TrainConfig": "training", "evaluate": "closed_loop", "run_episode": "closed_loop",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
