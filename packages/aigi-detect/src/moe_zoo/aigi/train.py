"""OmniAID's two-stage training (official ``run_stage1_hard_sampling`` / ``run_stage2_router_training``).

Stage 1, hard sampling: the experts one after another, each alone (gate 1) on its own data, with
the classification head reset to its initial state before each: semantic expert ``e`` on the real
and fake images of domain ``e``; the artifact expert on real images vs their autoencoder
reconstructions (generator ``ae_recon``). Loss ``CE_ls + lambda_orth L_orth``.
Stage 2: the router and the head only (the head back at its initial state: the official stage 2
builds a fresh model and copies only the experts' weights into it), on all of stage 1's images
(the official scripts pass the same data paths, reconstructions last), loss ``CE_ls + lambda_bal L_bal + lambda_gcls CE(router,
domain)``; the reconstructions carry no router label (official: domain labels outside the semantic
experts' range are masked out of the router CE).

Each phase sees class-balanced epochs (every fake and as many randomly drawn real images, or the
reverse) and uses its own AdamW. The state is saved after every phase (``state_path``), so an
interrupted run resumes at the next phase.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from moe_zoo.aigi.data import ImageSet
from moe_zoo.aigi.losses import stage1_loss, stage2_loss
from moe_zoo.aigi.model import OmniAID
from moe_zoo.core import (
    Config,
    InputError,
    get_logger,
    resolve_device,
    save_checkpoint,
    seed_everything,
)
from moe_zoo.core.checks import check_ints, check_reals
from moe_zoo.core.training_state import check_resume, load_training_state, save_training_state

_log = get_logger(__name__)
RECON = "ae_recon"


@dataclass(frozen=True)
class TrainConfig(Config):
    """Optimiser settings: AdamW as the paper (lr 1e-4 there, on millions of images; see README)."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    stage1_epochs: int = 2
    stage2_epochs: int = 2
    phase_images: int = 0          # cap on images per phase and epoch (0 = all): for quick runs

    def __post_init__(self) -> None:
        check_ints("TrainConfig", self, {"batch_size": 1, "stage1_epochs": 0, "stage2_epochs": 0, "phase_images": 0})
        check_reals("TrainConfig", self, positive=("lr",), non_negative=("weight_decay",))


@dataclass
class Phase:
    name: str
    index: np.ndarray          # rows of the training set
    expert: int | None         # stage 1: the expert trained alone; None: stage 2
    epochs: int


@dataclass
class TrainResult:
    model: OmniAID
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    checkpoint: Path | None = None


def plan_phases(model: OmniAID, data: ImageSet, config: TrainConfig) -> list[Phase]:
    """The phases in order: one per semantic expert, the artifact expert, then the router."""
    mc = model.config
    real, recon = data.labels == 0, data.generators == RECON
    semantic = ~recon
    phases = []
    if not mc.n_semantic:            # one always-on adapter: one phase on everything
        return [Phase("adapter", np.flatnonzero(np.ones(len(data), bool)), 0, config.stage1_epochs)]
    for e, name in enumerate(mc.domains):
        phases.append(Phase(f"expert {e} ({name})", np.flatnonzero(semantic & (data.domains == e)), e,
                            config.stage1_epochs))
    if mc.artifact_expert:
        phases.append(Phase("artifact expert", np.flatnonzero(real | recon), mc.artifact_index, config.stage1_epochs))
    stage2 = np.ones(len(data), bool) if mc.artifact_expert else semantic
    phases.append(Phase("router + head", np.flatnonzero(stage2), None, config.stage2_epochs))
    return phases


