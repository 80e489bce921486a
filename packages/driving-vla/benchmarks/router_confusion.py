"""The camera router against the camera-label rule, on three sets of states, for one model.

1. ``demonstrations``: the training frames (cached features, teacher labels);
2. ``planner_heldout``: the privileged planner drives held-out episodes (the benchmark's first
   evaluation seeds); the router is queried on the live observations;
3. ``closed_loop``: the model itself drives the same episodes (argmax camera, as in the benchmark).

Labels are always the planner's rule (``--camera-rule``, the rule the model was trained with) on the
state at hand. Before that, one noise-free demonstration per scenario is replayed live and its labels
and router choices are compared with the file's (``replay_identical``): the live inference path and
the training path see the same inputs.

    python packages/driving-vla/benchmarks/router_confusion.py [--model drivemoe] [--episodes DIR] [--seeds 10000 10001]
        [--camera-rule agent|manoeuvre] [--out FILE]

Writes ``benchmarks/router_confusion.json`` (per set: label counts, confusion, accuracy, majority
rate, class-balanced recall; the focal alpha of the training labels).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from moe_zoo.driving.api import as_policy, load
from moe_zoo.driving.cameras import ROUTED_CAMERAS
from moe_zoo.driving.data import load_feature_set
from moe_zoo.driving.env import DrivingEnv, normalise_action
from moe_zoo.driving.episodes import list_episodes, read_episode
from moe_zoo.driving.features import cache_dir, encode_views
from moe_zoo.driving.losses import class_alpha
from moe_zoo.driving.model import N_ROUTED
from moe_zoo.driving.planner import CAMERA_RULES
from moe_zoo.driving.scenarios import SCENARIOS


def summarise(labels: np.ndarray, pred: np.ndarray) -> dict:
    """Rows: label, columns: the router's argmax."""
    matrix = np.zeros((N_ROUTED, N_ROUTED), dtype=int)
    np.add.at(matrix, (labels, pred), 1)
    counts = matrix.sum(1)
    recall = np.diag(matrix) / np.maximum(counts, 1)
    return {"frames": int(counts.sum()), "label_counts": counts.tolist(), "confusion": matrix.tolist(),
            "accuracy": float(np.mean(labels == pred)), "majority_rate": float(counts.max() / counts.sum()),
            "majority_label": ROUTED_CAMERAS[int(counts.argmax())],
            "balanced_recall": float(recall[counts > 0].mean()), "recall": recall.tolist()}


@torch.inference_mode()
def route(model, observation: dict) -> int:
    front = model.reduce(encode_views(observation["cameras"][:1]))
    point = torch.as_tensor(observation["command_point"], dtype=torch.float32)[None]
    return int(model.route_cameras(model.camera_tokens(front, 0), point).argmax(-1))


def drive(model, scenario: str, seed: int, by_model: bool, camera_rule: str) -> tuple[list[int], list[int]]:
    """Labels and router choices along one episode driven by the planner or (``by_model``) the model."""
    policy = as_policy(model)
    policy.reset()
    env = DrivingEnv(scenario, camera_rule=camera_rule)
    obs, _ = env.reset(seed=seed)
    labels, choices = [], []
    while True:
        decision = env.planner_decision()
        if by_model:
            action = policy.act(obs)
            choice = policy.last["camera"]
        else:
            action, choice = normalise_action(decision.acceleration, decision.steering), route(model, obs)
        labels.append(decision.camera)
        choices.append(choice)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    env.close()
    return labels, choices


def replay_identical(model, folder: Path, camera_rule: str) -> bool:
    """Each scenario's first noise-free demonstration, replayed live: same labels and router choices."""
    done: set[str] = set()
    for path in list_episodes(folder):
        episode = read_episode(path)
        if episode.meta.get("noise", 1.0) != 0.0 or episode.meta.get("scenario") in done:
            continue
        done.add(episode.meta["scenario"])
        data = load_feature_set([path], progress=False).with_features(model.reduce)
        batch = data.batch(torch.arange(len(data)))
        with torch.inference_mode():
            cached = model.route_cameras(model.camera_tokens(batch["features"][:, 0], 0), batch["command_point"])
        labels, choices = drive(model, episode.meta["scenario"], int(episode.meta["seed"]), False, camera_rule)
        if labels != episode.camera.tolist() or choices != cached.argmax(-1).tolist():
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="drivemoe", help="registry name with weights or a checkpoint path")
    parser.add_argument("--episodes", default=str(cache_dir() / "episodes" / "default"),
                        help="the model's training demonstrations (default: those of the shipped weights)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[10_000, 10_001])
    parser.add_argument("--camera-rule", choices=CAMERA_RULES, default="manoeuvre", help="the labels' rule")
    parser.add_argument("--out", default=str(Path(__file__).with_name("router_confusion.json")))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = load(args.model)
    data = load_feature_set(args.episodes, progress=False).with_features(model.reduce)
    batch = data.batch(torch.arange(len(data)))
    with torch.inference_mode():
        logits = model.route_cameras(model.camera_tokens(batch["features"][:, 0], 0), batch["command_point"])
    labels = data.arrays["camera"].long()
    sets = {"demonstrations": summarise(labels.numpy(), logits.argmax(-1).numpy())}
    for name, by_model in (("planner_heldout", False), ("closed_loop", True)):
        pairs = [drive(model, sc, s, by_model, args.camera_rule) for sc in SCENARIOS for s in args.seeds]
        sets[name] = summarise(np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs]))
    result = {"model": args.model, "episodes": os.path.basename(os.path.normpath(args.episodes)),
              "camera_rule": args.camera_rule, "evaluation_seeds": args.seeds, "views": list(ROUTED_CAMERAS),
              "alpha": [round(a, 4) for a in class_alpha(labels, N_ROUTED).tolist()],
              "replay_identical": replay_identical(model, Path(args.episodes), args.camera_rule), **sets}
    Path(args.out).write_text(json.dumps(result, indent=1))
    for name in sets:
        print(name, {k: v for k, v in sets[name].items() if k not in ("confusion", "recall")})
    print("replay_identical", result["replay_identical"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
