"""Demonstration episodes on disk, their collection with the privileged planner, and a reader for
Bench2Drive's layout.

**Episode format** (one ``.npz`` per episode, ``numpy.savez_compressed``, read with
``allow_pickle=False``; ``T`` steps at 5 Hz):

| key | dtype, shape | content |
|---|---|---|
| ``cameras`` | uint8 ``[T, 6, H, W, 3]`` | views in the order front, front_left, front_right, back, back_left, back_right |
| ``history`` | float32 ``[T, 5, 10]`` | proprioception (see ``env.py``), newest first |
| ``command`` | int16 ``[T]`` | index into ``meta["commands"]`` |
| ``command_point`` | float32 ``[T, 2]`` | far route point, ego frame (x ahead, y left), m |
| ``kinematics`` | float32 ``[T, 8, 7]`` | nearest vehicles (BC baseline input) |
| ``waypoints`` | float32 ``[T, 10, 2]`` | the ego's own positions 1..10 steps later, ego frame at t, m |
| ``action`` | float32 ``[T, 2]`` | executed command, physical: acceleration m/s^2, steering rad |
| ``skill`` | int8 ``[T]`` | skill label, index into ``meta["skills"]`` |
| ``camera`` | int8 ``[T]`` | camera label, index into ``meta["routed_cameras"]`` |
| ``meta`` | str (JSON) | format version, scenario, seed, dt, commands, skills, cameras, source, camera_rule (the camera labels' rule; absent in files written before it existed: ``agent``; Bench2Drive episodes: ``agent``, or ``authors`` when read from the DriveMoE authors' label files, as is their ``skill_rule``: ``scenario`` or ``authors``), labels_version (planner episodes: :data:`LABELS_VERSION`) |

Waypoints past the episode's end are extrapolated at the last velocity and heading.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moe_zoo.core import InputError
from moe_zoo.core.runtime import get_logger
from moe_zoo.driving.cameras import CAMERAS, ROUTED_CAMERAS
from moe_zoo.driving.planner import DEFAULT_CAMERA_RULE, SKILLS, to_ego

_log = get_logger(__name__)
FORMAT = "moe-zoo-driving-episode/1"
# Bumped whenever the planner's labels or command texts change, so that ``collect`` records again
# the cached episodes of an earlier version instead of mixing them in (2: the authors' camera rule
# by default, intersection turn texts fixed).
LABELS_VERSION = 2
N_WAYPOINTS = 10
DT = 0.2
_SHAPES = {  # key -> (dtype kind, trailing shape; None = taken from the file)
    "cameras": ("u", (len(CAMERAS), None, None, 3)), "history": ("f", (5, 10)), "command": ("i", ()),
    "command_point": ("f", (2,)), "kinematics": ("f", (8, 7)), "waypoints": ("f", (N_WAYPOINTS, 2)),
    "action": ("f", (2,)), "skill": ("i", ()), "camera": ("i", ()),
}


@dataclass
class Episode:
    """One demonstration (arrays as in the module docstring) and its ``meta`` record."""

    cameras: np.ndarray
    history: np.ndarray
    command: np.ndarray
    command_point: np.ndarray
    kinematics: np.ndarray
    waypoints: np.ndarray
    action: np.ndarray
    skill: np.ndarray
    camera: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.command)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in _SHAPES}


def future_waypoints(positions: np.ndarray, headings: np.ndarray, n: int = N_WAYPOINTS) -> np.ndarray:
    """``[T, n, 2]``: for each step t < T, positions t+1..t+n in the ego frame at t.

    ``positions [T+1, 2]`` / ``headings [T+1]`` include the state after the last action; later
    positions continue at the last step's displacement."""
    positions = np.asarray(positions, dtype=float)
    steps = len(positions) - 1
    if steps < 1:
        raise InputError("future_waypoints: need at least two positions")
    last_step = positions[-1] - positions[-2]
    extra = positions[-1] + last_step * np.arange(1, n + 1)[:, None]
    path = np.concatenate([positions, extra])
    out = np.empty((steps, n, 2), np.float32)
    for t in range(steps):
        out[t] = to_ego(path[t + 1:t + 1 + n], positions[t], headings[t])
    return out


