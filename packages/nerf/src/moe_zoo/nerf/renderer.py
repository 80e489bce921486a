"""Rendering a trained field: rays -> samples (occupancy-grid skipping) -> field -> compositing.

:func:`render_rays` is shared by training and inference; :func:`render` renders whole cameras,
:func:`flythrough` a smooth drone path around a scene, :func:`write_flythrough` an MP4 (PyAV).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from moe_zoo.core import InputError
from moe_zoo.nerf.rendering import camera_rays, composite, sample_along_rays, to_unit


@dataclass
class Cameras:
    """Pinhole cameras: ``c2w [N, 3, 4]`` (OpenGL axes), ``intrinsics [N, 4]`` (fx, fy, cx, cy), one image size."""

    c2w: Tensor
    intrinsics: Tensor
    height: int
    width: int

    def __post_init__(self) -> None:
        self.c2w = torch.as_tensor(self.c2w, dtype=torch.float32).reshape(-1, 3, 4)
        self.intrinsics = torch.as_tensor(self.intrinsics, dtype=torch.float32).reshape(-1, 4)
        if self.c2w.shape[0] != self.intrinsics.shape[0]:
            raise InputError(f"Cameras: {self.c2w.shape[0]} poses but {self.intrinsics.shape[0]} intrinsics")
        if not (torch.isfinite(self.c2w).all() and torch.isfinite(self.intrinsics).all()):
            raise InputError("Cameras: poses and intrinsics must be finite")
        if (self.intrinsics[:, :2] <= 0).any() or self.height < 1 or self.width < 1:
            raise InputError("Cameras: focal lengths and the image size must be positive")

    @classmethod
    def from_scene(cls, scene, views: list[int] | None = None) -> Cameras:
        views = list(range(len(scene))) if views is None else views
        return cls(scene.c2w[views], scene.intrinsics[views], scene.height, scene.width)

    def __len__(self) -> int:
        return self.c2w.shape[0]


def render_rays(model: nn.Module, origins: Tensor, dirs: Tensor, *, image: Tensor | None = None,
                jitter: bool = False, generator: torch.Generator | None = None,
                expert_map: bool = False, stop_transmittance: float = 0.0, segment: int = 8) -> dict[str, Tensor]:
    """Render rays through ``model`` (``model.scene.samples`` stratified samples per ray between
    ``near`` and ``far``): samples in empty occupancy cells are skipped (density 0).

    With ``stop_transmittance > 0`` (inference) the samples are evaluated front to back in
    segments of ``segment`` and a ray is no longer evaluated once its transmittance
    ``T = exp(-sum sigma_j delta_j)`` has fallen below ``stop_transmittance`` (Instant-NGP's early
    ray termination): the skipped samples' share of the colour is at most ``stop_transmittance``.

    Returns ``rgb [R, 3]``, ``opacity [R]``, ``aux`` (the gate's balance loss over the evaluated
    samples, averaged over the segments that evaluated any), ``evaluated`` (number of samples run
    through the field) and, with ``expert_map``, ``expert [R]`` (the expert of the sample with the
    largest rendering weight, -1 for none).
    """
    box = model.scene
    center = torch.tensor(box.center, dtype=origins.dtype, device=origins.device)
    t, delta = sample_along_rays(origins, dirs, box.near, box.far, box.samples, jitter=jitter, generator=generator)
    u = to_unit(origins[:, None, :] + t[..., None] * dirs[:, None, :], center, box.radius)
    keep = model.occupancy.lookup(u)
    rays = torch.arange(origins.shape[0], device=origins.device)[:, None]
    log_stop = math.log(stop_transmittance) if stop_transmittance > 0 else -math.inf
    log_trans = u.new_zeros(origins.shape[0])                          # log T before the segment
    sigmas, rgbs, experts, aux, evaluated = [], [], [], [], 0
    for cols in torch.arange(box.samples, device=origins.device).split(segment if stop_transmittance > 0 else box.samples):
        active = keep[:, cols] & (log_trans > log_stop)[:, None]
        sigmas.append(u.new_zeros(active.shape))
        rgbs.append(u.new_zeros(*active.shape, 3))
        experts.append(torch.full(active.shape, -1, dtype=torch.long, device=origins.device))
        count = int(active.sum())
        if count == 0 and aux:  # nothing left to evaluate in this segment
            continue
        ray_of = rays.expand_as(active)[active]
        out = model(u[:, cols][active], dirs[ray_of], None if image is None else image[ray_of])
        sigmas[-1] = sigmas[-1].masked_scatter(active, out.sigma)
        rgbs[-1] = rgbs[-1].masked_scatter(active[..., None], out.rgb)
        if expert_map and out.routing is not None:
            experts[-1] = experts[-1].masked_scatter(active, out.routing.indices[:, 0])
        log_trans = log_trans - (sigmas[-1] * delta[:, cols]).sum(-1)
        aux.append(out.aux_loss())
        evaluated += count
    background = torch.tensor(box.background, dtype=origins.dtype, device=origins.device)
    result = composite(torch.cat(sigmas, 1), torch.cat(rgbs, 1), delta, background)
    result["aux"] = torch.stack(aux).mean()
    result["evaluated"] = torch.tensor(evaluated)
    if expert_map:
        best = result["weights"].argmax(-1, keepdim=True)
        result["expert"] = torch.where(result["opacity"] > 0.5, torch.cat(experts, 1).gather(1, best)[:, 0], -1)
    return result


STOP_TRANSMITTANCE = 1e-4  # render()'s default early ray termination (Instant-NGP's value)


@torch.inference_mode()
def render(model: nn.Module, cameras: Cameras, *, chunk: int = 1024, expert_map: bool = False,
           stop_transmittance: float = STOP_TRANSMITTANCE) -> Tensor | tuple[Tensor, Tensor]:
    """Images ``[N, H, W, 3]`` in ``[0, 1]`` of ``cameras`` (and ``[N, H, W]`` expert ids with ``expert_map``),
    ``chunk`` rays at a time, early ray termination at ``stop_transmittance`` (0: every sample evaluated)."""
    if not isinstance(cameras, Cameras):
        raise InputError(f"render expects Cameras, got {type(cameras).__name__}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    images, experts = [], []
    for c2w, k in zip(cameras.c2w, cameras.intrinsics):
        origins, dirs = camera_rays(c2w, k, cameras.height, cameras.width)
        parts = [render_rays(model, o.to(device), d.to(device), expert_map=expert_map,
                             stop_transmittance=stop_transmittance)
                 for o, d in zip(origins.split(chunk), dirs.split(chunk))]
        images.append(torch.cat([p["rgb"] for p in parts]).clamp(0, 1).view(cameras.height, cameras.width, 3).cpu())
        if expert_map:
            experts.append(torch.cat([p["expert"] for p in parts]).view(cameras.height, cameras.width).cpu())
    model.train(was_training)
    return (torch.stack(images), torch.stack(experts)) if expert_map else torch.stack(images)


def flythrough(scene, n_frames: int = 48) -> Cameras:
    """A smooth orbit over the scene's cameras: their mean height and distance, looking at the box centre."""
    from moe_zoo.nerf.scene import look_at

    if n_frames < 1:
        raise InputError(f"n_frames must be >= 1, got {n_frames}")
    pos = scene.c2w[:, :, 3].numpy().astype(np.float64)
    up = np.asarray(scene.up, dtype=np.float64)
    target = np.asarray(scene.box.center, dtype=np.float64)
    rel = pos - target
    height = float((rel @ up).mean())
    flat = rel - np.outer(rel @ up, up)
    radius = float(np.linalg.norm(flat, axis=1).mean())
    a_axis = flat[0] / max(np.linalg.norm(flat[0]), 1e-9)
    b_axis = np.cross(up, a_axis)
    poses = []
    for i in range(n_frames):
        angle = 2 * math.pi * i / n_frames
        eye = target + up * height + radius * (math.cos(angle) * a_axis + math.sin(angle) * b_axis)
        poses.append(look_at(eye, target, up=tuple(up)))
    k = scene.intrinsics[0]
    return Cameras(torch.from_numpy(np.stack(poses)).float(), k.expand(n_frames, 4), scene.height, scene.width)


def write_flythrough(model: nn.Module, scene, path: str | Path, *, n_frames: int = 48, fps: int = 12) -> Path:
    """Render :func:`flythrough` and write it as an MP4 with PyAV."""
    from moe_zoo.core.video import write_video

    frames = render(model, flythrough(scene, n_frames))
    write_video(path, (frames.numpy() * 255).round().astype(np.uint8), fps)
    return Path(path)
