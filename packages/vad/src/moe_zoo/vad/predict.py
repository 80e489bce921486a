"""``vad.predict``: a video (file or frames) in, per-frame anomaly scores and segments out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from moe_zoo.core import InputError, create_model, load_model, resolve_device
from moe_zoo.vad.data import expand_to_frames
from moe_zoo.vad.features import SnippetExtractor, extract_stream, make_extractor
from moe_zoo.vad.losses import topk_count
from moe_zoo.vad.model import GSMoE
from moe_zoo.vad.plots import label_segments, plot_scores
from moe_zoo.vad.video import DEFAULT_MAX_SIDE, iter_frames, probe

DEFAULT_FPS = 10.0


@dataclass(frozen=True)
class Segment:
    """A detected anomaly: frames ``[start, end)``, times in seconds, its peak score and class."""

    start: int
    end: int
    start_s: float
    end_s: float
    peak: float
    favoured_class: str


@dataclass
class VADResult:
    """What :func:`predict` found in one video."""

    frame_scores: np.ndarray              # [n_frames] in [0, 1]
    snippet_scores: np.ndarray            # [snippets]
    fps: float
    snippet_len: int
    threshold: float
    segments: list[Segment]
    favoured_class: str                   # the class the gate favours (over detections, else top snippets)
    class_evidence: dict[str, float]      # normalised gate-weighted expert evidence per class
    expert_scores: np.ndarray             # [experts, snippets]
    gate_weights: np.ndarray              # [snippets, experts]
    class_names: tuple[str, ...]
    source: str = "frames"
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.frame_scores)

    @property
    def is_anomalous(self) -> bool:
        return bool(self.segments)

    @property
    def max_score(self) -> float:
        return float(self.frame_scores.max())

    def plot(self, path: str | Path, ground_truth: np.ndarray | None = None, title: str | None = None) -> Path:
        """Save the score-over-time plot (ground truth shaded when given) as a PNG."""
        return plot_scores(path, self.frame_scores, self.fps, ground_truth=ground_truth, threshold=self.threshold,
                           expert_scores=self.expert_scores, class_names=self.class_names,
                           snippet_len=self.snippet_len, title=title if title is not None else self.source)

    def to_dict(self) -> dict:
        """JSON-ready: frame scores, segments, favoured class and the gate's evidence per class."""
        return {"source": self.source, "fps": self.fps, "n_frames": self.n_frames, "threshold": self.threshold,
                "favoured_class": self.favoured_class, "class_evidence": self.class_evidence,
                "segments": [asdict(s) for s in self.segments],
                "frame_scores": [round(float(v), 5) for v in self.frame_scores]}

    def summary(self) -> str:
        """A few human-readable lines."""
        duration = self.n_frames / self.fps
        lines = [f"{self.source}: {self.n_frames} frames ({duration:.1f} s at {self.fps:g} fps), "
                 f"max anomaly score {self.max_score:.2f}"]
        if not self.segments:
            lines.append(f"no anomaly above threshold {self.threshold:g}")
        for seg in self.segments:
            lines.append(f"  anomaly {seg.start_s:6.1f}-{seg.end_s:6.1f} s (frames {seg.start}-{seg.end - 1}), "
                         f"peak {seg.peak:.2f}, gate favours '{seg.favoured_class}'")
        evidence = ", ".join(f"{k} {v:.2f}" for k, v in sorted(self.class_evidence.items(), key=lambda kv: -kv[1]))
        lines.append(f"gate evidence per class expert: {evidence}")
        return "\n".join(lines)


_DEFAULT: dict[str, nn.Module] = {}


def load_default_model(device: str | torch.device | None = None) -> GSMoE:
    """The shipped GS-MoE checkpoint (trained on the built-in data), loaded once per device."""
    device = resolve_device(device)
    if str(device) not in _DEFAULT:
        _DEFAULT[str(device)] = create_model("gsmoe-vad", pretrained=True).to(device).eval()
    return _DEFAULT[str(device)]


def load(path: str | Path | None = None, device: str | torch.device | None = None) -> GSMoE:
    """A GS-MoE model: the shipped weights (``path=None``) or a checkpoint written by :func:`train`."""
    if path is None:
        return load_default_model(device)
    model = load_model(path, device=resolve_device(device))
    if not isinstance(model, GSMoE):
        raise InputError(f"{path} holds a {type(model).__name__}, not a GS-MoE model")
    return model.eval()


