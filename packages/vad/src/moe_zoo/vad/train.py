"""Training recipes: GS-MoE's three stages, its ablations, and the MIL ranking baseline.

GS-MoE (order from the paper; step counts and learning rate scaled to the built-in data):

1. **Task encoder** (UR-DMU) on raw snippet features, batches of ``b`` normal + ``b`` abnormal
   videos each resampled to ``n_segments`` segments: a warm-up with UR-DMU's loss alone
   (:func:`~moe_zoo.vad.losses.urdmu_loss`) for the first ``encoder_tgs_from`` share of its steps,
   then ``L = L_urdmu + w_tgs L_tgs(c)`` with the TGS term on its own coarse scores ``c``
   (:func:`~moe_zoo.vad.losses.tgs_loss`: Gaussians fitted to the batch's current, detached curves
   of the anomalous videos, as the paper guides the task encoder). The paper-scale presets do this
   (``encoder_tgs_from = 0.5``); the built-in recipe's default ``encoder_tgs_from = 1`` keeps the
   whole stage a warm-up (UR-DMU's loss alone), because the TGS term lowered the frame AUC on
   held-out cameras (package README). The stage ends on an EMA of its weights
   (:func:`update_weight_ema`, ``encoder_ema``; ours).
2. **Class experts** on the frozen task-aware features. Expert ``e`` sees only videos of class
   ``e`` (target 1) and normal videos (target 0): ``L_e = BCE(topk(s^e), y) + w_tgs L_tgs(s^e)``,
   the TGS term on its class's videos. The Gaussians are fitted to the *task encoder's coarse
   scores* (frozen after stage 1), so the pseudo-label ``y_hat`` of a video is fixed.
3. **Gate** on frozen experts and encoder: ``L = BCE(topk(y), y) + w_tgs L_tgs(y) + w_kl L_kl`` on
   the final score with the same pseudo-labels (``gate_tgs``), where
   ``L_kl = mean_t KL(g_t || uniform)`` (moe-core :func:`~moe_zoo.core.gate_kl_to_uniform`,
   ``gate_uniform_kl``; our addition, the paper gives no gate regulariser). The frozen experts
   already fit the training clips, so the first two terms barely constrain the gate, and without
   ``L_kl`` its weights follow training noise (variant ``gsmoe-free-gate``; numbers in the README).

Why the coarse curve: fitting the splats to an expert's own early curve (self-training) let a
model that had learnt to flag whole anomalous videos chase its own noise peaks, and the ranking
collapsed (frame AUC < 0.5 in our first runs); the coarse UR-DMU curve is what the paper's stage
1 produces and it localises well.

Variants (same data, seeds and schedule): ``gsmoe``, ``gsmoe-attn`` (the task encoder with
UR-DMU's two self-attention layers, ``GSMoEConfig.encoder_layers = 2``; the default has none,
see the package README), ``gsmoe-fusion`` (the paper's full gate
with the cross-attention fusion branch, ``GSMoEConfig.gate_fusion``), ``gsmoe-free-gate``
(``gate_uniform_kl = 0``), ``gsmoe-no-tgs`` (``w_tgs = 0``),
``single`` (one class-agnostic expert trained on every anomaly, no gate), ``urdmu`` (stage 1
only, the coarse score) and ``mil`` (Sultani et al.'s ranking loss on the raw features).
Every batch is drawn from a generator seeded by ``(seed, stage, step)``, so a resumed run repeats
the uninterrupted one exactly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from moe_zoo.core import (
    Config,
    InputError,
    gate_kl_to_uniform,
    get_logger,
    resolve_device,
    save_checkpoint,
    seed_everything,
)
from moe_zoo.core.training_state import check_resume, load_training_state, save_training_state
from moe_zoo.vad.data import FeatureSet, pool_segments
from moe_zoo.vad.features import FeatureConfig
from moe_zoo.vad.losses import (
    bce,
    gaussian_pseudo_labels,
    mil_ranking_loss,
    tgs_loss,
    topk_mil_loss,
    urdmu_loss,
)
from moe_zoo.vad.model import GSMoE, GSMoEConfig, MILConfig, MILRanking
from moe_zoo.vad.presets import VARIANTS

_log = get_logger(__name__)
URDMU_ATTENTION_LAYERS = 2  # UR-DMU's self-attention layers over the clip, used by variant gsmoe-attn
GATE_ONLY_VARIANTS = ("gsmoe-fusion", "gsmoe-free-gate")  # differ from gsmoe in stage 3 alone


@dataclass(frozen=True)
class TrainConfig(Config):
    """Hyper-parameters (UR-DMU's values in comments where ours differ)."""

    variant: str = "gsmoe"
    seed: int = 0
    n_segments: int = 16          # UR-DMU: 200 (our clips have 16 snippets)
    batch_size: int = 16          # videos per half-batch (UR-DMU: 64 normal + 64 abnormal)
    encoder_steps: int = 1000     # UR-DMU: 3000 iterations
    expert_steps: int = 400
    gate_steps: int = 300
    mil_steps: int = 1200
    lr: float = 1e-3              # the MIL baseline (Adam)
    encoder_lr: float = 3e-4      # stage 1 (UR-DMU: 1e-4 for 3000 iterations); 1e-3 failed on 2 of 10 seeds
    encoder_ema: float = 0.99     # stage 1 keeps an EMA of the encoder weights and ends on it (0: off; ours)
    head_lr: float = 2e-4         # experts and gate (stages 2-3)
    weight_decay: float = 5e-5
    feature_dropout: float = 0.2  # dropout on the frozen task-aware features in stages 2-3
    tgs_weight: float = 1.0
    encoder_tgs_from: float = 1.0  # share of stage 1 before TGS joins (UR-DMU's loss alone); 1: never (presets: 0.5)
    gate_tgs: bool = True         # also guide the gate with the splatted pseudo-labels
    gate_uniform_kl: float = 0.1  # weight of KL(g_t || uniform) on the gate (stage 3)
    tgs_prominence: float = 0.1
    tgs_rel_height: float = 0.75
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise InputError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if not 0.0 <= self.encoder_tgs_from <= 1.0:
            raise InputError(f"encoder_tgs_from must be in [0, 1], got {self.encoder_tgs_from}")
        if not 0.0 <= self.encoder_ema < 1.0:
            raise InputError(f"encoder_ema must be in [0, 1), got {self.encoder_ema}")
        for name in ("n_segments", "batch_size", "encoder_steps", "expert_steps", "gate_steps", "mil_steps"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise InputError(f"seed must be >= 0, got {self.seed}")

    @property
    def encoder_has_tgs(self) -> bool:
        """Whether stage 1 adds the TGS term (``encoder_tgs_from < 1``): only then does
        ``gsmoe-no-tgs`` need a task encoder of its own."""
        return self.encoder_tgs_from < 1.0

    def scaled(self, factor: float) -> TrainConfig:
        """The same recipe with every stage's step count multiplied by ``factor`` (at least 1 step)."""
        names = ("encoder_steps", "expert_steps", "gate_steps", "mil_steps")
        return self.replace(**{n: max(1, round(getattr(self, n) * factor)) for n in names})


@dataclass
class TrainResult:
    model: nn.Module
    seconds: float
    history: dict[str, list[float]] = field(default_factory=dict)


class _Batches:
    """Pooled training tensors and balanced ``[b normal; b abnormal]`` sampling."""

    def __init__(self, data: FeatureSet, class_names: tuple[str, ...], n_segments: int, seed: int) -> None:
        arrays = [pool_segments(v.load(), n_segments) for v in data]
        dims = {a.shape[1:] for a in arrays}
        if len(dims) != 1:
            raise InputError(f"training videos have different feature shapes: {sorted(dims)}")
        self.x = torch.from_numpy(np.stack(arrays))                      # [N, S, (C,) D]
        self.labels = torch.tensor([v.label for v in data], dtype=torch.float32)
        self.members = torch.tensor([[float(c in v.classes) for c in class_names] for v in data])
        self.normal = torch.nonzero(self.labels == 0).flatten()
        self.abnormal = torch.nonzero(self.labels == 1).flatten()
        if len(self.normal) == 0 or len(self.abnormal) == 0:
            raise InputError("training needs both normal and anomalous videos")
        self.seed = seed
        self.generator = torch.Generator()

    def indices(self, half: int, stage: int, step: int) -> Tensor:
        """Videos of batch ``step`` of ``stage``, from a generator seeded by ``(seed, stage, step)``:
        a run resumed at ``step`` draws exactly the batches the uninterrupted run draws."""
        seed = np.random.SeedSequence([self.seed, stage, step]).generate_state(1)[0]
        self.generator.manual_seed(int(seed))
        pick = lambda pool: pool[torch.randint(len(pool), (half,), generator=self.generator)]  # noqa: E731
        return torch.cat([pick(self.normal), pick(self.abnormal)])

    def features(self, index: Tensor, source: Tensor | None = None) -> Tensor:
        """``[B, S, D]`` of the batch :meth:`indices` drew; with crops, one random crop per video
        (UR-DMU trains on every crop)."""
        x = (self.x if source is None else source)[index]
        if x.dim() == 4:
            crop = torch.randint(x.shape[2], (len(index),), generator=self.generator)
            x = x[torch.arange(len(index)), :, crop]
        return x


def _optimizer(params, config: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    return torch.optim.Adam([p for p in params if p.requires_grad], lr=lr or config.lr,
                            weight_decay=config.weight_decay, foreach=True)


def _loop(name: str, steps: int, step_fn: Callable[[int], Tensor], optimizer: torch.optim.Optimizer,
          history: dict, progress: bool, start: int = 0, on_checkpoint: Callable[[int], None] | None = None,
          every: int = 0, ema: float = 0.0) -> None:
    losses = history.setdefault(name, [])
    bar = tqdm(range(start, steps), desc=name, disable=not progress, leave=False)
    for step in bar:
        loss = step_fn(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema:
            update_weight_ema(optimizer, ema, step)
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if on_checkpoint is not None and every and (step + 1) % every == 0 and step + 1 < steps:
            on_checkpoint(step + 1)


@torch.no_grad()
def update_weight_ema(optimizer: torch.optim.Optimizer, decay: float, step: int) -> None:
    """After optimizer step ``step`` (0-based): ``w_ema <- b w_ema + (1 - b) w`` with the warm-up
    ``b = min(decay, (1 + step) / (10 + step))``, so short runs are not dominated by the initial
    weights. The average lives in the optimizer state (``state[p]["ema"]``), so it is saved and
    resumed with it."""
    beta = min(decay, (1 + step) / (10 + step))
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            if "ema" in state:
                state["ema"].lerp_(p, 1 - beta)
            else:
                state["ema"] = p.detach().clone()


@torch.no_grad()
def load_weight_ema(optimizer: torch.optim.Optimizer) -> None:
    """Copy the averaged weights of :func:`update_weight_ema` into the parameters."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            if "ema" in optimizer.state[p]:
                p.copy_(optimizer.state[p]["ema"])


@torch.no_grad()
def _encode_training_set(encoder, batches: _Batches, config: TrainConfig, device) -> tuple[Tensor, Tensor, Tensor]:
    """Frozen task-aware features ``[N, S, (C,) 2d]`` of every training video, and the Gaussian
    splatting pseudo-labels ``[N, S]`` (+ has-peak mask ``[N]``) fitted to the coarse scores."""
    x = batches.x.to(device)
    crops = x.shape[2] if x.dim() == 4 else 1
    flat = x.transpose(1, 2).reshape(-1, x.shape[1], x.shape[-1]) if crops > 1 else x
    outputs = [encoder(chunk) for chunk in flat.split(256)]
    coarse = torch.cat([o[0] for o in outputs]).view(x.shape[0], crops, -1).mean(1)
    task = torch.cat([o[1] for o in outputs])
    if crops > 1:  # [N * C, S, F] -> [N, S, C, F] like the raw features
        task = task.view(x.shape[0], crops, x.shape[1], -1).transpose(1, 2)
    pseudo, has_peak = gaussian_pseudo_labels(coarse, prominence=config.tgs_prominence,
                                              rel_height=config.tgs_rel_height)
    return task.cpu(), pseudo.cpu(), has_peak.cpu()


def model_config_for(data: FeatureSet, variant: str = "gsmoe", base: GSMoEConfig | MILConfig | None = None,
                     **overrides) -> GSMoEConfig | MILConfig:
    """The architecture ``variant`` trains on ``data``: ``base`` (default: the defaults for the data's
    feature size, snippet length and classes) with the switches the variant decides, then ``overrides``;
    an error when its feature size is not the data's."""
    feature_dim = data.videos[0].load().shape[-1]
    snippet_config = data.features or FeatureConfig(snippet_len=data.snippet_len)
    if variant == "mil":
        config = (base or MILConfig(feature_dim=feature_dim, features=snippet_config)).replace(**overrides)
    else:
        config = base or GSMoEConfig(feature_dim=feature_dim, class_names=data.anomaly_classes,
                                     features=snippet_config, scope_stats=True)
        if variant in ("single", "gsmoe-fusion"):  # the variant decides these two switches
            config = config.replace(single_expert=variant == "single", gate_fusion=variant == "gsmoe-fusion")
        if variant == "gsmoe-attn":
            config = config.replace(encoder_layers=URDMU_ATTENTION_LAYERS)
        config = config.replace(**overrides)
    if config.feature_dim != feature_dim:
        raise InputError(f"model expects {config.feature_dim}-d features, the data has {feature_dim}")
    return config


def preset_configs(name: str, data: FeatureSet, *, variant: str = "gsmoe", seed: int = 0
                   ) -> tuple[TrainConfig, GSMoEConfig | MILConfig]:
    """Training and model configs of a paper-scale preset (:data:`~moe_zoo.vad.presets.PRESETS`) for
    ``data``: one expert per anomaly class found in the data, the data's feature size."""
    from moe_zoo.vad.presets import PRESETS

    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    preset = PRESETS[name]
    train_config = TrainConfig(variant=variant, seed=seed, **preset["train"])
    features = FeatureConfig(snippet_len=preset["snippet_len"], fps=preset["fps"])
    if variant == "mil":
        return train_config, model_config_for(data, variant, features=features)
    base = GSMoEConfig(feature_dim=data.videos[0].load().shape[-1], class_names=data.anomaly_classes,
                       features=features, scope_stats=True, **preset["model"])
    return train_config, model_config_for(data, variant, base)


def train(data: FeatureSet | None = None, config: TrainConfig | None = None, model_config: GSMoEConfig | MILConfig | None = None,
          *, device: str | torch.device | None = None, checkpoint: str | Path | None = None,
          state_path: str | Path | None = None, progress: bool = True, metadata: dict | None = None,
          encoder_from: GSMoE | None = None, force_restart: bool = False) -> TrainResult:
    """Train one variant on ``data`` (a training :class:`FeatureSet`, default the built-in
    training split); optionally save the model to ``checkpoint``.

    ``state_path`` makes the run resumable: the training state is written atomically after each
    stage and every ``checkpoint_every`` steps, and a rerun with the same path continues from it.
    ``encoder_from`` reuses the trained task encoder of another GS-MoE run instead of stage 1
    (stage 1 is re-seeded, so runs with the same seed and data train the same encoder anyway;
    refused for ``gsmoe-no-tgs`` when ``encoder_tgs_from < 1``: GS-MoE's encoder then has the TGS term);
    the variants that differ from ``gsmoe`` only in the gate (``gsmoe-fusion``, ``gsmoe-free-gate``)
    reuse its class experts too and train stage 3 alone. A state written with other settings
    (training config, architecture or data) is refused unless ``force_restart``, which discards it.
    """
    config = config or TrainConfig()
    if encoder_from is not None and config.variant == "gsmoe-no-tgs" and config.encoder_has_tgs:
        raise InputError("with encoder_tgs_from < 1 gsmoe-no-tgs trains its own task encoder (without TGS): "
                         "encoder_from does not apply")
    if data is None:
        from moe_zoo.vad.builtin import load_builtin

        data = load_builtin("train", progress=progress)
    device = resolve_device(device)
    seed_everything(config.seed)
    started = time.perf_counter()
    model_config = model_config_for(data, config.variant, model_config)
    model: nn.Module = MILRanking(model_config) if config.variant == "mil" else GSMoE(model_config)
    model.to(device)
    model.registry_name = "mil-sultani" if config.variant == "mil" else "gsmoe-vad"
    class_names = getattr(model, "class_names", ())
    batches = _Batches(data, class_names if config.variant != "single" else (), config.n_segments, config.seed)
    if getattr(model, "feature_stats", None) is not None:  # out-of-scope warnings in predict
        model.feature_stats.fit(batches.x)
    history: dict[str, list[float]] = {}
    resume = _Resume(state_path, model, _settings(config, model_config, batches), force_restart=force_restart)
    if config.variant == "mil":
        _train_mil(model, batches, config, device, history, progress, resume)
    else:
        if encoder_from is not None:
            model.encoder.load_state_dict(encoder_from.encoder.state_dict())
            resume.stage = max(resume.stage, 1)
            if config.variant in GATE_ONLY_VARIANTS:
                model.experts.load_state_dict(encoder_from.experts.state_dict())
                resume.stage = max(resume.stage, 2)
        _train_gsmoe(model, batches, config, device, history, progress, resume)
    model.eval()
    seconds = time.perf_counter() - started
    if checkpoint is not None:
        record = {"train_config": config.to_dict(), "train_seconds": round(seconds, 1),
                  "n_train_videos": len(data), **(metadata or {})}
        save_checkpoint(checkpoint, model, record)
        _log.info("saved %s to %s", config.variant, checkpoint)
    return TrainResult(model, seconds, history)


def _settings(config: TrainConfig, model_config, batches: _Batches) -> dict:
    """What a resumed run must share with the run that wrote the state: the training config (but
    how often it checkpoints), the architecture and a fingerprint of the training data."""
    import hashlib

    digest = hashlib.sha256(batches.x.numpy().tobytes())
    digest.update(batches.labels.numpy().tobytes())
    digest.update(batches.members.numpy().tobytes())
    train_config = {k: v for k, v in config.to_dict().items() if k != "checkpoint_every"}
    settings = {"train_config": train_config, "model_config": model_config.to_dict(),
                "data": {"videos": int(batches.x.shape[0]), "sha256": digest.hexdigest()[:16]}}
    return json.loads(json.dumps(settings))  # as the JSON header stores it (tuples become lists)


class _Resume:
    """Stage/step bookkeeping on top of moe-core's atomic training state; refuses a state written
    with other settings (unless ``force_restart``, which discards it)."""

    def __init__(self, path: str | Path | None, model: nn.Module, settings: dict | None = None,
                 force_restart: bool = False) -> None:
        self.path = Path(path) if path else None
        self.model = model
        self.settings = settings or {}
        self.stage, self.step = 0, 0
        if check_resume(self.path, self.settings, force_restart=force_restart):
            state = load_training_state(self.path, model)
            self.stage, self.step = int(state.metadata["stage"]), state.step
            _log.info("resuming from %s: stage %d step %d", self.path, self.stage, self.step)

    def start(self, stage: int) -> int | None:
        """Step to start ``stage`` at, or None when it is already complete."""
        if stage < self.stage:
            return None
        return self.step if stage == self.stage else 0

    def save(self, stage: int, step: int, optimizer: torch.optim.Optimizer | None = None) -> None:
        if self.path is not None:
            save_training_state(self.path, self.model, optimizer, step=step,
                                metadata={"stage": stage, "settings": self.settings})


def _stage(resume: _Resume, index: int, name: str, steps: int, step_fn, optimizer, history, progress,
           config: TrainConfig, ema: float = 0.0) -> None:
    """Run one stage (resuming it where it was interrupted); with ``ema`` it ends on the weights' EMA."""
    start = resume.start(index)
    if start is None:
        return
    if start and resume.path is not None:  # restore the optimizer moments of an interrupted stage
        load_training_state(resume.path, resume.model, optimizer, restore_rng=True)
    _loop(name, steps, step_fn, optimizer, history, progress, start,
          on_checkpoint=lambda s: resume.save(index, s, optimizer), every=config.checkpoint_every, ema=ema)
    if ema:
        load_weight_ema(optimizer)
    resume.save(index + 1, 0)


def _train_mil(model: MILRanking, batches: _Batches, config: TrainConfig, device, history, progress,
               resume: _Resume) -> None:
    optimizer = _optimizer(model.parameters(), config)
    model.train()

    def mil_step(step: int) -> Tensor:
        index = batches.indices(config.batch_size, 0, step)
        return mil_ranking_loss(model(batches.features(index).to(device)), batches.labels[index].to(device))

    _stage(resume, 0, "mil", config.mil_steps, mil_step, optimizer, history, progress, config)


def _train_gsmoe(model: GSMoE, batches: _Batches, config: TrainConfig, device, history, progress,
                 resume: _Resume) -> None:
    divisor = model.config.topk_divisor
    tgs_weight = 0.0 if config.variant == "gsmoe-no-tgs" else config.tgs_weight
    gate_kl = 0.0 if config.variant == "gsmoe-free-gate" else config.gate_uniform_kl

    # stage 1: UR-DMU task encoder (re-seeded: identical across variants with the same seed), unless a
    # state file past stage 1 restored the random state (re-seeding would change stage 2's dropout masks)
    if resume.path is None or resume.stage == 0:
        seed_everything(config.seed)
    encoder = model.encoder
    encoder.train()
    enc_opt = _optimizer(encoder.parameters(), config, config.encoder_lr)

    tgs_from = round(config.encoder_tgs_from * config.encoder_steps)
    encoder_tgs = history.setdefault("encoder_tgs", [])

    def encoder_step(step: int) -> Tensor:
        index = batches.indices(config.batch_size, 0, step)
        labels = batches.labels[index].to(device)
        out = encoder.forward_train(batches.features(index).to(device))
        loss = urdmu_loss(out, labels, divisor=divisor)["total"]
        if tgs_weight and step >= tgs_from:  # after the warm-up: splats of the encoder's own coarse curve
            term = tgs_loss(out.scores, labels, prominence=config.tgs_prominence, rel_height=config.tgs_rel_height)
            encoder_tgs.append(term.item())
            loss = loss + tgs_weight * term
        return loss

    _stage(resume, 0, "encoder", config.encoder_steps, encoder_step, enc_opt, history, progress, config,
           ema=config.encoder_ema)
    encoder.eval().requires_grad_(False)
    if config.variant == "urdmu":
        return
    task, pseudo, has_peak = _encode_training_set(encoder, batches, config, device)

    # stage 2: class experts, each on its class vs normal
    experts = model.experts
    experts.train()
    exp_opt = _optimizer(experts.parameters(), config, config.head_lr)
    drop = nn.Dropout(config.feature_dropout)

    def expert_step(step: int) -> Tensor:
        index = batches.indices(config.batch_size, 1, step)
        scores = experts(drop(batches.features(index, task).to(device)))          # [B, E, T]
        labels = batches.labels[index].to(device)
        members = labels[:, None] if model.config.single_expert else batches.members[index].to(device)  # [B, E]
        weight = torch.maximum(members, (labels == 0).float()[:, None].expand_as(members))
        loss = topk_mil_loss(scores, members, divisor, weight)
        if tgs_weight:
            splat_weight = (members * has_peak[index, None].to(device))[..., None].expand_as(scores)
            target = pseudo[index, None].to(device).expand_as(scores)
            loss = loss + tgs_weight * bce(scores, target, splat_weight)
        return loss

    _stage(resume, 1, "experts", config.expert_steps, expert_step, exp_opt, history, progress, config)
    experts.eval().requires_grad_(False)
    if model.gate is None:
        return

    # stage 3: the gate on frozen experts
    gate = model.gate
    gate.train()
    gate_opt = _optimizer(gate.parameters(), config, config.head_lr)

    def gate_step(step: int) -> Tensor:
        index = batches.indices(config.batch_size, 2, step)
        features = drop(batches.features(index, task).to(device))
        with torch.no_grad():
            expert_scores = experts(features)
        scores, weights = gate(features, expert_scores)
        labels = batches.labels[index].to(device)
        loss = topk_mil_loss(scores, labels, divisor)
        if tgs_weight and config.gate_tgs:
            weight = (labels * has_peak[index].to(device))[:, None].expand_as(scores)
            loss = loss + tgs_weight * bce(scores, pseudo[index].to(device), weight)
        if gate_kl:
            loss = loss + gate_kl * gate_kl_to_uniform(weights)
        return loss

    _stage(resume, 2, "gate", config.gate_steps, gate_step, gate_opt, history, progress, config)
    gate.eval().requires_grad_(False)


def snippet_scores(model: nn.Module, features: np.ndarray | Tensor, *, variant: str = "gsmoe",
                   device: str | torch.device | None = None) -> np.ndarray:
    """Snippet scores ``[T]`` of one video ``[T, D]`` / ``[T, crops, D]`` for any trained variant
    (``variant="urdmu"``: the task encoder's coarse score; ``"expert-mean"``: the class experts'
    plain average instead of the gate's mixture)."""
    device = resolve_device(device)
    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    x = (x.transpose(0, 1) if x.dim() == 3 else x)[None].to(device)
    model.eval()
    with torch.inference_mode():
        if isinstance(model, MILRanking):
            return model(x)[0].cpu().numpy()
        out = model(x)
        if variant == "urdmu":
            return out.coarse[0].cpu().numpy()
        if variant == "expert-mean":  # the class experts averaged with equal weights (no gate)
            return out.expert_scores.mean(1)[0].cpu().numpy()
        return out.scores[0].cpu().numpy()
