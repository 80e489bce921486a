"""Encoded multi-task data (what models train on) and the split builder every loader uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from moe_zoo.core import InputError
from moe_zoo.recsys.schema import FeatureSchema, inf_in_float32

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class TaskSpec:
    """Task names, kinds (``binary`` | ``regression``) and meta-category ids (HoME's task groups)."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    groups: tuple[int, ...]

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.kinds) == len(self.groups)) or not self.names:
            raise InputError("TaskSpec: names, kinds and groups must have the same non-zero length")

    @property
    def binary(self) -> tuple[int, ...]:
        return tuple(i for i, k in enumerate(self.kinds) if k == "binary")

    def model_fields(self) -> dict:
        return {"tasks": self.names, "task_kinds": self.kinds, "task_groups": self.groups}


@dataclass
class MultiTaskData:
    """``N`` encoded rows: ids ``[N, F]``, numbers ``[N, M]``, labels ``[N, K]`` (NaN = missing)."""

    categorical: np.ndarray
    numeric: np.ndarray
    labels: np.ndarray
    tasks: TaskSpec
    schema: FeatureSchema
    users: np.ndarray | None = None  # group key for GAUC

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.categorical.shape[0] != n or self.numeric.shape[0] != n:
            raise InputError("MultiTaskData: categorical, numeric and labels must have the same number of rows")
        if self.labels.ndim != 2 or self.labels.shape[1] != len(self.tasks.names):
            raise InputError(f"MultiTaskData: labels must be [N, {len(self.tasks.names)}], got {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> MultiTaskData:
        return MultiTaskData(self.categorical[index], self.numeric[index], self.labels[index], self.tasks,
                             self.schema, None if self.users is None else self.users[index])

    def tensors(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (torch.from_numpy(self.categorical).to(device), torch.from_numpy(self.numeric).to(device),
                torch.from_numpy(self.labels).to(device))


@dataclass
class Splits:
    """A data set split three ways, with a short description for reports."""

    name: str
    train: MultiTaskData
    valid: MultiTaskData
    test: MultiTaskData
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def tasks(self) -> TaskSpec:
        return self.train.tasks

    @property
    def schema(self) -> FeatureSchema:
        return self.train.schema

    def model_fields(self) -> dict:
        """The config fields a model needs for this data (tasks, vocabulary sizes, schema)."""
        return {**self.tasks.model_fields(), "cardinalities": self.schema.cardinalities,
                "n_numeric": len(self.schema.numeric), "schema": self.schema}


def time_split(order: np.ndarray, fractions: tuple[float, float] = (0.8, 0.1), *,
               groups: np.ndarray | None = None) -> np.ndarray:
    """Split labels (0 train, 1 valid, 2 test) by time ``order``: first 80%, next 10%, last 10%.

    With ``groups`` (e.g. user ids) the cut is made inside every group (each user's own history is
    split chronologically), otherwise over all rows at once.
    """
    order = np.asarray(order)
    if not (np.issubdtype(order.dtype, np.number) or np.issubdtype(order.dtype, np.datetime64)):
        raise InputError(f"time_split: the time column must hold numbers or datetimes, got {order.dtype} "
                         "(text would sort as strings)")
    keys = np.zeros(len(order), dtype=np.int64) if groups is None else np.asarray(groups)
    frame = pd.DataFrame({"g": keys, "t": order, "i": np.arange(len(order))})
    position = frame.sort_values(["g", "t", "i"], kind="stable").groupby("g").cumcount()
    size = frame.groupby("g")["g"].transform("size")
    share = (position.sort_index() / size).to_numpy()
    return np.where(share < fractions[0], 0, np.where(share < fractions[0] + fractions[1], 1, 2)).astype(np.int8)


def random_split(n: int, seed: int = 0, fractions: tuple[float, float] = (0.8, 0.1)) -> np.ndarray:
    """A fixed random 80/10/10 split (0 train, 1 valid, 2 test) for data without time."""
    return time_split(np.random.default_rng(seed).permutation(n), fractions)


def task_labels(frame: pd.DataFrame, tasks: TaskSpec, name: str) -> np.ndarray:
    """The label columns as float32 ``[N, K]``, checked: numbers (an empty cell is a missing label),
    binary tasks 0 or 1, regression tasks finite in float32. Anything else is an :class:`InputError`
    naming the column and a bad value (``"yes"`` is not silently a missing label)."""
    out = np.empty((len(frame), len(tasks.names)), dtype=np.float32)
    for k, (task, kind) in enumerate(zip(tasks.names, tasks.kinds)):
        raw = frame[task]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(values) & raw.notna().to_numpy()
        if kind == "binary":
            bad |= ~np.isnan(values) & (values != 0) & (values != 1)
        else:
            bad |= inf_in_float32(values)
        if bad.any():
            expected = "0 or 1 (or empty for missing)" if kind == "binary" else "finite numbers (or empty for missing)"
            example = raw[bad].iloc[0]
            shown = repr(example) if isinstance(example, str) else str(example)
            raise InputError(f"{name}: label column {task!r} has {int(bad.sum())} bad value(s), e.g. {shown}; "
                             f"expected {expected}")
        out[:, k] = values
    return out


def build_splits(name: str, frame: pd.DataFrame, split: np.ndarray, *, categorical: Sequence[str],
                 numeric: Sequence[str], tasks: TaskSpec, user_column: str | None = None, min_count: int = 1,
                 description: str = "") -> Splits:
    """Fit the schema on the training rows, then encode all three parts."""
    missing = [t for t in tasks.names if t not in frame.columns]
    if missing:
        raise InputError(f"{name}: label column(s) {missing} not found")
    split = np.asarray(split)
    parts = [np.flatnonzero(split == s) for s in range(3)]
    if any(len(p) == 0 for p in parts):
        raise InputError(f"{name}: every split needs rows, got sizes {[len(p) for p in parts]}")
    labels = task_labels(frame, tasks, name)
    schema = FeatureSchema.fit(frame.iloc[parts[0]], categorical, numeric, min_count=min_count)
    ids, values = schema.encode(frame)
    users = frame[user_column].to_numpy() if user_column else None
    whole = MultiTaskData(ids, values, labels, tasks, schema, users)
    return Splits(name, *(whole.subset(p) for p in parts), description=description)
