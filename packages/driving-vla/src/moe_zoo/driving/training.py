"""DriveMoE's two training stages (and the baselines' training on the same samples).

Stage 1: the camera router is teacher-forced (the labelled camera's tokens enter the context) and
trained by its focal loss; ``L = L_fm + 10 (L_cam + L_skill)``. Stage 2: the five candidate
cameras are mixed by ``gumbel_softmax(z, tau=1, hard=True)``; ``L = L_fm + 5 (L_cam + L_skill)``.
Terms a variant lacks (no vision MoE: no ``L_cam``; no action MoE: no ``L_skill``) are dropped.
The BC-MLP baseline regresses the normalised waypoints with MSE.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from moe_zoo.core import Config, InputError, create_model, save_checkpoint, seed_everything
from moe_zoo.core.checks import check_ints, check_reals
from moe_zoo.core.runtime import get_logger
from moe_zoo.core.training_state import check_resume, load_training_state, save_training_state
from moe_zoo.driving.data import FeatureSet, load_feature_set
from moe_zoo.driving.features import embed_texts
from moe_zoo.driving.losses import (
    class_alpha,
    flow_matching_loss,
    flow_path,
    focal_loss,
    sample_flow_time,
)
from moe_zoo.driving.model import N_ROUTED, N_SKILLS, DriveMoE

_log = get_logger(__name__)


@dataclass(frozen=True)
class TrainConfig(Config):
    """Steps per stage, batch, AdamW settings, router loss weights (10 then 5) and focal gamma."""

    stage1_steps: int = 1500
    stage2_steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    router_weight_stage1: float = 10.0
    router_weight_stage2: float = 5.0
    focal_gamma: float = 2.0

    def __post_init__(self) -> None:
        check_ints("TrainConfig", self, {"batch_size": 1, "stage1_steps": 0, "stage2_steps": 0})
        check_reals("TrainConfig", self, positive=("lr",),
                    non_negative=("weight_decay", "router_weight_stage1", "router_weight_stage2", "focal_gamma"))
        if self.stage1_steps + self.stage2_steps < 1:
            raise InputError("TrainConfig: stage1_steps + stage2_steps must be >= 1")


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def percentiles(x: Tensor, dims: int) -> tuple[Tensor, Tensor]:
    """1st / 99th percentiles over all but the last ``dims`` dimensions (a zero span widened to 1)."""
    flat = x.reshape(-1, *x.shape[x.dim() - dims:]).float()
    lo, hi = torch.quantile(flat, 0.01, dim=0), torch.quantile(flat, 0.99, dim=0)
    same = (hi - lo) < 1e-6
    return torch.where(same, lo - 1, lo), torch.where(same, hi + 1, hi)


def fit_pca(features: Tensor, dim: int, max_rows: int = 20_000) -> tuple[Tensor, Tensor]:
    """Mean ``[F]`` and the top-``dim`` principal directions ``[F, dim]`` of backbone tokens ``[..., F]``
    (eigenvectors of the covariance of an evenly spaced subset of rows; deterministic)."""
    flat = features.reshape(-1, features.shape[-1])
    rows = flat[torch.linspace(0, len(flat) - 1, min(max_rows, len(flat))).long()].double()
    mean = rows.mean(0)
    cov = (rows - mean).T @ (rows - mean) / max(len(rows) - 1, 1)
    _, vectors = torch.linalg.eigh(cov)
    return mean.float(), vectors[:, -dim:].flip(-1).float().contiguous()


def fit_statistics(model: nn.Module, data: FeatureSet) -> None:
    """Store the normalisation statistics (and, for DriveMoE, the feature PCA and the command text
    table) in the model."""
    lo, hi = percentiles(data.arrays["waypoints"], 2)
    model.waypoint_lo.copy_(lo)
    model.waypoint_hi.copy_(hi)
    if isinstance(model, DriveMoE):
        mean, basis = fit_pca(data.features, model.config.pca_dim)
        model.feat_mean.copy_(mean)
        model.feat_basis.copy_(basis)
        lo, hi = percentiles(data.arrays["history"], 1)
        model.proprio_lo.copy_(lo)
        model.proprio_hi.copy_(hi)
        if len(data.commands) > model.config.n_commands:
            raise InputError(f"{len(data.commands)} commands in the data, the model holds {model.config.n_commands}")
        table = torch.zeros_like(model.command_table)
        table[:len(data.commands)] = embed_texts(data.commands)
        model.command_table.copy_(table)
    else:
        scale = model.inputs({k: data.arrays[k][:1] for k in ("kinematics", "history", "command_point", "command")})
        full = torch.cat([data.arrays["kinematics"].flatten(1), data.arrays["history"].flatten(1),
                          data.arrays["command_point"]], dim=1).abs()
        s = torch.quantile(full.float(), 0.99, dim=0).clamp(min=1e-3)
        model.in_scale.copy_(torch.cat([s, torch.ones(scale.shape[1] - len(s))]))


def drivemoe_loss(model: DriveMoE, batch: dict[str, Tensor], stage: int, config: TrainConfig,
                  alphas: dict[str, Tensor], generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
    """One batch's loss for a stage (see the module docstring)."""
    x1 = model.normalise_waypoints(batch["waypoints"])
    x0 = torch.randn(x1.shape, generator=generator)
    t = sample_flow_time(len(x1), generator)
    x_t, _ = flow_path(x0, x1, t)
    out = model(batch, x_t, t, camera_mode="teacher" if stage == 1 else "gumbel")
    l_fm = flow_matching_loss(out.velocity, x0, x1)
    weight = config.router_weight_stage1 if stage == 1 else config.router_weight_stage2
    parts = {"fm": l_fm.item()}
    loss = l_fm
    if out.camera_logits is not None:
        l_cam = focal_loss(out.camera_logits, batch["camera"], alphas["camera"], config.focal_gamma)
        loss = loss + weight * l_cam
        parts["cam"] = l_cam.item()
    if out.skill_logits is not None:
        l_skill = focal_loss(out.skill_logits, batch["skill"], alphas["skill"], config.focal_gamma)
        loss = loss + weight * l_skill
        parts["skill"] = l_skill.item()
    return loss, parts