def _write_npz(path: Path, arrays: dict, meta: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays, meta=np.array(json.dumps(meta)))
    os.replace(tmp, path)
    return path


def write_episode(path: str | Path, episode: Episode) -> Path:
    """Write ``episode`` atomically (temporary file, then rename)."""
    meta = {"format": FORMAT, "dt": DT, "skills": list(SKILLS), "cameras": list(CAMERAS),
            "routed_cameras": list(ROUTED_CAMERAS), **episode.meta}
    arrays = episode.arrays()
    arrays["command"] = arrays["command"].astype(np.int16)
    arrays["skill"] = arrays["skill"].astype(np.int8)
    arrays["camera"] = arrays["camera"].astype(np.int8)
    return _write_npz(Path(path), arrays, meta)


def read_episode(path: str | Path) -> Episode:
    """Read and check one episode file; a missing, truncated or malformed file is an :class:`InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"episode file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise InputError(f"episode file {path} is corrupt or not an .npz episode ({type(err).__name__}: {err})") \
            from None
    missing = [k for k in (*_SHAPES, "meta") if k not in arrays]
    if missing:
        raise InputError(f"episode file {path} lacks {missing} (format {FORMAT})")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as err:
        raise InputError(f"episode file {path}: meta is not JSON ({err})") from None
    if meta.get("format") != FORMAT:
        raise InputError(f"episode file {path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    steps = len(arrays["command"])
    for key, (kind, trailing) in _SHAPES.items():
        a = arrays[key]
        shape_ok = a.ndim == 1 + len(trailing) and len(a) == steps and all(
            want is None or got == want for got, want in zip(a.shape[1:], trailing, strict=True))
        if not shape_ok or a.dtype.kind not in (kind, "i" if kind == "u" else kind):
            raise InputError(f"episode file {path}: {key} has shape {a.shape} dtype {a.dtype}, expected "
                             f"[{steps}, {', '.join('*' if w is None else str(w) for w in trailing)}] ({kind})")
        if kind == "f" and not np.isfinite(a).all():
            raise InputError(f"episode file {path}: {key} has NaN or inf values")
    if steps == 0:
        raise InputError(f"episode file {path} has no steps")
    if arrays["skill"].min() < 0 or arrays["skill"].max() >= len(SKILLS) \
            or arrays["camera"].min() < 0 or arrays["camera"].max() >= len(ROUTED_CAMERAS):
        raise InputError(f"episode file {path}: skill or camera label out of range")
    return Episode(**arrays, meta=meta)


def list_episodes(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"episode folder {folder} does not exist")
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise InputError(f"episode folder {folder} holds no .npz episodes")
    return files


def run_planner_episode(scenario: str, seed: int, *, noise: float = 0.0,
                        camera_rule: str = DEFAULT_CAMERA_RULE) -> tuple[Episode, dict]:
    """Drive one episode with the privileged planner (optional Ornstein-Uhlenbeck noise on the
    executed command, the labels staying the planner's own; camera labels by ``camera_rule``, see
    :mod:`moe_zoo.driving.planner`) and record it; returns the episode and the env's last ``info``."""
    from moe_zoo.driving.env import COMMANDS, DrivingEnv, normalise_action

    env = DrivingEnv(scenario, camera_rule=camera_rule)
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed + 7919)
    drift = np.zeros(2)
    rows: dict[str, list] = {k: [] for k in ("cameras", "history", "command", "command_point", "kinematics",
                                             "action", "skill", "camera")}
    poses = [(env.ego.position.copy(), env.ego.heading)]
    while True:
        decision = env.planner_decision()
        drift = 0.8 * drift + rng.normal(0, 1, 2) * np.array([0.5, 0.02]) * noise
        accel, steer = decision.acceleration + drift[0], decision.steering + drift[1]
        for key in ("cameras", "history", "command", "command_point", "kinematics"):
            rows[key].append(obs[key])
        rows["action"].append([accel, steer])
        rows["skill"].append(decision.skill)
        rows["camera"].append(decision.camera)
        obs, _, terminated, truncated, info = env.step(normalise_action(accel, steer))
        poses.append((env.ego.position.copy(), env.ego.heading))
        if terminated or truncated:
            break
    positions = np.stack([p for p, _ in poses])
    headings = np.array([h for _, h in poses])
    arrays = {k: np.asarray(v) for k, v in rows.items()}
    arrays["waypoints"] = future_waypoints(positions, headings)
    episode = Episode(**{k: arrays[k].astype(np.float32) if arrays[k].dtype.kind == "f" else arrays[k]
                         for k in arrays},
                      meta={"scenario": scenario, "seed": seed, "noise": noise, "commands": list(COMMANDS),
                            "source": "highway-env privileged planner", "done_reason": info["done_reason"],
                            "route_completion": info["route_completion"], "camera_rule": camera_rule,
                            "labels_version": LABELS_VERSION})
    env.close()
    return episode, info


