"""Training recipe: random rays of the training views, photometric MSE + the gate's balance loss.

``L = mean_rays ||C(r) - C_gt(r)||^2 + lambda * E * sum_e f_e P_e``  (lambda = 5e-4, Switch-NeRF),
Adam with an exponential learning-rate decay to 0.1x over the run (Switch-NeRF's schedule, shortened),
the occupancy grid refreshed from the field's density every ``occupancy_every`` steps (with
``occupancy=False`` it is never refreshed, so every sample is evaluated: v1 has no such grid). Progress
is a tqdm bar; with ``state_path`` the run writes an atomic, resumable training state every
``checkpoint_every`` steps and resumes from it when the settings match.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from moe_zoo.core import InputError, get_logger, resolve_device, save_checkpoint, seed_everything
from moe_zoo.core.checks import check_ints, check_reals
from moe_zoo.core.config import Config
from moe_zoo.core.training_state import check_resume, load_training_state, save_training_state
from moe_zoo.nerf.data import Scene, load_scene
from moe_zoo.nerf.metrics import psnr, ssim
from moe_zoo.nerf.model import MODELS, build_model
from moe_zoo.nerf.renderer import Cameras, render, render_rays
from moe_zoo.nerf.rendering import camera_rays

_log = get_logger(__name__)


@dataclass(frozen=True)
class TrainConfig(Config):
    model: str = "switch-nerf-pp"
    steps: int = 400
    rays: int = 512
    lr: float = 0.01
    lr_final_ratio: float = 0.1
    balance: float = 5e-4
    occupancy_every: int = 16
    occupancy: bool = True
    checkpoint_every: int = 200
    eval_every: int = 0
    eval_views: int = 2
    seed: int = 0
    model_overrides: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise InputError(f"TrainConfig.model must be one of {sorted(MODELS)}, got {self.model!r}")
        check_ints("TrainConfig", self, {"steps": 1, "rays": 1, "occupancy_every": 1,
                                         "checkpoint_every": 1, "eval_every": 0, "eval_views": 1, "seed": 0})
        check_reals("TrainConfig", self, positive=("lr", "lr_final_ratio"), non_negative=("balance",))


@dataclass
class TrainResult:
    model: nn.Module
    seconds: float                                   # training time, evaluation excluded
    history: list[dict] = field(default_factory=list)  # per eval: step, seconds, cpu_seconds, psnr
    cpu_seconds: float = 0.0                         # the same in CPU time of this process


def scene_model(config: TrainConfig, scene: Scene) -> nn.Module:
    """The registered model with the scene's box and one appearance code per training image."""
    head = MODELS[config.model][1].head.replace(n_images=len(scene.train))
    return build_model(config.model, head=head, scene=scene.box, **config.model_overrides)


def training_rays(scene: Scene) -> tuple[torch.Tensor, ...]:
    """All training rays: origins, directions, colours, image index (into the training views)."""
    origins, dirs, colors, image = [], [], [], []
    for j, i in enumerate(scene.train):
        o, d = camera_rays(scene.c2w[i], scene.intrinsics[i], scene.height, scene.width)
        origins.append(o)
        dirs.append(d)
        colors.append(scene.images[i].reshape(-1, 3))
        image.append(torch.full((o.shape[0],), j, dtype=torch.long))
    return torch.cat(origins), torch.cat(dirs), torch.cat(colors), torch.cat(image)


@torch.inference_mode()
def refresh_occupancy(model: nn.Module, generator: torch.Generator, chunk: int = 65536) -> None:
    """Probe the field's density once per occupancy cell; threshold on the alpha of one ray step."""
    grid = model.occupancy
    points = grid.cell_points(generator)
    sigma = torch.cat([model.density(p) for p in points.split(chunk)])
    grid.update(sigma, (model.scene.far - model.scene.near) / model.scene.samples)


def evaluate(model: nn.Module, scene: Scene, views: list[int] | None = None) -> dict:
    """PSNR / SSIM (mean over the held-out ``views``) and render seconds per image."""
    views = scene.val if views is None else views
    started = time.perf_counter()
    images = render(model, Cameras.from_scene(scene, views))
    seconds = (time.perf_counter() - started) / len(views)
    truth = scene.images[views]
    return {"psnr": sum(psnr(p, t) for p, t in zip(images, truth)) / len(views),
            "ssim": sum(ssim(p, t) for p, t in zip(images, truth)) / len(views),
            "render_s": seconds, "images": images}