def fit(model: nn.Module, data: FeatureSet, config: TrainConfig | None = None, *, seed: int = 0,
        progress: bool = True, state_path: str | Path | None = None, force_restart: bool = False,
        settings: dict | None = None) -> FitResult:
    """Train ``model`` (DriveMoE variant or BC-MLP) on ``data``; resumable through ``state_path``."""
    config = config or TrainConfig()
    if len(data) < 2:
        raise InputError("fit: need at least 2 training samples")
    seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        fit_statistics(model, data)
        if isinstance(model, DriveMoE):
            data = data.with_features(model.reduce)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total = config.stage1_steps + config.stage2_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + np.cos(np.pi * min(s, total) / total)))
    alphas = {"camera": class_alpha(data.arrays["camera"], N_ROUTED), "skill": class_alpha(data.arrays["skill"], N_SKILLS)}
    start = 0
    settings = {"train": config.to_dict(), "seed": seed, "samples": len(data), **(settings or {})}
    if check_resume(state_path, settings, force_restart=force_restart):
        start = load_training_state(state_path, model, optimizer, scheduler=scheduler).step
        _log.info("resumed from %s at step %d", state_path, start)
    result = FitResult()
    began = time.perf_counter()
    model.train()
    bar = tqdm(range(start, total), desc=f"train {getattr(model, 'registry_name', type(model).__name__)}",
               disable=not progress, initial=start, total=total)
    for step in bar:
        generator.manual_seed(seed * 1_000_003 + step)
        index = torch.randint(0, len(data), (config.batch_size,), generator=generator)
        batch = data.batch(index)
        if isinstance(model, DriveMoE):
            stage = 1 if step < config.stage1_steps else 2
            loss, parts = drivemoe_loss(model, batch, stage, config, alphas, generator)
        else:
            loss = nn.functional.mse_loss(model(batch), model.normalise_waypoints(batch["waypoints"]))
            parts = {"mse": loss.item()}
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if step % 50 == 0 or step == total - 1:
            result.history.append({"step": step, **parts})
            bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items()})
        if state_path is not None and ((step + 1) % 500 == 0 or step == total - 1):
            save_training_state(state_path, model, optimizer, step=step + 1, scheduler=scheduler,
                                metadata={"settings": settings})
    model.eval()
    result.seconds = time.perf_counter() - began
    return result


def train(model_name: str, episodes: str | Path | list[Path], *, out: str | Path | None = None,
          config: TrainConfig | None = None, seed: int = 0, progress: bool = True,
          state_path: str | Path | None = None, force_restart: bool = False,
          data: FeatureSet | None = None) -> tuple[nn.Module, FitResult]:
    """Build ``model_name`` from the registry, fit it on ``episodes`` and optionally save a checkpoint."""
    data = data if data is not None else load_feature_set(episodes, progress=progress)
    seed_everything(seed)
    model = create_model(model_name)
    result = fit(model, data, config, seed=seed, progress=progress, state_path=state_path,
                 force_restart=force_restart, settings={"model": model_name})
    if out is not None:
        save_checkpoint(out, model, {"seed": seed, "train": (config or TrainConfig()).to_dict(),
                                     "samples": len(data), "episodes": len(data.scenarios),
                                     "scenarios": sorted(set(data.scenarios)), "train_seconds": result.seconds,
                                     "final": result.history[-1] if result.history else {}})
    return model, result
