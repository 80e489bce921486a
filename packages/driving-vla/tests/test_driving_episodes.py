"""Episode format round trip and errors; future waypoints; the Bench2Drive reader on a fixture."""

import gzip
import json

import numpy as np
import pytest

from moe_zoo.core import InputError
from moe_zoo.driving import episodes
from moe_zoo.driving.bench2drive import read_bench2drive, scenario_skill
from moe_zoo.driving.cameras import CAMERAS
from moe_zoo.driving.episodes import (
    LABELS_VERSION,
    Episode,
    collect,
    future_waypoints,
    read_episode,
    write_episode,
)
from moe_zoo.driving.planner import SKILLS


def make_episode(t=4, views=6):
    rng = np.random.default_rng(0)
    return Episode(rng.integers(0, 255, (t, views, 16, 16, 3), dtype=np.uint8),
                   rng.normal(size=(t, 5, 10)).astype(np.float32), np.zeros(t, np.int16),
                   rng.normal(size=(t, 2)).astype(np.float32), np.zeros((t, 8, 7), np.float32),
                   rng.normal(size=(t, 10, 2)).astype(np.float32), rng.normal(size=(t, 2)).astype(np.float32),
                   np.full(t, 6, np.int8), np.arange(t, dtype=np.int8) % 5, meta={"scenario": "highway", "seed": 3})


def test_round_trip(tmp_path):
    ep = make_episode()
    path = write_episode(tmp_path / "ep.npz", ep)
    back = read_episode(path)
    for key, value in ep.arrays().items():
        assert np.array_equal(getattr(back, key), value)
    assert back.meta["scenario"] == "highway" and back.meta["skills"] == list(SKILLS)
    assert not list(tmp_path.glob(".*tmp*"))


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_episode(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="corrupt"):
        read_episode(tmp_path / "junk.npz")
    good = write_episode(tmp_path / "good.npz", make_episode())
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[:200])
    with pytest.raises(InputError):
        read_episode(tmp_path / "cut.npz")
    with pytest.raises(InputError, match="cameras"):
        read_episode(write_episode(tmp_path / "five.npz", make_episode(views=5)))
    bad = make_episode()
    bad.waypoints[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        read_episode(write_episode(tmp_path / "nan.npz", bad))


def test_collect_records_again_what_other_labels_made(tmp_path, monkeypatch):
    """Cached episodes of another camera rule or labels version are recorded again, current ones kept."""
    recorded = []

    def fake_planner_episode(scenario, seed, *, noise=0.0, camera_rule="manoeuvre"):
        recorded.append(seed)
        ep = make_episode()
        ep.meta = {"scenario": scenario, "seed": seed, "camera_rule": camera_rule, "labels_version": LABELS_VERSION}
        return ep, {}

    monkeypatch.setattr(episodes, "run_planner_episode", fake_planner_episode)
    stale = make_episode()
    stale.meta = {"scenario": "highway", "seed": 0, "camera_rule": "manoeuvre"}      # before LABELS_VERSION
    write_episode(tmp_path / "highway-00000.npz", stale)
    other_rule = make_episode()
    other_rule.meta = {"scenario": "highway", "seed": 1, "camera_rule": "agent", "labels_version": LABELS_VERSION}
    write_episode(tmp_path / "highway-00001.npz", other_rule)
    (tmp_path / "highway-00002.npz").write_bytes(b"not a zip")
    collect(tmp_path, ["highway"], episodes=4, progress=False)
    assert recorded == [0, 1, 2, 3]
    assert all(read_episode(tmp_path / f"highway-{s:05d}.npz").meta["labels_version"] == LABELS_VERSION for s in range(4))
    collect(tmp_path, ["highway"], episodes=4, progress=False)
    assert recorded == [0, 1, 2, 3]          # all current now: nothing recorded again
    collect(tmp_path, ["highway"], episodes=4, progress=False, camera_rule="agent")
    assert recorded == [0, 1, 2, 3] * 2


def test_future_waypoints_straight_and_turned():
    # y-down world: heading 0 drives along +x; the ego frame's x is ahead, y to the left
    pos = np.stack([np.arange(6) * 2.0, np.zeros(6)], axis=1)
    wp = future_waypoints(pos, np.zeros(6))
    assert wp.shape == (5, 10, 2)
    assert np.allclose(wp[0, :, 0], 2.0 * np.arange(1, 11)) and np.allclose(wp[0, :, 1], 0)
    # heading pi/2 in a y-down frame points to +y; a car moving there sees the path straight ahead
    pos2 = np.stack([np.zeros(6), np.arange(6) * 1.0], axis=1)
    assert np.allclose(future_waypoints(pos2, np.full(6, np.pi / 2))[0, :, 0], np.arange(1, 11), atol=1e-9)


def write_route(root, frames=3):
    """A Bench2Drive-layout route: ego at theta 0 (CARLA compass: facing -y) moving 1 m per frame toward -y,
    a vehicle 10 m behind it."""
    from PIL import Image

    route = root / "HardBreakRoute" / "Town01_Route1_Weather0"
    (route / "anno").mkdir(parents=True)
    for i in range(frames):
        anno = {"x": 5.0, "y": -float(i), "theta": 0.0, "speed": 5.0, "steer": 0.0, "command_far": 4,
                "x_command_far": 5.0, "y_command_far": -float(i) - 30.0,
                "bounding_boxes": [{"class": "ego_vehicle", "location": [5.0, -float(i), 0]},
                                   {"class": "vehicle", "location": [5.0, -float(i) + 10.0, 0]}]}
        with gzip.open(route / "anno" / f"{i:05d}.json.gz", "wt") as f:
            json.dump(anno, f)
        for cam in CAMERAS:
            (route / "camera" / f"rgb_{cam}").mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 18), (10 * i, 20, 30)).save(route / "camera" / f"rgb_{cam}" / f"{i:05d}.jpg")
    return route


