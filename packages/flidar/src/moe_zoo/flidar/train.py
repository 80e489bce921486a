"""Training recipe: simulated data, the three EvidenceMoE stages, resumable, checkpointed.

Stages (the paper names experts, critics and a decider but not a schedule; this is ours):

1. ``experts``: each expert regresses (depth, lifetime) from its own window,
   ``L1 = sum_e MSE(y_e, y) + w_n MSE(nuisance, (mu_a, mu_s'))``.
2. ``critics``: experts fixed; each critic learns a correction and the Dirichlet evidence over
   the quality class of the corrected prediction,
   ``L2 = sum_e [MSE(y'_e, y) + w_ev mean EDL(alpha_e, class(|y'_e - y|))]`` with the KL weight
   annealed ``lambda_t = min(1, t / T_anneal)``.
3. ``joint``: everything end to end at a lower learning rate,
   ``L3 = MSE(y_fused, y) + w_x sum_e MSE(y'_e, y) + w_ev EDL + w_n MSE(nuisance) + w_p L_phys``.

The plain-MoE baseline runs stages 1 and 3 (stage 2's steps go to stage 3); the single CNN
trains with MSE for the same total number of steps. Training data: a fixed simulated set
(``n_train`` histograms, seed ``seed``, one IRF per histogram: :data:`TRAINING_SIMULATION`),
validation on a second one (seed ``seed + 1``).

Resuming (``state_path``) is bit-exact: the state file holds the model, optimizer, scheduler and
RNG states and the run's :class:`TrainConfig`, and the batches of step ``t`` are a function of
``(seed, t)`` alone (:func:`batch_indices`), so there is no generator position to lose. A state
written with other settings is refused unless ``force_restart=True`` (which starts afresh).
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm

from moe_zoo.core import (
    Config,
    InputError,
    get_logger,
    resolve_device,
    save_checkpoint,
    seed_everything,
)
from moe_zoo.core.checks import check_reals
from moe_zoo.core.training_state import check_resume, load_training_state, save_training_state
from moe_zoo.flidar.losses import evidential_loss, physics_consistency_loss, regression_loss
from moe_zoo.flidar.metrics import summarise
from moe_zoo.flidar.model import (
    NUISANCE,
    EvidenceMoE,
    SingleRegressor,
    SingleRegressorConfig,
    config_for_simulation,
    normalise_targets,
)
from moe_zoo.flidar.simulator import TRAINING_SIMULATION, SimulationConfig, TCSPCData, simulate

_log = get_logger(__name__)
KINDS = ("evidence-moe", "plain-moe", "cnn")


@dataclass(frozen=True)
class TrainConfig(Config):
    kind: str = "evidence-moe"
    simulation: SimulationConfig = TRAINING_SIMULATION
    n_train: int = 60_000
    n_val: int = 4_096
    batch_size: int = 256
    lr: float = 2e-3
    joint_lr_scale: float = 0.3
    expert_steps: int = 2_500
    critic_steps: int = 800
    joint_steps: int = 1_700
    kl_anneal_steps: int = 400
    kl_max: float = 0.1                 # lambda_t = kl_max * min(1, t / kl_anneal_steps)
    evidential_weight: float = 0.2
    expert_weight: float = 0.5
    nuisance_weight: float = 0.2
    physics_weight: float = 1e-3
    physics_batch: int = 64             # rows of each batch that go through the forward model
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"TrainConfig.kind must be one of {KINDS}, got {self.kind!r}")
        counts = {"n_train": self.n_train, "n_val": self.n_val, "batch_size": self.batch_size,
                  "kl_anneal_steps": self.kl_anneal_steps, "physics_batch": self.physics_batch}
        steps = {"expert_steps": self.expert_steps, "critic_steps": self.critic_steps, "joint_steps": self.joint_steps}
        for name, value in {**counts, **steps, "seed": self.seed}.items():
            if not isinstance(value, int) or isinstance(value, bool):
                raise InputError(f"TrainConfig.{name} must be an integer, got {value!r}")
        bad = [f"{k}={v}" for k, v in counts.items() if v < 1] + [f"{k}={v}" for k, v in steps.items() if v < 0]
        if bad or self.seed < 0:
            raise InputError(f"TrainConfig: sizes must be >= 1, steps and seed >= 0; got {', '.join(bad) or f'seed={self.seed}'}")
        if self.batch_size > self.n_train:
            raise InputError(f"TrainConfig: batch_size {self.batch_size} exceeds n_train {self.n_train}")
        if self.total_steps == 0:
            raise InputError("TrainConfig: expert, critic and joint steps are all 0: nothing would be trained")
        if self.kind != "cnn" and self.expert_steps == 0:
            raise InputError(f"TrainConfig: {self.kind} needs expert_steps >= 1 (stage 1 trains the experts)")
        check_reals("TrainConfig", self, positive=("lr", "joint_lr_scale"),
                    non_negative=("kl_max", "evidential_weight", "expert_weight", "nuisance_weight", "physics_weight",
                                  "weight_decay"))

    @property
    def total_steps(self) -> int:
        return self.expert_steps + self.critic_steps + self.joint_steps

    def stages(self) -> list[tuple[str, int]]:
        """``[(stage, steps)]`` for this kind of model."""
        if self.kind == "cnn":
            return [("regressor", self.total_steps)]
        if self.kind == "plain-moe":
            return [("experts", self.expert_steps), ("joint", self.critic_steps + self.joint_steps)]
        return [("experts", self.expert_steps), ("critics", self.critic_steps), ("joint", self.joint_steps)]


@dataclass
class TrainResult:
    model: nn.Module
    metrics: dict[str, float]
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Use ``threads`` torch CPU threads inside the block (``None``: leave the setting alone)."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def warmup_cosine(steps: int):
    """``lr_t / lr = min(1, (t + 1) / w) * (1 + cos(pi t / steps)) / 2`` with ``w = steps / 20``."""
    warm = max(1, steps // 20)
    return lambda t: min(1.0, (t + 1) / warm) * 0.5 * (1.0 + math.cos(math.pi * min(t, steps) / steps))


def build_model(config: TrainConfig) -> nn.Module:
    if config.kind == "cnn":
        model = SingleRegressor(SingleRegressorConfig(simulation=config.simulation))
        model.registry_name = "cnn-flidar"
    else:
        use_critics = config.kind == "evidence-moe"
        model = EvidenceMoE(config_for_simulation(config.simulation, use_critics=use_critics))
        model.registry_name = "evidence-moe-flidar" if use_critics else "plain-moe-flidar"
    return model


@functools.lru_cache(maxsize=2)
def _epoch_order(seed: int, epoch: int, n: int) -> Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed((seed + 2) * 1_000_003 + epoch))


def batch_indices(seed: int, step: int, n: int, batch_size: int) -> Tensor:
    """The training rows of ``step``: epoch ``e = step // (n // batch_size)`` draws the permutation
    ``randperm(n)`` from a generator seeded with ``(seed, e)``, and the step takes its slice. A
    function of ``(seed, step)`` alone, so a resumed run sees exactly the batches of an
    uninterrupted one."""
    epoch, position = divmod(step, n // batch_size)
    return _epoch_order(seed, epoch, n)[position * batch_size:(position + 1) * batch_size]


def _stage_parameters(model: nn.Module, stage: str) -> list[nn.Parameter]:
    if stage == "experts":
        return list(model.experts.parameters())
    if stage == "critics":
        return list(model.critics.parameters())
    return list(model.parameters())


def _moe_loss(model: EvidenceMoE, stage: str, histograms: Tensor, irf: Tensor, truth: dict[str, Tensor], target: Tensor,
              config: TrainConfig, stage_step: int) -> tuple[Tensor, dict[str, float]]:
    out = model(histograms, irf)
    nuisance_target = normalise_targets(torch.stack([truth[k] for k in NUISANCE], -1).log(), model.nuisance_ranges)
    nuisance = regression_loss(out.nuisance, nuisance_target)
    parts: dict[str, Tensor] = {}
    if stage == "experts":
        parts["experts"] = sum(regression_loss(out.raw_expert_predictions[:, e], target)
                               for e in range(out.raw_expert_predictions.shape[1]))
        parts["nuisance"] = config.nuisance_weight * nuisance
    else:
        experts = sum(regression_loss(out.expert_predictions[:, e], target) for e in range(out.expert_predictions.shape[1]))
        if out.alpha is not None:
            classes = model.quality_class((out.expert_predictions - target[:, None]).abs().detach())
            ramp = min(1.0, stage_step / config.kl_anneal_steps) if stage == "critics" else 1.0
            kl_weight = config.kl_max * ramp
            parts["evidential"] = config.evidential_weight * evidential_loss(out.alpha, classes, kl_weight).mean()
        if stage == "critics":
            parts["experts"] = experts
        else:
            parts["fused"] = regression_loss(out.prediction, target)
            parts["experts"] = config.expert_weight * experts
            parts["nuisance"] = config.nuisance_weight * nuisance
            if config.physics_weight > 0:
                rows = slice(0, config.physics_batch)
                params = {k: v[rows] for k, v in model.physical_parameters(out).items()}
                phys = physics_consistency_loss(params, histograms[rows], model.config.simulation, irf=irf[rows])
                parts["physics"] = config.physics_weight * phys
    total = sum(parts.values())
    return total, {k: float(v.detach()) for k, v in parts.items()}


@torch.no_grad()
def predict_normalised(model: nn.Module, histograms: Tensor, irf: Tensor | None = None, batch_size: int = 4096) -> Tensor:
    """Normalised (depth, lifetime) for any of the three model kinds, in eval mode (``irf``: ``[T]``
    or ``[N, T]``, default the nominal one)."""
    was_training = model.training
    model.eval()
    outputs = []
    for i in range(0, histograms.shape[0], batch_size):
        rows = None if irf is None else (irf[i:i + batch_size] if irf.dim() == 2 else irf)
        out = model(histograms[i:i + batch_size], rows)
        outputs.append(out if isinstance(out, Tensor) else out.prediction)
    model.train(was_training)
    return torch.cat(outputs)


def evaluate_model(model: nn.Module, data: TCSPCData) -> dict[str, float]:
    """NRMSE/RMSE of depth and lifetime on labelled data."""
    ranges = model.target_ranges.cpu()
    device = model.target_ranges.device
    prediction = predict_normalised(model, data.histograms.to(device), data.irf.to(device)).cpu()
    physical = prediction * (ranges[:, 1] - ranges[:, 0]) + ranges[:, 0]
    return summarise(physical, data.targets())


Simulator = Callable[[int, SimulationConfig, int], TCSPCData]
"""``(n, config, seed) -> TCSPCData``: where the training and validation histograms come from."""


def train(config: TrainConfig | None = None, *, checkpoint: str | Path | None = None,
          state_path: str | Path | None = None, device: str | torch.device | None = None,
          progress: bool = True, threads: int | None = None, simulator: Simulator | None = None,
          force_restart: bool = False, **overrides: object) -> TrainResult:
    """Train one model kind on simulated FLiDAR data; optionally save a checkpoint.

    ``state_path``: a resumable training state written every 200 steps and at stage ends
    (an interrupted run continues from it, bit-exactly; a state written with another
    :class:`TrainConfig` is an :class:`InputError` unless ``force_restart``, which starts afresh). ``threads``: torch CPU threads for this call (on a
    shared machine 1 thread can be far faster than 2). ``simulator`` replaces :func:`simulate`
    (another forward model, e.g. a bi-exponential decay; called with ``config.simulation``).
    ``overrides`` change :class:`TrainConfig`.
    """
    with torch_threads(threads):
        return _train((config or TrainConfig()).replace(**overrides), checkpoint, state_path, device, progress,
                      simulator or _simulate, force_restart)


def _simulate(n: int, config: SimulationConfig, seed: int) -> TCSPCData:
    return simulate(n, config, seed=seed)


def _train(config: TrainConfig, checkpoint: str | Path | None, state_path: str | Path | None,
           device: str | torch.device | None, progress: bool, simulator: Simulator, force_restart: bool) -> TrainResult:
    state_path = Path(state_path) if state_path else None
    resuming = check_resume(state_path, config.to_dict(), force_restart=force_restart, key="train_config")
    device = resolve_device(device)
    seed_everything(config.seed)
    started = time.perf_counter()
    train_data = simulator(config.n_train, config.simulation, config.seed)
    val_data = simulator(config.n_val, config.simulation, config.seed + 1)
    _log.info("simulated %d + %d histograms in %.1f s", config.n_train, config.n_val, time.perf_counter() - started)
    model = build_model(config).to(device)
    histograms = train_data.histograms.to(device)
    truth = {k: v.to(device) for k, v in train_data.params.items()}
    irf = train_data.irf.to(device)
    irf = irf if irf.dim() == 2 else irf.expand_as(histograms)
    targets = normalise_targets(train_data.targets().to(device), model.target_ranges)
    history: list[dict[str, float]] = []
    saved = {"train_config": config.to_dict()}
    step = load_training_state(state_path, model, None).step if resuming else 0
    first = 0
    for stage, steps in config.stages():
        last = first + steps
        params = _stage_parameters(model, stage)
        trainable = {id(p) for p in params}
        for p in model.parameters():  # frozen parts get no gradients: stage 2 skips the experts' backward
            p.requires_grad_(id(p) in trainable)
        lr = config.lr * (config.joint_lr_scale if stage == "joint" else 1.0)
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps))
        if resuming and first <= step < last:   # mid-stage: this stage's optimizer and schedule too
            load_training_state(state_path, model, optimizer, scheduler=scheduler)
            _log.info("resumed at step %d (stage %s)", step, stage)
        if step >= last:
            first = last
            continue
        model.train()
        bar = tqdm(range(step, last), desc=f"{config.kind}:{stage}", disable=not progress, leave=False)
        for step in bar:
            index = batch_indices(config.seed, step, config.n_train, config.batch_size).to(device)
            batch_truth = {k: v[index] for k, v in truth.items()}
            if stage == "regressor":
                loss = regression_loss(model(histograms[index], irf[index]), targets[index])
                parts = {"mse": float(loss.detach())}
            else:
                loss, parts = _moe_loss(model, stage, histograms[index], irf[index], batch_truth, targets[index], config,
                                        step - first)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            if step % 100 == 0:
                history.append({"step": step, "stage": stage, **parts})
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
            if state_path is not None and (step + 1) % 200 == 0 and step + 1 < last:
                save_training_state(state_path, model, optimizer, step=step + 1, scheduler=scheduler,
                                    metadata={"stage": stage, **saved})
        step = last
        if state_path is not None:
            save_training_state(state_path, model, None, step=step, metadata={"stage": stage, **saved})
        _log.info("stage %s done at step %d (%.0f s)", stage, step, time.perf_counter() - started)
        first = last
    model.requires_grad_(True)
    seconds = time.perf_counter() - started
    metrics = evaluate_model(model, val_data)
    _log.info("%s validation: %s (%.0f s)", config.kind, metrics, seconds)
    if checkpoint is not None:
        save_checkpoint(checkpoint, model, {"train_config": config.to_dict(), "validation": metrics,
                                            "train_seconds": round(seconds, 1),
                                            "data": f"simulated: {config.n_train} train / {config.n_val} val histograms"})
    return TrainResult(model, metrics, seconds, history)
