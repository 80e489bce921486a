"""Read a Bench2Drive route folder into this package's :class:`~moe_zoo.driving.episodes.Episode`.

Layout (Bench2Drive ``docs/anno.md``)::

    <Scenario>/<Town..._Route..._Weather...>/anno/00000.json.gz    x, y, theta, speed, steer, throttle, brake,
                                                                    x_command_far, y_command_far, command_far,
                                                                    bounding_boxes [...]
    <Scenario>/<Town..._Route..._Weather...>/camera/rgb_front/00000.jpg   (+ rgb_front_left, rgb_front_right,
                                                                    rgb_back, rgb_back_left, rgb_back_right)

World -> ego frame follows TCP's transform (the TCP baseline of Bench2Drive):
``local = R(pi/2 + theta)^T [y - y_ego, x - x_ego]`` gives (right, forward); this package's frame is
(forward, left) = ``(local[1], -local[0])``. CARLA frames are 20 Hz in Bench2Drive; ``stride``
subsamples them (default 4 -> 5 Hz, the rate of this package's waypoints). The skill label comes
from the scenario name (Bench2Drive's ability groups, :data:`SCENARIO_SKILLS`), one per route;
the camera label from the same rule as in highway-env (nearest vehicles, ``planner.label_from_agents``).
Either can come instead from the DriveMoE authors' per-frame label files (``camera_labels/<route>.json``:
frame -> ``CAM_FRONT_LEFT`` ... ``CAM_BACK_RIGHT`` or ``NULL``, read as ``CAM_BACK`` as their code does;
``scenario_labels/<route>.json``: frame -> ``MERGING``, ``OVERTAKING``, ... ``NORMAL``), keyed by the
CARLA frame number. Only the fields above are read; lane offsets are unknown there and set to 0.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from moe_zoo.core import InputError
from moe_zoo.driving.cameras import CAMERAS, ROUTED_CAMERAS, VIEW_SIZE
from moe_zoo.driving.episodes import DT, Episode
from moe_zoo.driving.planner import SKILLS, label_from_agents

SCENARIO_SKILLS = {
    "parking_exit": ("ParkingExit",),
    "merging": ("CrossingBicycleFlow", "EnterActorFlow", "HighwayExit", "InterurbanActorFlow", "HighwayCutIn",
                "InterurbanAdvancedActorFlow", "MergerIntoSlowTraffic", "NonSignalizedJunctionLeftTurn",
                "NonSignalizedJunctionRightTurn", "SequentialLaneChange", "LaneChange"),
    "overtaking": ("Accident", "ConstructionObstacle", "HazardAtSideLane", "ParkedObstacle", "VehicleOpensDoor"),
    "emergency_brake": ("BlockedIntersection", "DynamicObjectCrossing", "HardBreakRoute", "OppositeVehicle",
                        "ParkingCutIn", "PedestrianCrossing", "ParkingCrossingPedestrian", "StaticCutIn",
                        "VehicleTurningRoute", "ControlLoss"),
    "give_way": ("InvadingTurn", "YieldToEmergencyVehicle"),
    "traffic_sign": ("Signalized", "StopSign", "RedLight", "T_Junction", "PriorityAtJunction", "GreenLight"),
}
AUTHORS_CAMERAS = {"NULL": "back", **{f"CAM_{v.upper()}": v for v in CAMERAS[1:]}}
AUTHORS_SKILLS = {"MERGING": "merging", "MERGING_HIGHWAY": "merging", "MERGING_JUNCTION": "merging",
                  "PARKING_EXIT": "parking_exit", "OVERTAKING": "overtaking", "EMERGENCY_BRAKE": "emergency_brake",
                  "GIVEWAY": "give_way", "GIVEWAY_HIGHWAY": "give_way", "TRAFFIC_LIGHT": "traffic_sign",
                  "TRAFFIC_SIGN": "traffic_sign", "NORMAL": "normal"}
COMMANDS_B2D = {1: "turn left at the intersection", 2: "turn right at the intersection",
                3: "go straight through the intersection", 4: "follow the lane",
                5: "change lane left", 6: "change lane right"}


def scenario_skill(name: str) -> int:
    """Skill index for a Bench2Drive scenario name (first matching group, else ``normal``)."""
    for skill, prefixes in SCENARIO_SKILLS.items():
        if any(name.startswith(p) or p in name for p in prefixes):
            return SKILLS.index(skill)
    return SKILLS.index("normal")


def _local(points: np.ndarray, x: float, y: float, theta: float) -> np.ndarray:
    """World ``[..., 2]`` (x, y) -> (forward, left) with TCP's transform."""
    a = np.pi / 2 + theta
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    rel = np.stack([points[..., 1] - y, points[..., 0] - x], axis=-1)
    tcp = rel @ rot             # = R^T rel for each row
    return np.stack([tcp[..., 1], -tcp[..., 0]], axis=-1)


def _load_anno(path: Path) -> dict:
    try:
        with gzip.open(path, "rt") as f:
            anno = json.load(f)
    except (OSError, EOFError, json.JSONDecodeError) as err:
        raise InputError(f"Bench2Drive annotation {path} is corrupt ({type(err).__name__}: {err})") from None
    missing = [k for k in ("x", "y", "theta", "speed", "x_command_far", "y_command_far") if k not in anno]
    if missing:
        raise InputError(f"Bench2Drive annotation {path} lacks {missing}")
    return anno


