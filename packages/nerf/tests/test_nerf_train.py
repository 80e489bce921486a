"""A 2-step training run, resuming, render, fly-through video, export and the CLI on a fixture scene."""

from __future__ import annotations

import importlib

import pytest
import torch

from moe_zoo.core import InputError
from moe_zoo.core.cli import main
from moe_zoo.nerf.data import load_scene
from moe_zoo.nerf.meshing import density_grid, export
from moe_zoo.nerf.predict import load
from moe_zoo.nerf.renderer import Cameras, render, write_flythrough
from moe_zoo.nerf.training import TrainConfig, train

TINY = {"expert_min_res": (2, 4), "expert_max_res": (8, 16), "expert_log2_table": (8, 10), "expert_hidden": (8, 16),
        "n_levels": 4, "gate_grid": (2, 8, 8), "gate_hidden": 8, "feature_dim": 6}


def tiny(**kw) -> TrainConfig:
    return TrainConfig(steps=2, rays=64, model_overrides=TINY, **kw)


def test_two_step_training_run_checkpoint_and_render(transforms_dir, tmp_path):
    result = train(transforms_dir, tiny(), checkpoint=tmp_path / "m.safetensors", progress=False)
    model = load(tmp_path / "m.safetensors")
    assert model.config.expert_max_res == (8, 16) and model.config.head.n_images == 7
    for a, b in zip(result.model.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    scene = load_scene(transforms_dir)
    images, experts = render(model, Cameras.from_scene(scene, scene.val), expert_map=True)
    assert images.shape == (1, 12, 12, 3) and images.min() >= 0 and images.max() <= 1
    assert experts.shape == (1, 12, 12) and experts.max() < 2


def test_interrupted_run_resumes_to_the_same_weights(transforms_dir, tmp_path, monkeypatch):
    config = TrainConfig(steps=4, rays=64, checkpoint_every=2, model_overrides=TINY)
    straight = train(transforms_dir, config, progress=False).model.state_dict()
    state = tmp_path / "state.safetensors"
    train_module = importlib.import_module("moe_zoo.nerf.training")
    real_save = train_module.save_training_state

    def save_then_stop(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_training_state", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(transforms_dir, config, state_path=state, progress=False)
    monkeypatch.setattr(train_module, "save_training_state", real_save)
    resumed = train(transforms_dir, config, state_path=state, progress=False).model.state_dict()
    for key in straight:
        assert torch.allclose(straight[key].float(), resumed[key].float(), atol=1e-6), key
    with pytest.raises(InputError, match="seed"):
        train(transforms_dir, config.replace(seed=1), state_path=state, progress=False)


def test_flythrough_video_and_export(transforms_dir, tmp_path):
    from moe_zoo.core.video import read_video

    model = train(transforms_dir, tiny(), progress=False).model
    scene = load_scene(transforms_dir)
    path = write_flythrough(model, scene, tmp_path / "fly.mp4", n_frames=3, fps=3)
    assert read_video(path)[0].shape[:3] == (3, 12, 12)
    sigma, _, _ = density_grid(model, 16)
    level = float(torch.tensor(sigma).median())
    mesh = export(model, tmp_path / "m.ply", resolution=16, level=level)
    import open3d as o3d

    assert len(o3d.io.read_triangle_mesh(str(mesh)).vertices) > 0
    with pytest.raises(InputError, match="must end with"):
        export(model, tmp_path / "m.stl")


def test_cli_train_eval_render(transforms_dir, tmp_path, capsys):
    out = tmp_path / "cli.safetensors"
    assert main(["nerf", "train", "--scene", str(transforms_dir), "--model", "hash-nerf", "--steps", "2", "--rays", "32",
                 "--out", str(out), "--quiet"]) == 0
    assert main(["nerf", "eval", "--scene", str(transforms_dir), "--model", str(out)]) == 0
    assert "PSNR" in capsys.readouterr().out
    assert main(["nerf", "render", "--scene", str(transforms_dir), "--model", str(out), "--out",
                 str(tmp_path / "v.png"), "--views", "1"]) == 0
    assert (tmp_path / "v.png").is_file()
    assert main(["nerf", "train", "--scene", str(tmp_path / "missing")]) != 0