def test_bench2drive_reader(tmp_path):
    ep = read_bench2drive(write_route(tmp_path), stride=1, view_size=16)
    assert len(ep) == 2 and ep.cameras.shape == (2, 6, 16, 16, 3)
    assert np.allclose(ep.command_point[0], [30.0, 0.0], atol=1e-6)   # 30 m straight ahead
    assert np.allclose(ep.waypoints[0, :2], [[1.0, 0.0], [2.0, 0.0]], atol=1e-6)
    assert ep.kinematics[0, 0, 0] == 1 and np.allclose(ep.kinematics[0, 0, 1:3], [-10.0, 0.0], atol=1e-6)
    assert CAMERAS[1 + int(ep.camera[0])] == "back"
    assert SKILLS[int(ep.skill[0])] == "emergency_brake" and SKILLS[scenario_skill("ParkingExit")] == "parking_exit"
    write_episode(tmp_path / "b2d.npz", ep)                            # and it fits the episode format
    assert len(read_episode(tmp_path / "b2d.npz")) == 2


def test_bench2drive_reader_takes_the_authors_label_files(tmp_path):
    route = write_route(tmp_path, frames=9)
    cams, skills = tmp_path / "cam.json", tmp_path / "skill.json"
    cams.write_text(json.dumps({str(i): "NULL" if i < 4 else "CAM_FRONT_RIGHT" for i in range(9)}))
    skills.write_text(json.dumps({str(i): "NORMAL" if i < 4 else "GIVEWAY_HIGHWAY" for i in range(9)}))
    ep = read_bench2drive(route, stride=4, view_size=8, camera_labels=cams, skill_labels=skills)
    assert [CAMERAS[1 + int(c)] for c in ep.camera] == ["back", "front_right"]      # frames 0 and 4
    assert [SKILLS[int(s)] for s in ep.skill] == ["normal", "give_way"]
    assert (ep.meta["camera_rule"], ep.meta["skill_rule"]) == ("authors", "authors")
    plain = read_bench2drive(route, stride=4, view_size=8)
    assert (plain.meta["camera_rule"], plain.meta["skill_rule"]) == ("agent", "scenario")
    cams.write_text(json.dumps({"0": "NULL", "4": "CAM_ROOF"}))
    with pytest.raises(InputError, match=r"cam\.json: unknown label\(s\) \['CAM_ROOF'\]"):
        read_bench2drive(route, stride=4, view_size=8, camera_labels=cams)
    cams.write_text(json.dumps({"0": "NULL"}))
    with pytest.raises(InputError, match=r"no label for frame\(s\) \[4\]"):
        read_bench2drive(route, stride=4, view_size=8, camera_labels=cams)
    cams.write_text(json.dumps(["NULL", "NULL"]))
    with pytest.raises(InputError, match="expected a JSON object"):
        read_bench2drive(route, stride=4, view_size=8, camera_labels=cams)
    with pytest.raises(InputError, match="missing"):
        read_bench2drive(route, stride=4, view_size=8, skill_labels=tmp_path / "none.json")


def test_bench2drive_errors(tmp_path):
    with pytest.raises(InputError, match="route folder"):
        read_bench2drive(tmp_path)
    route = write_route(tmp_path)
    (route / "camera" / "rgb_back" / "00001.jpg").unlink()
    with pytest.raises(InputError, match="rgb_back"):
        read_bench2drive(route, stride=1)
    (route / "anno" / "00000.json.gz").write_bytes(b"broken")
    with pytest.raises(InputError, match="corrupt"):
        read_bench2drive(route, stride=1)
