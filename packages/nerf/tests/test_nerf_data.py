"""Both readers on fixture scenes in the real layouts, and their errors on bad input."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image

from moe_zoo.core import InputError
from moe_zoo.nerf.data import load_scene, read_mega_nerf, read_transforms


def test_mega_nerf_reader_converts_down_right_back_to_opengl(mega_nerf_dir, ring):
    scene = load_scene(mega_nerf_dir)
    assert scene.images.shape == (6, 8, 8, 3) and len(scene.train) == 4 and len(scene.val) == 2
    # the fixture wrote OpenGL poses as down/right/back columns: the reader must give them back
    expected = torch.from_numpy(ring(6)[[0, 1, 3, 4, 2, 5], :3]).float()
    assert torch.allclose(scene.c2w, expected, atol=1e-6)
    # the cameras look at the origin (down -z): the back axis points from the origin to the camera
    back, pos = scene.c2w[:, :, 2], scene.c2w[:, :, 3]
    assert torch.allclose(back, pos / pos.norm(dim=-1, keepdim=True), atol=1e-5)
    assert scene.up == (-1.0, 0.0, 0.0)
    stored = np.asarray(Image.open(mega_nerf_dir / "train" / "rgbs" / "000000.jpg"), np.float32) / 255
    assert np.allclose(scene.images[0].numpy(), stored)


def test_mega_nerf_reader_errors(mega_nerf_dir):
    (mega_nerf_dir / "train" / "rgbs" / "000001.jpg").unlink()
    with pytest.raises(InputError, match=r"000001\.jpg is missing"):
        read_mega_nerf(mega_nerf_dir)


def test_mega_nerf_non_finite_intrinsics(mega_nerf_dir):
    meta = mega_nerf_dir / "val" / "metadata" / "000002.pt"
    data = torch.load(meta, weights_only=True)
    data["intrinsics"] = torch.tensor([float("nan"), 7.0, 4.0, 4.0])
    torch.save(data, meta)
    with pytest.raises(InputError, match="intrinsics"):
        read_mega_nerf(mega_nerf_dir)


def test_mega_nerf_inconsistent_pose(mega_nerf_dir):
    meta = mega_nerf_dir / "train" / "metadata" / "000000.pt"
    data = torch.load(meta, weights_only=True)
    data["c2w"][:, 0] *= 3.0
    torch.save(data, meta)
    with pytest.raises(InputError, match="not orthonormal"):
        read_mega_nerf(mega_nerf_dir)


def test_mega_nerf_refuses_pickled_objects(mega_nerf_dir):
    torch.save({"origin_drb": argparse.Namespace(x=1), "pose_scale_factor": 1.0}, mega_nerf_dir / "coordinates.pt")
    with pytest.raises(InputError, match="weights_only=True"):
        read_mega_nerf(mega_nerf_dir)


def test_transforms_reader_nerfstudio(transforms_dir, ring):
    scene = load_scene(transforms_dir)
    assert scene.images.shape == (8, 12, 12, 3)
    assert scene.val == [7] and len(scene.train) == 7
    assert torch.allclose(scene.c2w, torch.from_numpy(ring(8)[:, :3]).float(), atol=1e-6)
    assert torch.allclose(scene.intrinsics[0], torch.tensor([10.0, 10.0, 6.0, 6.0]))


def test_transforms_reader_blender_rgba_on_white(blender_dir):
    scene = read_transforms(blender_dir)
    assert scene.train == [0, 1, 2, 3] and scene.val == [4, 5]
    assert torch.allclose(scene.images[0, 0, 0], torch.ones(3))          # transparent -> white
    assert torch.allclose(scene.images[0, 3, 3], torch.tensor([1.0, 0, 0]))
    focal = 0.5 * 8 / np.tan(0.4)
    assert scene.intrinsics[0, 0].item() == pytest.approx(focal, rel=1e-5)
    assert scene.box.background == (1.0, 1.0, 1.0)


def test_transforms_reader_errors(transforms_dir, tmp_path):
    meta = json.loads((transforms_dir / "transforms.json").read_text())
    meta["fl_x"] = float("inf")
    (transforms_dir / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="intrinsics"):
        read_transforms(transforms_dir)
    with pytest.raises(InputError, match=r"neither transforms\.json"):
        read_transforms(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        load_scene(tmp_path / "nowhere")