def make_optimizer(model: nn.Module, config: TrainConfig) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Adam (Instant-NGP's betas and eps) with the exponential decay to ``lr_final_ratio`` over the run."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.99), eps=1e-15, fused=True)
    return optimizer, torch.optim.lr_scheduler.ExponentialLR(optimizer, config.lr_final_ratio ** (1 / config.steps))


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, rays: tuple[torch.Tensor, ...],
               config: TrainConfig, step: int, generator: torch.Generator) -> torch.Tensor:
    """One step (module docstring) on ``config.rays`` random rays of ``rays`` (:func:`training_rays`); returns the MSE."""
    origins, dirs, colors, image = rays
    device = next(model.parameters()).device
    generator.manual_seed(config.seed * 1_000_003 + step)  # per-step streams: a resumed run draws the same rays
    if config.occupancy and step % config.occupancy_every == 0 and step > 0:
        refresh_occupancy(model, generator)
    batch = torch.randint(0, origins.shape[0], (config.rays,), generator=generator)
    out = render_rays(model, origins[batch].to(device), dirs[batch].to(device), image=image[batch].to(device),
                      jitter=True, generator=generator)
    mse = torch.mean((out["rgb"] - colors[batch].to(device)) ** 2)
    loss = mse + config.balance * out["aux"]
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss became {float(loss)} at step {step}; lower TrainConfig.lr")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return mse.detach()


def train(scene: str | Path | Scene = "builtin", config: TrainConfig | None = None, *, checkpoint: str | Path | None = None,
          state_path: str | Path | None = None, force_restart: bool = False, device: str | None = None,
          progress: bool = True, scene_kwargs: dict | None = None) -> TrainResult:
    """Fit a field to ``scene`` (``"builtin"``, a Mega-NeRF folder, a ``transforms.json`` folder or a Scene)."""
    config = config or TrainConfig()
    scene = load_scene(scene, **(scene_kwargs or {}))
    settings = {"train_config": config.to_dict(), "scene": scene.name, "views": len(scene)}
    resuming = check_resume(state_path, settings, force_restart=force_restart, key="settings")
    device = resolve_device(device)
    seed_everything(config.seed)
    model = scene_model(config, scene).to(device)
    optimizer, scheduler = make_optimizer(model, config)
    generator = torch.Generator()
    rays = training_rays(scene)
    step, seconds, cpu_seconds, history = 0, 0.0, 0.0, []
    if resuming:
        state = load_training_state(state_path, model, optimizer, scheduler=scheduler)
        step, history = state.step, state.metadata.get("history", [])
        seconds, cpu_seconds = state.metadata.get("seconds", 0.0), state.metadata.get("cpu_seconds", 0.0)
        _log.info("resumed %s at step %d", state_path, step)
    bar = tqdm(total=config.steps, initial=step, disable=not progress, desc=f"train {config.model}", unit="step")
    model.train()
    while step < config.steps:
        started, cpu_started = time.perf_counter(), time.process_time()
        mse = train_step(model, optimizer, scheduler, rays, config, step, generator)
        step += 1
        seconds += time.perf_counter() - started
        cpu_seconds += time.process_time() - cpu_started
        bar.update(1)
        bar.set_postfix(psnr=f"{-10 * torch.log10(mse).item():.2f}", occ=f"{model.occupancy.fraction:.2f}")
        if config.eval_every and (step % config.eval_every == 0 or step == config.steps):
            metrics = evaluate(model, scene, scene.val[: config.eval_views])
            history.append({"step": step, "seconds": seconds, "cpu_seconds": cpu_seconds, "psnr": metrics["psnr"]})
        if state_path is not None and (step % config.checkpoint_every == 0 or step == config.steps):
            save_training_state(state_path, model, optimizer, step=step, scheduler=scheduler,
                                metadata={"settings": settings, "seconds": seconds, "cpu_seconds": cpu_seconds,
                                          "history": history})
    bar.close()
    model.eval()
    if checkpoint is not None:
        save_checkpoint(checkpoint, model, {"train_config": config.to_dict(), "scene": scene.name,
                                            "train_seconds": seconds, "history": history})
    return TrainResult(model, seconds, history, cpu_seconds)
