"""``moe-zoo driving collect|train|eval|drive|bench|demo``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from moe_zoo.core import InputError
from moe_zoo.core.argtypes import non_negative_int, positive_float, positive_int
from moe_zoo.core.runtime import set_threads

SCENARIO_NAMES = ("highway", "merge", "roundabout", "intersection", "exit")   # checked again by scenarios.py
CAMERA_RULES = ("agent", "manoeuvre")   # checked again by env.py


def _scenarios(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in SCENARIO_NAMES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"unknown scenario(s) {unknown or text!r}; known: {', '.join(SCENARIO_NAMES)}")
    return names


def default_episode_dir() -> Path:
    from moe_zoo.driving.features import cache_dir

    return cache_dir() / "episodes" / "default"


def _collect(args: argparse.Namespace) -> int:
    from moe_zoo.driving.episodes import collect

    out = Path(args.out) if args.out else default_episode_dir()
    paths = collect(out, args.scenarios, args.episodes, seed=args.seed, recovery=not args.no_recovery,
                    camera_rule=args.camera_rule)
    print(f"{len(paths)} episodes in {out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from moe_zoo.driving.training import TrainConfig, train

    set_threads(1)   # one thread: fastest for these small models on a shared CPU
    config = TrainConfig(stage1_steps=args.stage1_steps, stage2_steps=args.stage2_steps, batch_size=args.batch_size,
                         lr=args.lr)
    episodes = Path(args.episodes) if args.episodes else default_episode_dir()
    _, result = train(args.model, episodes, out=args.out, config=config, seed=args.seed, state_path=args.resume,
                      force_restart=args.force_restart)
    last = result.history[-1] if result.history else {}
    print(f"{args.model}: {config.stage1_steps}+{config.stage2_steps} steps in {result.seconds:.0f} s, last losses "
          + ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k != "step"))
    print(f"saved {args.out}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from moe_zoo.driving.closed_loop import evaluate

    set_threads(1)
    report = evaluate(args.model, args.scenarios, args.episodes, seed=args.seed, camera_rule=args.camera_rule)
    for scenario in [*dict.fromkeys(e.scenario for e in report.episodes), None]:
        s = report.summary(scenario)
        print(f"{scenario or 'overall':13s} DS {s['driving_score']:5.1f}  SR {s['success_rate']:5.1f}  "
              f"RC {s['route_completion']:5.1f}  collisions {s['collision_rate']:5.1f}%  off-road {s['off_road_rate']:5.1f}%  "
              f"camera acc {s['camera_router_acc']:5.1f}  skill acc {s['skill_router_acc']:5.1f}  "
              f"({s['episodes']} episodes, {s['decisions_per_s']:.1f} decisions/s)")
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=1))
        print(f"wrote {args.json}")
    return 0


def _drive(args: argparse.Namespace) -> int:
    from moe_zoo.driving.api import as_policy
    from moe_zoo.driving.closed_loop import run_episode
    from moe_zoo.driving.media import write_episode_video

    set_threads(1)
    policy = "planner" if args.model == "planner" else as_policy(args.model)
    result, frames = run_episode(policy, args.scenario, args.seed, record=True)
    path = write_episode_video(args.out, frames)
    print(f"{args.model} on {args.scenario} (seed {args.seed}): {result.done_reason}, route completion "
          f"{100 * result.route_completion:.0f}%, driving score {100 * result.driving_score:.0f}; video {path}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from moe_zoo.driving.benchmark import main

    return main(["--quick"] if args.quick else [])


def _demo(args: argparse.Namespace) -> int:
    from moe_zoo.driving.demo import run_demo

    print(run_demo(video=args.video))
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    co = verbs.add_parser("collect", help="record privileged-planner demonstrations (episode .npz files)")
    co.add_argument("--out", default=None, help="folder (default: the cache's episodes/default)")
    co.add_argument("--scenarios", type=_scenarios, default=list(SCENARIO_NAMES), help="comma-separated")
    co.add_argument("--episodes", type=positive_int, default=8, help="episodes per scenario")
    co.add_argument("--seed", type=non_negative_int, default=0)
    co.add_argument("--no-recovery", action="store_true", help="no perturbed-command episodes")
    co.add_argument("--camera-rule", choices=CAMERA_RULES, default="manoeuvre",
                    help="camera labels: the ego's manoeuvre (default; the DriveMoE authors' Bench2Drive "
                    "heuristics) or the most relevant agent's view")
    co.set_defaults(func=_collect)
    tr = verbs.add_parser("train", help="train DriveMoE (two stages) or a baseline on episode files")
    tr.add_argument("--model", default="drivemoe", help="drivemoe | drive-pi0-lite-front | drive-pi0-lite-all | "
                    "drivemoe-no-vision-moe | drivemoe-no-action-moe | driving-bc-mlp")
    tr.add_argument("--episodes", default=None, help="folder of episode .npz files (default: the collect default)")
    tr.add_argument("--stage1-steps", type=non_negative_int, default=600)
    tr.add_argument("--stage2-steps", type=non_negative_int, default=400)
    tr.add_argument("--batch-size", type=positive_int, default=32)
    tr.add_argument("--lr", type=positive_float, default=1e-3)
    tr.add_argument("--seed", type=non_negative_int, default=0)
    tr.add_argument("--out", default="drivemoe.safetensors")
    tr.add_argument("--resume", default=None, help="training-state file: resume from it, update it every 500 steps")
    tr.add_argument("--force-restart", action="store_true")
    tr.set_defaults(func=_train)
    ev = verbs.add_parser("eval", help="closed-loop Bench2Drive-style metrics")
    ev.add_argument("--model", default="drivemoe", help="registry name, .safetensors path, or 'planner'")
    ev.add_argument("--scenarios", type=_scenarios, default=list(SCENARIO_NAMES))
    ev.add_argument("--episodes", type=positive_int, default=2, help="episodes per scenario")
    ev.add_argument("--seed", type=non_negative_int, default=1000, help="first episode seed")
    ev.add_argument("--camera-rule", choices=CAMERA_RULES, default="manoeuvre",
                    help="the camera labels the router is scored against (the model's own training rule)")
    ev.add_argument("--json", default=None, help="write per-episode results here")
    ev.set_defaults(func=_eval)
    dr = verbs.add_parser("drive", help="run one closed-loop episode and write a video (.mp4 or .gif)")
    dr.add_argument("--model", default="drivemoe")
    dr.add_argument("--scenario", default="merge", choices=SCENARIO_NAMES)
    dr.add_argument("--seed", type=non_negative_int, default=2000)
    dr.add_argument("--out", default="drive.mp4")
    dr.set_defaults(func=_drive)
    be = verbs.add_parser("bench", help="DriveMoE vs baselines (writes BENCHMARKS.md; see benchmarks/run.py)")
    be.add_argument("--quick", action="store_true", help="1 seed, 1 episode per scenario, few steps (a smoke run)")
    be.set_defaults(func=_bench)
    de = verbs.add_parser("demo", help="the shipped DriveMoE on one merge episode")
    de.add_argument("--video", default=None, help="also write the episode's video (.mp4 or .gif)")
    de.set_defaults(func=_demo)


__all__ = ["InputError", "configure"]
