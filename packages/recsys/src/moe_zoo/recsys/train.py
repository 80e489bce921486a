"""Training recipe: Adam on the summed task losses, early stopping on the validation loss.

``train(dataset="movielens", model="home")`` loads the data, builds the registered model for
its tasks and features, fits it, evaluates the test split and optionally writes a checkpoint.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from moe_zoo.core import (
    Config,
    InputError,
    create_model,
    get_logger,
    resolve_device,
    save_checkpoint,
    seed_everything,
)
from moe_zoo.core.checks import check_ints, check_reals
from moe_zoo.recsys.data import load_dataset
from moe_zoo.recsys.dataset import MultiTaskData, Splits
from moe_zoo.recsys.losses import multitask_loss, task_losses, to_predictions
from moe_zoo.recsys.metrics import mean_auc, task_metrics

_log = get_logger(__name__)
KINDS = ("home", "mmoe", "ple", "shared-bottom")


@dataclass(frozen=True)
class TrainConfig(Config):
    """Optimiser and schedule; the same for every model of a comparison (equal epoch budget)."""

    epochs: int = 8
    batch_size: int = 1024
    lr: float = 2e-3
    weight_decay: float = 0.0
    patience: int = 3          # epochs without a better validation loss before stopping
    eval_batch_size: int = 8192

    def __post_init__(self) -> None:
        check_ints("TrainConfig", self, {"epochs": 1, "batch_size": 2, "patience": 1, "eval_batch_size": 1})
        check_reals("TrainConfig", self, positive=("lr",), non_negative=("weight_decay",))


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_valid_loss: float = math.inf
    train_seconds: float = 0.0   # wall time in optimisation steps only (no evaluation)
    train_cpu_seconds: float = 0.0  # CPU time of this process in those steps (robust to other jobs)
    samples: int = 0             # training rows processed

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.train_seconds if self.train_seconds else math.nan

    @property
    def seconds_per_epoch(self) -> float:
        return self.train_seconds / max(1, len(self.history))


@dataclass
class Evaluation:
    metrics: dict[str, dict[str, float]]
    loss: float

    @property
    def mean_auc(self) -> float:
        return mean_auc(self.metrics)


@dataclass
class TrainResult:
    model: nn.Module
    splits: Splits
    fit: FitResult
    test: Evaluation
    checkpoint: Path | None = None


def _json_safe(value):
    """NaN/inf -> None, recursively (checkpoint metadata is strict JSON)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def registry_name(model: str) -> str:
    return model if model.startswith("recsys-") else f"recsys-{model}"


def _binary_mask(model: nn.Module, device: torch.device) -> torch.Tensor:
    return torch.tensor([k == "binary" for k in model.config.task_kinds], device=device)


def prior(data: MultiTaskData) -> list[float]:
    """Per task: ``logit(mean label)`` for binary tasks, the mean label for regression tasks."""
    means = np.nanmean(data.labels, 0)
    return [math.log(max(m, 1e-4) / max(1 - m, 1e-4)) if kind == "binary" else float(m)
            for m, kind in zip(means, data.tasks.kinds)]


