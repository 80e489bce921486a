"""The shipped Switch-NeRF++ weights load and render a view."""

from __future__ import annotations

import numpy as np
import torch

from moe_zoo.nerf.predict import load
from moe_zoo.nerf.renderer import Cameras, render
from moe_zoo.nerf.scene import look_at


def test_shipped_weights_load_and_render():
    model = load()
    assert model.config.n_experts == 4 and model.occupancy.fraction > 0
    pose = torch.from_numpy(look_at(np.array([1.5, 0.0, 1.5]), np.zeros(3))).float()
    image = render(model, Cameras(pose[None], torch.tensor([[20.0, 20.0, 8.0, 8.0]]), 16, 16))
    assert image.shape == (1, 16, 16, 3) and torch.isfinite(image).all()
    assert image.std() > 0.01  # a scene, not a constant colour


def test_public_names_are_the_functions_after_their_modules_are_imported():
    import moe_zoo.nerf.meshing
    import moe_zoo.nerf.renderer
    import moe_zoo.nerf.training
    from moe_zoo import nerf

    assert nerf.render is moe_zoo.nerf.renderer.render and nerf.train is moe_zoo.nerf.training.train
    assert nerf.export is moe_zoo.nerf.meshing.export
