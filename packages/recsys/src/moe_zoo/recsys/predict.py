"""Inference: load a model (registry name, checkpoint path or module) and score rows per task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from moe_zoo.core import InputError, create_model, load_model, resolve_device
from moe_zoo.recsys.dataset import MultiTaskData, TaskSpec
from moe_zoo.recsys.train import predict_outputs, registry_name

DEFAULT_MODEL = "recsys-home"


def load(model: str | Path | nn.Module = DEFAULT_MODEL, *, device: str | torch.device | None = None) -> nn.Module:
    """A ready model: a module as is, a ``.safetensors`` checkpoint, or a registry name with shipped weights."""
    if isinstance(model, nn.Module):
        net = model
    elif isinstance(model, Path) or (isinstance(model, str) and model.endswith(".safetensors")):
        net = load_model(model)
    elif isinstance(model, str):
        net = create_model(registry_name(model), pretrained=True)
    else:
        raise InputError(f"model must be a module, a registry name or a .safetensors path, got {type(model).__name__}")
    return net.to(resolve_device(device)).eval()


def encode_rows(model: nn.Module, rows: pd.DataFrame) -> MultiTaskData:
    """Raw feature rows -> encoded data with the model's stored feature schema (labels unknown)."""
    schema = getattr(model.config, "schema", None)
    if schema is None:
        raise InputError(f"{type(model).__name__} has no feature schema in its config; pass encoded MultiTaskData")
    categorical, numeric = schema.encode(rows)
    config = model.config
    tasks = TaskSpec(tuple(config.tasks), tuple(config.task_kinds), tuple(config.task_groups))
    labels = np.full((len(rows), len(config.tasks)), np.nan, dtype=np.float32)
    return MultiTaskData(categorical, numeric, labels, tasks, schema)


def predict(model: str | Path | nn.Module, rows: pd.DataFrame | MultiTaskData, *,
            device: str | torch.device | None = None) -> pd.DataFrame:
    """Per-task predictions, one column per task: probabilities for binary tasks, values for regression.

    ``rows`` is a DataFrame with the model's raw feature columns (``model.config.schema.columns``;
    unseen categories map to the unknown id) or already encoded :class:`MultiTaskData`.
    """
    net = load(model, device=device)
    data = rows if isinstance(rows, MultiTaskData) else encode_rows(net, rows)
    if len(data) == 0:
        raise InputError("predict: no rows")
    outputs = predict_outputs(net, data)
    index = rows.index if isinstance(rows, pd.DataFrame) else None
    return pd.DataFrame(outputs, columns=list(net.config.tasks), index=index)