@torch.no_grad()
def predict_outputs(model: nn.Module, data: MultiTaskData, *, batch_size: int = 8192) -> np.ndarray:
    """Predictions ``[N, K]``: probabilities for binary tasks, values for regression tasks (eval mode)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    binary = _binary_mask(model, device)
    parts = []
    for start in range(0, len(data), batch_size):
        categorical, numeric, _ = data.subset(np.arange(start, min(start + batch_size, len(data)))).tensors(device)
        parts.append(to_predictions(model(categorical, numeric).logits, binary).cpu().numpy())
    model.train(was_training)
    return np.concatenate(parts) if parts else np.zeros((0, len(model.config.tasks)), dtype=np.float32)


@torch.no_grad()
def _loss(model: nn.Module, data: MultiTaskData, batch_size: int) -> float:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    binary = _binary_mask(model, device)
    total = torch.zeros(len(model.config.tasks), device=device, dtype=torch.float64)
    count = torch.zeros_like(total)
    for start in range(0, len(data), batch_size):
        categorical, numeric, labels = data.subset(np.arange(start, min(start + batch_size, len(data)))).tensors(device)
        present = (~torch.isnan(labels)).sum(0)
        total += task_losses(model(categorical, numeric).logits, labels, binary).double() * present
        count += present
    model.train(was_training)
    return float((total / count.clamp_min(1)).sum())


def evaluate(model: nn.Module, data: MultiTaskData | Splits, *, batch_size: int = 8192) -> Evaluation:
    """Per-task AUC / GAUC / logloss (binary) or RMSE (regression) and the summed loss on ``data``.

    ``data`` may be a :class:`Splits` (its test part is used).
    """
    if isinstance(data, Splits):
        data = data.test
    if tuple(model.config.tasks) != data.tasks.names:
        raise InputError(f"model tasks {model.config.tasks} differ from the data's {data.tasks.names}")
    outputs = predict_outputs(model, data, batch_size=batch_size)
    metrics = task_metrics(data.labels, outputs, data.tasks.kinds, data.tasks.names, data.users)
    return Evaluation(metrics, _loss(model, data, batch_size))


def fit(model: nn.Module, splits: Splits, config: TrainConfig | None = None, *, seed: int = 0,
        device: str | torch.device | None = None, progress: bool = False) -> FitResult:
    """Adam on ``sum_t L_t``; keeps the parameters of the epoch with the lowest validation loss."""
    config = config or TrainConfig()
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    device = resolve_device(device)
    model.to(device).train()
    model.init_output_bias(prior(splits.train))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    categorical, numeric, labels = splits.train.tensors(device)
    binary = _binary_mask(model, device)
    generator = torch.Generator().manual_seed(seed)
    result, best_state, stale = FitResult(), copy.deepcopy(model.state_dict()), 0
    n = len(labels)
    if n < 2:
        raise InputError("training needs at least 2 rows")
    epochs = tqdm(range(config.epochs), desc=f"train {type(model).__name__}", disable=not progress, file=sys.stderr)
    for epoch in epochs:
        began, began_cpu, total = time.perf_counter(), time.process_time(), 0.0
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, config.batch_size):
            batch = order[start:start + config.batch_size]
            if len(batch) < 2:  # BatchNorm needs two rows
                continue
            loss = multitask_loss(model(categorical[batch], numeric[batch]).logits, labels[batch], binary)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        result.train_seconds += time.perf_counter() - began
        result.train_cpu_seconds += time.process_time() - began_cpu
        result.samples += n
        valid = _loss(model, splits.valid, config.eval_batch_size)
        result.history.append({"epoch": epoch + 1, "train_loss": total / n, "valid_loss": valid})
        epochs.set_postfix(train=f"{total / n:.4f}", valid=f"{valid:.4f}")
        if valid < result.best_valid_loss - 1e-6:
            result.best_valid_loss, result.best_epoch, stale = valid, epoch + 1, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= config.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return result


def build(model: str, splits: Splits, *, seed: int = 0, **overrides) -> nn.Module:
    """The registered model ``model`` (``home``, ``mmoe``, ``ple``, ``shared-bottom``) sized for ``splits``."""
    seed_everything(seed)
    return create_model(registry_name(model), **splits.model_fields(), **overrides)


def train(dataset: str | Splits = "movielens", model: str = "home", *, config: TrainConfig | None = None,
          seed: int = 0, device: str | torch.device | None = None, save_to: str | Path | None = None,
          progress: bool = False, metadata: dict | None = None, **model_overrides) -> TrainResult:
    """Load ``dataset`` (a name from :data:`~moe_zoo.recsys.data.DATASETS`, ``synthetic:<p>``, a KuaiRand
    CSV log or ready :class:`Splits`), fit ``model`` on its train split, evaluate on its test split."""
    splits = load_dataset(dataset) if isinstance(dataset, str) else dataset
    config = config or TrainConfig()
    net = build(model, splits, seed=seed, **model_overrides)
    result = fit(net, splits, config, seed=seed, device=device, progress=progress)
    test = evaluate(net, splits.test, batch_size=config.eval_batch_size)
    path = None
    if save_to is not None:
        path = save_checkpoint(save_to, net, _json_safe({
            "dataset": splits.name, "data": splits.description, "seed": seed, "train": config.to_dict(),
            "best_epoch": result.best_epoch, "test": test.metrics, "test_mean_auc": test.mean_auc,
            "command": " ".join(sys.argv), **(metadata or {})}))
    return TrainResult(net, splits, result, test, path)
