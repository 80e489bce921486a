"""Volume rendering against closed forms, contraction, and the occupancy grid's skipping."""

from __future__ import annotations

import math

import torch

from moe_zoo.nerf.rendering import (
    OccupancyGrid,
    camera_rays,
    composite,
    contract,
    sample_along_rays,
    to_unit,
)


def test_constant_density_slab_matches_beer_lambert():
    """A slab of density s and thickness L in front of a background: C = c (1 - e^{-sL}) + b e^{-sL}."""
    s, thickness, color, back = 1.7, 0.8, torch.tensor([0.2, 0.5, 0.9]), torch.tensor([1.0, 0.3, 0.0])
    near, far, n = 0.0, 4.0, 400
    t, delta = sample_along_rays(torch.zeros(5, 3), torch.eye(3)[[0, 1, 2, 0, 1]], near, far, n, jitter=False)
    inside = (t > 1.0) & (t < 1.0 + thickness)
    sigma = torch.where(inside, s, 0.0)
    out = composite(sigma, color.expand(5, n, 3), delta, back)
    transmitted = math.exp(-s * thickness)
    assert torch.allclose(out["opacity"], torch.full((5,), 1 - transmitted), atol=1e-5)
    assert torch.allclose(out["rgb"], color * (1 - transmitted) + back * transmitted, atol=1e-5)


def test_stratified_samples_stay_in_their_bins():
    g = torch.Generator().manual_seed(0)
    t, delta = sample_along_rays(torch.zeros(7, 3), torch.ones(7, 3), 1.0, 3.0, 10, jitter=True, generator=g)
    edges = torch.linspace(1.0, 3.0, 11)
    assert ((t >= edges[:-1]) & (t <= edges[1:])).all() and torch.allclose(delta, torch.full_like(delta, 0.2))


def test_contraction_is_identity_inside_and_bounded_outside():
    inner = torch.rand(100, 3) * 2 - 1
    assert torch.equal(contract(inner), inner)
    far = torch.randn(100, 3) * 1e4
    out = contract(far)
    assert (out.abs().amax(-1) < 2).all() and (out.abs().amax(-1) > 1.99).all()
    u = to_unit(torch.tensor([[3.0, 1.0, -2.0]]), torch.tensor([1.0, 1.0, 0.0]), 2.0)
    assert torch.allclose(u, (contract(torch.tensor([[1.0, 0.0, -1.0]])) + 2) / 4)


def test_camera_rays_centre_pixel_looks_down_minus_z():
    c2w = torch.eye(4)[:3]
    _origins, dirs = camera_rays(c2w, torch.tensor([10.0, 10.0, 2.0, 2.0]), 4, 4)
    assert dirs.shape == (16, 3) and torch.allclose(dirs.norm(dim=-1), torch.ones(16))
    corner = dirs[0]  # top-left pixel: left (-x) and up (+y)
    assert corner[0] < 0 and corner[1] > 0 and corner[2] < 0


def test_occupancy_grid_update_and_lookup():
    grid = OccupancyGrid(8, decay=0.5, threshold=0.01)
    assert grid.fraction == 1.0
    sigma = torch.zeros(8, 8, 8)
    sigma[2, 3, 4] = 100.0
    grid.update(sigma.reshape(-1), step_size=0.1)
    assert grid.occupied[1:4, 2:5, 3:6].all() and int(grid.occupied.sum()) == 27  # the cell and its neighbours
    u = torch.tensor([[2.5 / 8, 3.5 / 8, 4.5 / 8], [0.01, 0.01, 0.01]])
    assert grid.lookup(u).tolist() == [True, False]
    grid.update(torch.zeros(512), step_size=0.1)  # decays, still above the threshold once
    assert grid.occupied[2, 3, 4]


def test_occupancy_grid_never_empties_and_empty_batches_render():
    from moe_zoo.nerf.model import SwitchNeRFv1, SwitchNeRFv1Config

    grid = OccupancyGrid(4)
    grid.update(torch.zeros(64), step_size=0.1)  # a field that went transparent everywhere
    assert grid.fraction == 1.0
    model = SwitchNeRFv1(SwitchNeRFv1Config(width=8, expert_layers=2, n_experts=2))
    out = model(torch.rand(0, 3), torch.rand(0, 3))
    assert out.sigma.shape == (0,) and out.rgb.shape == (0, 3)


def test_early_ray_termination_skips_samples_behind_opaque_density_within_the_bound():
    from moe_zoo.nerf.model import HashNeRF, HashNeRFConfig, SceneBox
    from moe_zoo.nerf.renderer import render_rays

    torch.manual_seed(0)
    model = HashNeRF(HashNeRFConfig(min_res=2, max_res=16, log2_table=8, n_levels=4, hidden=8,
                                    scene=SceneBox(samples=32, background=(0.2, 0.4, 0.6)))).eval()
    with torch.no_grad():
        model.head.sigma.bias.fill_(2.5)  # sigma ~ 12: transmittance below 1e-4 after ~8 of 32 samples
    origins, dirs = torch.zeros(64, 3), torch.nn.functional.normalize(torch.randn(64, 3), dim=-1)
    with torch.inference_mode():
        full = render_rays(model, origins, dirs)
        stop = 1e-4
        early = render_rays(model, origins, dirs, stop_transmittance=stop, segment=4)
    assert int(full["evaluated"]) == 64 * 32 and int(early["evaluated"]) < 64 * 32 * 0.75
    assert (early["rgb"] - full["rgb"]).abs().max() <= stop  # skipped colour and background share: at most T_stop