def _frame_labels(path: str | Path, frames: list[int], names: dict[str, str], order: tuple[str, ...]) -> np.ndarray:
    """Per-frame labels from one of the authors' JSON files, as indices into ``order``."""
    try:
        table = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"label file {path} is missing or not JSON ({err})") from None
    if not isinstance(table, dict):
        raise InputError(f"label file {path}: expected a JSON object frame -> label, got {type(table).__name__}")
    missing = [f for f in frames if str(f) not in table]
    if missing:
        raise InputError(f"label file {path}: no label for frame(s) {missing[:5]}")
    unknown = sorted({str(table[str(f)]) for f in frames if not isinstance(table[str(f)], str)
                      or table[str(f)] not in names})
    if unknown:
        raise InputError(f"label file {path}: unknown label(s) {unknown}; known: {', '.join(names)}")
    return np.array([order.index(names[table[str(f)]]) for f in frames], np.int8)


def read_bench2drive(route_dir: str | Path, *, stride: int = 4, view_size: int = VIEW_SIZE,
                     command_texts: tuple[str, ...] | None = None, camera_labels: str | Path | None = None,
                     skill_labels: str | Path | None = None) -> Episode:
    """One Bench2Drive route folder -> :class:`Episode` (cameras resized to ``view_size``);
    ``camera_labels`` / ``skill_labels``: the DriveMoE authors' JSON files for this route, used instead
    of the rules (module docstring)."""
    from PIL import Image, UnidentifiedImageError

    from moe_zoo.driving.env import COMMANDS

    route = Path(route_dir)
    anno_files = sorted((route / "anno").glob("*.json.gz"))[::stride]
    if len(anno_files) < 2:
        raise InputError(f"{route} is not a Bench2Drive route folder with >= 2 frames in anno/*.json.gz")
    annos = [_load_anno(p) for p in anno_files]
    commands = list(command_texts or COMMANDS)
    xs = np.array([[a["x"], a["y"]] for a in annos], float)
    thetas = np.array([a["theta"] for a in annos], float)
    speeds = np.array([a["speed"] or 0.0 for a in annos], float)
    steps = len(annos) - 1
    cameras = np.zeros((steps, len(CAMERAS), view_size, view_size, 3), np.uint8)
    history = np.zeros((steps, 5, 10), np.float32)
    kin = np.zeros((steps, 8, 7), np.float32)
    point = np.zeros((steps, 2), np.float32)
    command = np.zeros(steps, np.int16)
    camera = np.zeros(steps, np.int8)
    action = np.zeros((steps, 2), np.float32)
    for t in range(steps):
        a, frame = annos[t], anno_files[t].name.split(".")[0]
        for c, name in enumerate(CAMERAS):
            path = route / "camera" / f"rgb_{name}" / f"{frame}.jpg"
            try:
                with Image.open(path) as img:
                    cameras[t, c] = np.asarray(img.convert("RGB").resize((view_size, view_size), Image.BILINEAR))
            except (FileNotFoundError, UnidentifiedImageError, OSError) as err:
                raise InputError(f"Bench2Drive camera image {path} is missing or unreadable ({err})") from None
        x, y, th = xs[t, 0], xs[t, 1], thetas[t]
        point[t] = _local(np.array([a["x_command_far"], a["y_command_far"]], float), x, y, th)
        text = COMMANDS_B2D.get(int(a.get("command_far", 4)), "follow the lane")
        command[t] = commands.index(text) if text in commands else commands.index(commands[0])
        for k in range(5):
            j = max(t - k, 0)
            past = _local(xs[j], x, y, th)
            dh = thetas[j] - th
            accel = (speeds[j] - speeds[max(j - 1, 0)]) / DT
            history[t, k] = [past[0], past[1], np.cos(dh), np.sin(dh), speeds[j], accel,
                             annos[j].get("steer", 0.0) * np.pi / 4, 0.0, 0.0, 1.0]
        boxes = [b for b in a.get("bounding_boxes", []) if b.get("class") == "vehicle"]
        if boxes:
            rel = _local(np.array([b["location"][:2] for b in boxes], float), x, y, th)
            order = np.argsort(np.linalg.norm(rel, axis=1))
            camera[t] = label_from_agents(rel[order][np.linalg.norm(rel[order], axis=1) < 30.0])
            for row, i in enumerate(order[:8]):
                kin[t, row, :3] = [1.0, *rel[i]]
        else:
            camera[t] = label_from_agents(np.zeros((0, 2)))
        action[t] = [(speeds[t + 1] - speeds[t]) / DT, a.get("steer", 0.0) * np.pi / 4]
    frames = [int(f.name.split(".")[0]) for f in anno_files[:steps]]
    if camera_labels is not None:
        camera = _frame_labels(camera_labels, frames, AUTHORS_CAMERAS, ROUTED_CAMERAS)
    skill = (np.full(steps, scenario_skill(route.parent.name), np.int8) if skill_labels is None
             else _frame_labels(skill_labels, frames, AUTHORS_SKILLS, SKILLS))
    waypoints = np.zeros((steps, 10, 2), np.float32)
    for t in range(steps):          # the route's last frame repeats past the end
        ahead = np.concatenate([xs[t + 1:], np.repeat(xs[-1:], 10, axis=0)])[:10]
        waypoints[t] = _local(ahead, xs[t, 0], xs[t, 1], thetas[t])
    scenario = route.parent.name
    return Episode(cameras, history, command, point, kin, waypoints, action, skill, camera,
                   meta={"scenario": scenario, "route": route.name, "source": "bench2drive", "stride": stride,
                         "commands": commands, "camera_rule": "agent" if camera_labels is None else "authors",
                         "skill_rule": "scenario" if skill_labels is None else "authors"})