def balanced_epoch(labels: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Positions into ``labels``: every image of the smaller class and as many drawn from the
    larger one, shuffled (at most ``cap`` in all when ``cap`` > 0)."""
    real, fake = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    if not len(real) or not len(fake):
        raise InputError(f"a training phase needs real and fake images, got {len(real)} real and {len(fake)} fake")
    n = min(len(real), len(fake), cap // 2 if cap else len(labels))
    chosen = np.concatenate([rng.choice(real, n, replace=False), rng.choice(fake, n, replace=False)])
    return rng.permutation(chosen)


def _trainable(model: OmniAID, phase: Phase) -> list[torch.nn.Parameter]:
    params = list(model.head.parameters())
    params += model.expert_parameters(phase.expert) if phase.expert is not None else model.router_parameters()
    return params


def _run_phase(model: OmniAID, data: ImageSet, phase: Phase, config: TrainConfig, rng: np.random.Generator,
               device: torch.device) -> dict:
    params = _trainable(model, phase)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    size = model.config.image_size
    totals: dict[str, float] = {}
    steps = 0
    for _ in range(phase.epochs):
        order = phase.index[balanced_epoch(data.labels[phase.index], config.phase_images, rng)]
        for start in range(0, len(order), config.batch_size):
            rows = order[start:start + config.batch_size]
            x, y, d = (t.to(device) for t in data.tensors(rows, size))
            d = d.masked_fill(torch.from_numpy(data.generators[rows] == RECON).to(device), -1)
            if phase.expert is not None:
                with model.hard_sampling(phase.expert):
                    losses = stage1_loss(model, model(x), y, phase.expert)
            else:
                losses = stage2_loss(model, model(x), y, d)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            optimizer.step()
            for key, value in losses.items():
                totals[key] = totals.get(key, 0.0) + float(value.detach())
            steps += 1
    for p in params:
        p.requires_grad_(False)
    record = {"phase": phase.name, "steps": steps, **{k: v / max(steps, 1) for k, v in totals.items()}}
    _log.info("%s: %s", phase.name, ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k not in ("phase",)))
    return record


def train(model: OmniAID, data: ImageSet, *, config: TrainConfig | None = None, seed: int = 0,
          device: str | torch.device | None = None, save_to: str | Path | None = None,
          state_path: str | Path | None = None, force_restart: bool = False,
          metadata: dict | None = None) -> TrainResult:
    """Both stages on ``data`` (real, fakes with domain labels, and ``ae_recon`` fakes for the
    artifact expert); writes a checkpoint to ``save_to`` when given."""
    config = config or TrainConfig()
    if data.domain_names and tuple(data.domain_names) != tuple(model.config.domains) and model.config.n_semantic:
        raise InputError(f"data domains {data.domain_names} differ from the model's {model.config.domains}")
    device = resolve_device(device)
    seed_everything(seed)
    model.to(device).train()
    began = time.perf_counter()
    phases = plan_phases(model, data, config)
    initial_head = {k: v.clone() for k, v in model.head.state_dict().items()}
    settings = {"train": config.to_dict(), "model": model.config.to_dict(), "seed": seed, "images": len(data)}
    done, history = 0, []
    if check_resume(state_path, settings, force_restart=force_restart):
        state = load_training_state(state_path, model)
        done, history = state.step, state.metadata.get("history", [])
        _log.info("resuming after phase %d of %d", done, len(phases))
    rng = np.random.default_rng([seed, done])
    for i, phase in enumerate(phases[done:], start=done):
        if model.config.n_semantic:       # official: head reset for each expert, and stage 2 starts from a
            model.head.load_state_dict(initial_head)       # fresh model into which the experts are merged
        history.append(_run_phase(model, data, phase, config, rng, device))
        if state_path is not None:
            save_training_state(state_path, model, step=i + 1, metadata={"settings": settings, "history": history})
    model.eval()
    result = TrainResult(model, history, time.perf_counter() - began)
    if save_to is not None:
        meta = {"train": config.to_dict(), "seed": seed, "history": history, "seconds": result.seconds,
                **(metadata or {})}
        result.checkpoint = save_checkpoint(save_to, model, meta)
    return result


def training_subset(data: ImageSet, families: tuple[str, ...] | list[str]) -> ImageSet:
    """The real images, the fakes of ``families`` and the autoencoder reconstructions of ``data``."""
    unknown = set(families) - set(data.generators[data.labels == 1].tolist())
    if unknown:
        raise InputError(f"no fakes from {sorted(unknown)} in this data "
                         f"(it has {sorted(set(data.generators[data.labels == 1].tolist()))})")
    return data.subset((data.labels == 0) | np.isin(data.generators, [*families, RECON]))
