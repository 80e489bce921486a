"""Fixture scenes written in the real on-disk layouts (tiny: 6-8 views of 8x8 or 12x12 pixels)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRITON_INTERPRET", "1")  # Triton kernels run on CPU in the tests
torch.set_num_threads(1)


def ring_poses(n: int) -> np.ndarray:
    """OpenGL c2w [n, 4, 4]: cameras on a ring at height 1 looking at the origin."""
    from moe_zoo.nerf.scene import look_at

    poses = []
    for i in range(n):
        a = 2 * math.pi * i / n
        pose = np.eye(4)
        pose[:3] = look_at(np.array([2 * math.cos(a), 2 * math.sin(a), 1.0]), np.zeros(3))
        poses.append(pose)
    return np.stack(poses)


def images(n: int, size: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(rng.random((size, size, 3)) * 255).astype(np.uint8) for _ in range(n)]


@pytest.fixture
def ring():
    """The fixture scenes' poses, for comparisons."""
    return ring_poses


@pytest.fixture
def mega_nerf_dir(tmp_path: Path) -> Path:
    """Mega-NeRF layout: coordinates.pt, {train,val}/rgbs/*.jpg, {train,val}/metadata/*.pt (c2w down/right/back)."""
    root = tmp_path / "mill19-tiny"
    root.mkdir()
    torch.save({"origin_drb": torch.tensor([10.0, -3.0, 2.0]), "pose_scale_factor": 25.0}, root / "coordinates.pt")
    poses = ring_poses(6)
    for i, (pose, img) in enumerate(zip(poses, images(6))):
        part = "val" if i % 3 == 2 else "train"
        (root / part / "rgbs").mkdir(parents=True, exist_ok=True)
        (root / part / "metadata").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / part / "rgbs" / f"{i:06d}.jpg", quality=100)
        right, up, back, pos = pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3]
        drb = np.stack([-up, right, back, pos], 1)  # columns: down, right, back, position
        torch.save({"W": 8, "H": 8, "intrinsics": torch.tensor([7.0, 7.0, 4.0, 4.0]),
                    "c2w": torch.from_numpy(drb).float()}, root / part / "metadata" / f"{i:06d}.pt")
    return root


@pytest.fixture
def transforms_dir(tmp_path: Path) -> Path:
    """nerfstudio layout: transforms.json with fl_x/fl_y/cx/cy/w/h and frames of PNG files (12x12: SSIM's window is 11)."""
    root = tmp_path / "ns-tiny"
    (root / "images").mkdir(parents=True)
    frames = []
    for i, (pose, img) in enumerate(zip(ring_poses(8), images(8, 12))):
        Image.fromarray(img).save(root / "images" / f"frame_{i:05d}.png")
        frames.append({"file_path": f"images/frame_{i:05d}.png", "transform_matrix": pose.tolist()})
    (root / "transforms.json").write_text(json.dumps({"fl_x": 10.0, "fl_y": 10.0, "cx": 6.0, "cy": 6.0, "w": 12, "h": 12,
                                                      "frames": frames}))
    return root


@pytest.fixture
def blender_dir(tmp_path: Path) -> Path:
    """Blender layout: transforms_{train,val}.json with camera_angle_x, RGBA PNGs named without suffix."""
    root = tmp_path / "blender-tiny"
    for part, ids in (("train", range(4)), ("val", range(4, 6))):
        (root / part).mkdir(parents=True)
        frames = []
        for i in ids:
            rgba = np.zeros((8, 8, 4), np.uint8)
            rgba[2:6, 2:6] = (255, 0, 0, 255)
            Image.fromarray(rgba).save(root / part / f"r_{i}.png")
            frames.append({"file_path": f"./{part}/r_{i}", "transform_matrix": ring_poses(6)[i].tolist()})
        (root / f"transforms_{part}.json").write_text(json.dumps({"camera_angle_x": 0.8, "frames": frames}))
    return root
