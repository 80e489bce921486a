"""Resumable training state: model, optimizer, scheduler, step and RNG states in one safe file.

Tensors go to safetensors, everything else (hyper-parameters, counters, Python/NumPy RNG) to
the JSON header, through :func:`~moe_zoo.core.checkpoint.save_checkpoint`, so the write is
atomic and loading never unpickles. Typical loop::

    state = load_training_state(path, model, optimizer) if path.exists() else None
    start = state.step if state else 0
    for step in range(start, total):
        ...
        if step % every == 0:
            save_training_state(path, model, optimizer, step=step + 1)
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from moe_zoo.core.checkpoint import (
    CheckpointMismatchError,
    load_checkpoint,
    load_state_into,
    read_checkpoint_metadata,
    save_checkpoint,
)
from moe_zoo.core.errors import InputError
from moe_zoo.core.runtime import get_logger

_log = get_logger(__name__)


@dataclass(frozen=True)
class TrainingState:
    step: int
    metadata: dict[str, Any]


def _split(prefix: str, value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Move tensors out of a nested structure into ``tensors``; leave JSON-able placeholders."""
    if isinstance(value, torch.Tensor):
        tensors[prefix] = value.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(value, dict):
        return {"__dict__": [[_split(f"{prefix}.k{i}", k, tensors), _split(f"{prefix}.{i}", v, tensors)]
                             for i, (k, v) in enumerate(value.items())]}
    if isinstance(value, list | tuple):
        items = [_split(f"{prefix}.{i}", v, tensors) for i, v in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    return value


def _join(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__dict__" in value:
            return {_join(k, tensors): _join(v, tensors) for k, v in value["__dict__"]}
        if "__tuple__" in value:
            return tuple(_join(v, tensors) for v in value["__tuple__"])
        return {k: _join(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_join(v, tensors) for v in value]
    return value


def save_training_state(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, *,
                        step: int, scheduler: Any = None, metadata: dict[str, Any] | None = None) -> Path:
    """Atomically save everything needed to resume at ``step``."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    extra: dict[str, Any] = {"step": step, "user": metadata or {}}
    if optimizer is not None:
        extra["optimizer"] = _split("optimizer", optimizer.state_dict(), tensors)
    if scheduler is not None:
        extra["scheduler"] = _split("scheduler", scheduler.state_dict(), tensors)
    extra["rng"] = {"python": _split("rng.python", random.getstate(), tensors),
                    "numpy": _split("rng.numpy", [np.random.get_state()[0], torch.from_numpy(np.random.get_state()[1].copy()),
                                                  *np.random.get_state()[2:]], tensors)}
    tensors["rng.torch"] = torch.get_rng_state()
    return save_checkpoint(path, tensors, {"training_state": extra}, model_name=getattr(model, "registry_name", None),
                           config=getattr(model, "config", None))


def load_training_state(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, *,
                        scheduler: Any = None, restore_rng: bool = True) -> TrainingState:
    """Restore what :func:`save_training_state` wrote; returns the step to resume from."""
    checkpoint = load_checkpoint(path)
    extra = checkpoint.metadata.get("training_state")
    if extra is None:
        raise CheckpointMismatchError(f"{path} is a model checkpoint, not a training state")
    tensors = checkpoint.state_dict
    load_state_into(model, {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")},
                    source=str(path))
    if optimizer is not None and "optimizer" in extra:
        optimizer.load_state_dict(_join(extra["optimizer"], tensors))
    if scheduler is not None and "scheduler" in extra:
        scheduler.load_state_dict(_join(extra["scheduler"], tensors))
    if restore_rng:
        py_state = _join(extra["rng"]["python"], tensors)
        random.setstate((py_state[0], tuple(py_state[1]), py_state[2]))
        np_state = _join(extra["rng"]["numpy"], tensors)
        np.random.set_state((np_state[0], np_state[1].numpy(), *np_state[2:]))
        torch.set_rng_state(tensors["rng.torch"])
    return TrainingState(int(extra["step"]), extra.get("user", {}))


def settings_differences(stored: Any, current: Any, prefix: str = "") -> list[str]:
    """Where two JSON settings records differ, as ``"a.b: state X, now Y"`` (dotted key paths)."""
    if isinstance(stored, dict) and isinstance(current, dict):
        return [d for key in sorted(set(stored) | set(current))
                for d in settings_differences(stored.get(key), current.get(key), f"{prefix}{key}.")]
    if stored == current:
        return []
    shown = f": state {stored!r}, now {current!r}" if len(repr(stored)) + len(repr(current)) < 160 else ""
    return [f"{prefix.rstrip('.')}{shown}"]


def check_resume(path: str | Path | None, settings: Any, *, force_restart: bool = False,
                 key: str = "settings") -> bool:
    """Whether to resume from the training state at ``path``, written with the run's ``settings``.

    The state must carry the settings of the run that wrote it under ``metadata[key]`` (the
    ``metadata`` of :func:`save_training_state`). False when there is no state (or ``path`` is None)
    or when ``force_restart`` (the caller starts afresh and later overwrites it); True when the
    stored settings equal ``settings`` (compared as JSON); otherwise an :class:`InputError` naming
    the differences, so a resumed run can never mix two runs' settings silently.
    """
    if path is None or not Path(path).exists():
        return False
    if force_restart:
        _log.warning("--force-restart: discarding the training state %s", path)
        return False
    stored = read_checkpoint_metadata(path)["metadata"].get("training_state", {}).get("user", {}).get(key)
    differ = (["the state records no settings"] if stored is None
              else settings_differences(stored, json.loads(json.dumps(settings))))
    if differ:
        shown = "; ".join(differ[:6]) + (f" (+{len(differ) - 6} more)" if len(differ) > 6 else "")
        raise InputError(f"training state {path} belongs to another run, written with other settings ({shown}); "
                         "resume with the same settings, or pass --force-restart (force_restart=True) to start afresh")
    return True