def _recorded_as(path: Path, camera_rule: str) -> bool:
    """Whether ``path`` holds a readable episode recorded with ``camera_rule`` and this
    :data:`LABELS_VERSION` (files from before either existed count as stale)."""
    try:
        meta = read_episode(path).meta
    except InputError:
        return False
    return meta.get("labels_version") == LABELS_VERSION and meta.get("camera_rule", "agent") == camera_rule


def collect(out: str | Path, scenarios=None, episodes: int = 8, seed: int = 0, recovery: bool = True,
            progress: bool = True, camera_rule: str = DEFAULT_CAMERA_RULE) -> list[Path]:
    """Record ``episodes`` planner episodes per scenario into ``out`` (``<scenario>-<seed>.npz``;
    existing files are kept when they were recorded with the same ``camera_rule`` and
    :data:`LABELS_VERSION`, otherwise recorded again); with ``recovery`` every second one executes a perturbed command;
    ``camera_rule`` picks the camera labels' rule (:data:`~moe_zoo.driving.planner.CAMERA_RULES`)."""
    from tqdm import tqdm

    from moe_zoo.driving.scenarios import SCENARIOS, check_scenarios

    names = check_scenarios(scenarios if scenarios is not None else list(SCENARIOS))
    if not isinstance(episodes, int) or episodes < 1:
        raise InputError(f"collect: episodes must be an integer >= 1, got {episodes!r}")
    jobs = [(name, seed + i) for name in names for i in range(episodes)]
    paths, began, recorded = [], time.perf_counter(), 0
    for k, (name, s) in enumerate(tqdm(jobs, desc="collect", disable=not progress)):
        path = Path(out) / f"{name}-{s:05d}.npz"
        if not _recorded_as(path, camera_rule):
            if path.exists():
                _log.info("%s: recorded with other labels or unreadable; recording it again", path)
            episode, _ = run_planner_episode(name, s, noise=1.0 if (recovery and k % 2 == 1) else 0.0,
                                             camera_rule=camera_rule)
            write_episode(path, episode)
            recorded += 1
        paths.append(path)
    if recorded == len(jobs):      # a complete fresh collection: keep its timing with the data
        record = {"seconds": time.perf_counter() - began, "episodes": len(jobs), "scenarios": names,
                  "episodes_per_scenario": episodes, "seed": seed, "recovery": recovery,
                  "camera_rule": camera_rule, "load_average": os.getloadavg()}
        (Path(out) / "collect.json").write_text(json.dumps(record, indent=1))
    _log.info("collected %d episodes in %s", len(paths), out)
    return paths
