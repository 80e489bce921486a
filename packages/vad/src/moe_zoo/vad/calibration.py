"""Per-camera calibration: a camera's normal baseline fitted from a clip of ordinary activity.

Ours (the paper has no per-camera step; surveillance systems are deployed this way). A model
trained on other footage ranks events within a clip but does not know what is normal for a new
camera: its scores on the camera's ordinary activity may sit anywhere. :func:`calibrate` runs the
model once over a normal clip of the camera and keeps, per snippet, three views of normality:

* the model's score ``l = logit(s)``;
* appearance novelty (the CNN part of the features) and motion novelty (the motion statistics):
  with the clip's per-dimension mean ``mu`` and spread ``sigma`` (floored), ``u = (x - mu) / sigma``,
  the novelty of a snippet is ``n(x) = mean of its k = 3 smallest (1/D) ||u - u_j||^2`` over the
  calibration snippets ``j`` (for the clip's own snippets, neighbours ``|i - j| <= 1`` excluded, and
  fewer than 3 when a short clip leaves fewer).

Each view ``v`` is standardised against the clip, ``z_v = (v - median_v) / (q95_v - median_v)``
(the denominator floored), and the calibrated score is
``p = sigmoid(SHARPNESS (max_{v in scored} z_v - MARGIN))``: a snippet must stand out from the camera's
normal activity by ``MARGIN`` times the calibration clip's own 95th-percentile excursion in at least one
scored view to score above 0.5. The constants were set before any held-out measurement.

Scored views (``DEFAULT_SCORED``): the model's score alone, which turns calibration into a per-camera
re-scaling of the score (frame AUC unchanged, false alarms down). Chosen after two measured attempts on
held-out cameras (BENCHMARKS.md, held-out cameras): scoring appearance novelty too (1st) flagged every
later normal snippet of a panning street camera, and motion novelty (2nd) flagged 38 % of vtest's
later normal frames: with a short calibration clip, per-dimension spreads of dimensions that barely
varied during calibration (grid cells nobody walked through) are tiny, so ordinary activity there
looks novel. Both views stay available (``scored=``) and feed the "unlike the calibration clip" warning.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from moe_zoo.core import InputError
from moe_zoo.core.atomic import atomic_path

K_NEIGHBOURS = 3
EXCLUDE = 1            # calibration snippets within this many snippets of each other are not neighbours
MIN_SNIPPETS = 2 * EXCLUDE + 2   # every calibration snippet keeps at least one neighbour
QUANTILE = 0.95
MARGIN = 1.5
SHARPNESS = 4.0
SCORE_SPREAD_FLOOR = 0.5   # logits
NOVELTY_SPREAD_FLOOR = 0.05
FAR_MEDIAN_Z = MARGIN      # warn when the median snippet stands out this much in some view
DEFAULT_SCORED = ("score",)
VIEW_NAMES = ("score", "appearance", "motion", "features")   # "features": the single view of a generic extractor
FORMAT = "moe-zoo-vad-calibration"
FORMAT_VERSION = 1


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 (16 hex digits) of the model's config and every tensor of its state dict."""
    digest = hashlib.sha256(model.config.to_json(None).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def feature_parts(dim: int, motion_dim: int | None) -> dict[str, tuple[int, int]]:
    """Feature columns of each novelty view: appearance (CNN) and motion, or one view."""
    if motion_dim and dim > motion_dim:
        return {"appearance": (0, dim - motion_dim), "motion": (dim - motion_dim, dim)}
    return {"features": (0, dim)}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def _knn_novelty(u: np.ndarray, bank: np.ndarray, exclude_self: bool) -> np.ndarray:
    """Mean of the ``K_NEIGHBOURS`` smallest ``(1/D) ||u_i - bank_j||^2`` per row of ``u``."""
    d2 = ((u[:, None, :] - bank[None, :, :]) ** 2).mean(-1)
    if exclude_self:
        i = np.arange(len(u))
        d2[np.abs(i[:, None] - i[None, :]) <= EXCLUDE] = np.inf
    nearest = np.sort(d2, axis=1)[:, :K_NEIGHBOURS]
    finite = np.isfinite(nearest)
    return np.where(finite, nearest, 0.0).sum(1) / finite.sum(1)


@dataclass
class _View:
    center: float
    spread: float

    def z(self, values: np.ndarray) -> np.ndarray:
        return (values - self.center) / self.spread

    @classmethod
    def fit(cls, values: np.ndarray, floor: float) -> _View:
        center = float(np.median(values))
        return cls(center, max(float(np.quantile(values, QUANTILE)) - center, floor))


class Calibration:
    """A camera's normal baseline for one model (see the module docstring for the formula)."""

    def __init__(self, *, fingerprint: str, feature_dim: int, snippet_len: int, fps: float,
                 parts: dict[str, tuple[int, int]], mean: np.ndarray, scale: np.ndarray, bank: np.ndarray,
                 views: dict[str, _View], source: str = "", scored: tuple[str, ...] = DEFAULT_SCORED) -> None:
        self.scored = tuple(v for v in scored if v in views)
        if not self.scored:
            raise InputError(f"calibration scores no view: {scored} vs views {sorted(views)}")
        self.fingerprint, self.feature_dim, self.snippet_len, self.fps = fingerprint, feature_dim, snippet_len, fps
        self.parts, self.mean, self.scale, self.bank = parts, mean, scale, bank
        self.views, self.source = views, source

    @property
    def n_snippets(self) -> int:
        return len(self.bank)

    @classmethod
    def fit(cls, model: torch.nn.Module, features: np.ndarray, scores: np.ndarray, *, motion_dim: int | None,
            source: str = "", scored: tuple[str, ...] = DEFAULT_SCORED) -> Calibration:
        """From the features ``[S, D]`` and model snippet scores ``[S]`` of a normal clip."""
        features = np.asarray(features, dtype=np.float32)
        if len(features) < MIN_SNIPPETS:
            raise InputError(f"calibration clip {source or ''} gives {len(features)} snippets; at least "
                             f"{MIN_SNIPPETS} are needed ({MIN_SNIPPETS * model.config.features.snippet_seconds:g} s "
                             f"of normal activity; 30 s or more is better)")
        mean = features.mean(0)
        spread = features.std(0)
        scale = np.maximum(spread, max(1e-3, 0.1 * float(np.median(spread)))).astype(np.float32)
        bank = (features - mean) / scale
        parts = feature_parts(features.shape[1], motion_dim)
        views = {"score": _View.fit(_logit(scores), SCORE_SPREAD_FLOOR)}
        for name, (a, b) in parts.items():
            views[name] = _View.fit(_knn_novelty(bank[:, a:b], bank[:, a:b], True), NOVELTY_SPREAD_FLOOR)
        return cls(fingerprint=model_fingerprint(model), feature_dim=features.shape[1],
                   snippet_len=model.config.features.snippet_len, fps=model.config.features.fps, parts=parts,
                   mean=mean, scale=scale, bank=bank.astype(np.float32), views=views, source=source, scored=scored)

    def check_model(self, model: torch.nn.Module) -> None:
        if model_fingerprint(model) != self.fingerprint:
            raise InputError("this calibration was fitted with another model (config or weights differ); "
                             "run vad.calibrate again with the model you predict with")

    def view_z(self, features: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
        """``z_v`` per view and snippet."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            raise InputError(f"calibration expects features [S, {self.feature_dim}], got {features.shape}")
        u = (features - self.mean) / self.scale
        z = {"score": self.views["score"].z(_logit(scores))}
        for name, (a, b) in self.parts.items():
            z[name] = self.views[name].z(_knn_novelty(u[:, a:b], self.bank[:, a:b], False))
        return z

    def combine(self, views: dict[str, np.ndarray], scored: tuple[str, ...] | None = None) -> np.ndarray:
        """Calibrated snippet scores ``sigmoid(SHARPNESS (max_{scored v} z_v - MARGIN))`` in (0, 1) from
        :meth:`view_z`'s views (``scored``: this calibration's scored views unless given)."""
        z = np.max(np.stack([views[v] for v in (scored or self.scored)]), 0)
        return (1.0 / (1.0 + np.exp(-SHARPNESS * (z - MARGIN)))).astype(np.float32)

    def apply(self, features: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Calibrated snippet scores of ``features`` ``[S, D]`` and model scores ``[S]``."""
        return self.combine(self.view_z(features, scores))

    def far_warning(self, views: dict[str, np.ndarray]) -> str | None:
        """A warning when most of the clip looks unlike the calibration clip (camera moved or changed?),
        from :meth:`view_z`'s novelty views."""
        worst = max(float(np.median(views[n])) for n in self.parts)
        if worst <= FAR_MEDIAN_Z:
            return None
        return (f"most of this footage is unlike the calibration clip (median novelty z {worst:.1f} > "
                f"{FAR_MEDIAN_Z:g}): was the camera moved, or is this another camera? Recalibrate if so")

    # ---- storage: safetensors arrays + JSON header ------------------------------------------
    def to_json_dict(self) -> dict:
        return {"format": FORMAT, "version": FORMAT_VERSION, "fingerprint": self.fingerprint,
                "feature_dim": self.feature_dim, "snippet_len": self.snippet_len, "fps": self.fps,
                "parts": {k: list(v) for k, v in self.parts.items()}, "source": self.source,
                "views": {k: [v.center, v.spread] for k, v in self.views.items()}, "scored": list(self.scored)}

    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file

        path = Path(path)
        with atomic_path(path) as tmp:
            save_file({"mean": self.mean, "scale": self.scale, "bank": self.bank}, str(tmp),
                      metadata={"calibration": json.dumps(self.to_json_dict())})
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise InputError(f"calibration file not found: {path}")
        try:
            with safe_open(str(path), framework="numpy") as handle:
                meta = json.loads((handle.metadata() or {})["calibration"])
                arrays = {k: handle.get_tensor(k) for k in ("mean", "scale", "bank")}
            if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
                raise ValueError(f"format {meta.get('format')!r} version {meta.get('version')!r}")
            calibration = cls(fingerprint=str(meta["fingerprint"]), feature_dim=int(meta["feature_dim"]),
                              snippet_len=int(meta["snippet_len"]), fps=float(meta["fps"]),
                              parts={k: (int(v[0]), int(v[1])) for k, v in meta["parts"].items()},
                              mean=arrays["mean"], scale=arrays["scale"], bank=arrays["bank"],
                              views={k: _View(float(v[0]), float(v[1])) for k, v in meta["views"].items()},
                              source=str(meta.get("source", "")), scored=tuple(meta["scored"]))
        except Exception as err:  # any malformed file is one clear error
            raise InputError(f"{path} is not a vad calibration file ({type(err).__name__}: {err})") from None
        dim = calibration.feature_dim
        if calibration.mean.shape != (dim,) or calibration.scale.shape != (dim,) or calibration.bank.ndim != 2 \
                or calibration.bank.shape[1] != dim or set(calibration.views) != {"score", *calibration.parts}:
            raise InputError(f"{path} is not a consistent vad calibration file (array shapes or views differ)")
        return calibration
