"""The feature pipeline every model shares: raw columns -> (categorical ids, standardised numbers).

A :class:`FeatureSchema` is fitted on the training rows only (vocabularies, means, standard
deviations) and stored in the model config, so a checkpoint can score raw rows on its own.
Categorical value ``v`` of field ``f`` gets id ``1 + position of v in vocabularies[f]``; id 0 is
kept for values never seen in training (and for values rarer than ``min_count``). Numeric
column ``j`` becomes ``(x_j - mean_j) / std_j``; raw values must be finite in float32 and within
``±MAX_ABS``, standardised ones within ``±MAX_Z`` (an :class:`InputError` names the column).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from moe_zoo.core import Config, InputError

# Raw numeric features beyond this magnitude are errors: counts, durations in ms and prices stay far
# below it, and float32 keeps only ~7 significant digits of anything this large.
MAX_ABS = 1e12
# Standardised values beyond this many training standard deviations are errors at encode time.
MAX_Z = 1e4


def _as_strings(column: pd.Series) -> np.ndarray:
    """Categorical values as strings (``3`` and ``"3"`` are the same value; missing -> ``""``)."""
    values = column.astype("object").where(column.notna(), "")
    return values.map(str).to_numpy(dtype=object)


@dataclass(frozen=True)
class FeatureSchema(Config):
    """Column names, vocabularies and numeric standardisation of one data set."""

    categorical: tuple[str, ...] = ()
    vocabularies: tuple[tuple[str, ...], ...] = ()
    numeric: tuple[str, ...] = ()
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if len(self.vocabularies) != len(self.categorical):
            raise InputError(f"FeatureSchema: {len(self.categorical)} categorical fields but "
                             f"{len(self.vocabularies)} vocabularies")
        if not len(self.mean) == len(self.std) == len(self.numeric):
            raise InputError("FeatureSchema: numeric, mean and std must have the same length")

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """Embedding-table sizes: the vocabulary plus the unknown id 0."""
        return tuple(len(v) + 1 for v in self.vocabularies)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.categorical + self.numeric

    @classmethod
    def fit(cls, frame: pd.DataFrame, categorical: Sequence[str], numeric: Sequence[str], *,
            min_count: int = 1) -> FeatureSchema:
        """Vocabularies (values seen at least ``min_count`` times, most frequent first) and moments."""
        _check_columns(frame, (*categorical, *numeric))
        vocabularies = []
        for name in categorical:
            values, counts = np.unique(_as_strings(frame[name]).astype(str), return_counts=True)
            order = np.argsort(-counts, kind="stable")  # most frequent first, ties by value
            vocabularies.append(tuple(str(v) for v in values[order][counts[order] >= min_count]))
        values = _numeric_block(frame, numeric)
        mean = values.mean(0) if len(values) else np.zeros(len(numeric))
        std = values.std(0) if len(values) else np.ones(len(numeric))
        std = np.where(std > 1e-12, std, 1.0)
        return cls(tuple(categorical), tuple(vocabularies), tuple(numeric),
                   tuple(float(m) for m in mean), tuple(float(s) for s in std))

    def encode(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(ids [N, F] int64, numeric [N, M] float32)`` for the rows of ``frame``."""
        _check_columns(frame, self.columns)
        ids = np.zeros((len(frame), len(self.categorical)), dtype=np.int64)
        for j, (name, vocab) in enumerate(zip(self.categorical, self.vocabularies)):
            index = pd.Index(vocab)
            ids[:, j] = index.get_indexer(_as_strings(frame[name])) + 1  # -1 (unknown) -> 0
        values = _numeric_block(frame, self.numeric)
        z = (values - np.asarray(self.mean)) / np.asarray(self.std)
        _reject(np.abs(z) > MAX_Z, self.numeric, f"value(s) more than {MAX_Z:g} training standard deviations "
                                                  "from the training mean")
        return ids, z.astype(np.float32).reshape(len(frame), len(self.numeric))


def _check_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"rows must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"rows lack the feature column(s) {missing}; expected {list(columns)}")


def _numeric_block(frame: pd.DataFrame, numeric: Sequence[str]) -> np.ndarray:
    """The numeric columns as float64, checked: numbers, finite, and within :data:`MAX_ABS`.

    The models compute in float32, so a value must also be finite there (``1e300`` is finite in
    float64 and ``inf`` in float32); :data:`MAX_ABS` rejects magnitudes no real feature has, which
    would push a logit so far that a probability rounds to exactly 0 or 1.
    """
    if not numeric:
        return np.zeros((len(frame), 0))
    try:
        values = frame[list(numeric)].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"numeric feature columns {list(numeric)} must hold numbers: {err}") from None
    bad = np.isnan(values) | inf_in_float32(values)
    _reject(bad, numeric, "NaN/inf value(s) (in float32, the models' dtype); fill or drop them first")
    _reject(np.abs(values) > MAX_ABS, numeric, f"value(s) beyond ±{MAX_ABS:g}; rescale (e.g. log) or drop them")
    return values


def inf_in_float32(values: np.ndarray) -> np.ndarray:
    """Where float64 ``values`` are ``inf`` in the models' float32: ``inf`` itself and magnitudes
    beyond float32's range (``1e300`` is finite in float64)."""
    with np.errstate(over="ignore"):
        return np.isinf(values.astype(np.float32))


def _reject(bad: np.ndarray, numeric: Sequence[str], what: str) -> None:
    if bad.any():
        column = numeric[int(np.flatnonzero(bad.any(0))[0])]
        raise InputError(f"numeric feature {column!r} has {int(bad.sum())} {what}")