def _resolve_model(model, device) -> GSMoE:
    if model is None or isinstance(model, str | Path):
        return load(model, device)
    if not isinstance(model, GSMoE):
        raise InputError(f"predict needs a GS-MoE model (or a checkpoint path), got {type(model).__name__}")
    return model.to(device).eval()


def _class_evidence(out, snippet_mask: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """``sum_{t in mask} g_te s^e_t``, normalised over experts (gate-weighted expert evidence)."""
    contribution = (out.gate_weights[0] * out.expert_scores[0].T).cpu().numpy()   # [T, E]
    evidence = contribution[snippet_mask].sum(0)
    total = evidence.sum()
    return evidence / total if total > 0 else np.full(len(class_names), 1.0 / len(class_names))


def predict(video: str | Path | np.ndarray | Sequence[np.ndarray], model: nn.Module | str | Path | None = None, *,
            threshold: float = 0.5, fps: float | None = None, plot: str | Path | None = None,
            extractor: SnippetExtractor | None = None, max_side: int | None = DEFAULT_MAX_SIDE,
            device: str | torch.device | None = None) -> VADResult:
    """Score every frame of a video and find the anomalous segments.

    ``video``: a file path (decoded with PyAV, streaming) or frames ``uint8 [N, H, W, 3]`` RGB.
    ``model``: a :class:`GSMoE`, a checkpoint path, or None for the shipped weights. ``fps``
    overrides the file's frame rate (for frames it defaults to 10). ``plot`` saves a PNG.
    """
    started = time.perf_counter()
    device = resolve_device(device)
    if not 0.0 < threshold < 1.0:
        raise InputError(f"threshold must be in (0, 1), got {threshold}")
    if isinstance(video, str | Path):  # input errors first, before any weights are loaded
        source, fps = str(video), fps or probe(video).fps
        frames = iter_frames(video, max_side=max_side)
    else:
        source, frames = "frames", _check_frames(video)
        fps = fps or DEFAULT_FPS
    net = _resolve_model(model, device)
    config = net.config
    extractor = extractor or make_extractor(config.features, device=device)
    if extractor.dim != config.feature_dim or extractor.snippet_len != config.features.snippet_len:
        raise InputError(f"extractor gives {extractor.dim}-d features per {extractor.snippet_len} frames; the model "
                         f"expects {config.feature_dim}-d per {config.features.snippet_len}")
    loaded = time.perf_counter()
    features, n_frames = extract_stream(frames, extractor)
    extracted = time.perf_counter()
    with torch.inference_mode():
        out = net(torch.from_numpy(features)[None].to(device))
    snippet = out.scores[0].cpu().numpy()
    frame_scores = expand_to_frames(snippet, extractor.snippet_len, n_frames)
    names = net.class_names
    above = snippet >= threshold
    if not above.any():  # favoured class over the top-k snippets when nothing is detected
        above = np.zeros_like(above)
        above[np.argsort(-snippet)[:topk_count(len(snippet), config.topk_divisor)]] = True
    evidence = _class_evidence(out, above, names)
    segments = []
    for a, b in label_segments(frame_scores >= threshold):
        mask = np.zeros(len(snippet), dtype=bool)
        mask[a // extractor.snippet_len:(b - 1) // extractor.snippet_len + 1] = True
        seg_evidence = _class_evidence(out, mask, names)
        segments.append(Segment(a, b, a / fps, b / fps, float(frame_scores[a:b].max()),
                                names[int(seg_evidence.argmax())]))
    result = VADResult(frame_scores, snippet, fps, extractor.snippet_len, threshold, segments,
                       names[int(evidence.argmax())], dict(zip(names, map(float, evidence))),
                       out.expert_scores[0].cpu().numpy(), out.gate_weights[0].cpu().numpy(), tuple(names),
                       source=source)
    done = time.perf_counter()
    result.seconds = done - started
    result.timings = {"setup": loaded - started, "decode_and_features": extracted - loaded, "model": done - extracted}
    if plot is not None:
        result.plot(plot)
    return result


def _check_frames(video) -> np.ndarray:
    frames = np.asarray(video) if not isinstance(video, np.ndarray) else video
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"frames must be uint8 RGB [N, H, W, 3], got {frames.dtype} {frames.shape}")
    if len(frames) == 0:
        raise InputError("frames: the video is empty (0 frames)")
    return frames
