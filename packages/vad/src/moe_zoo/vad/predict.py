"""``vad.predict``: a video (file or frames) in, per-frame anomaly scores and segments out."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from moe_zoo.core import InputError, create_model, get_logger, load_model, resolve_device
from moe_zoo.core.video import DEFAULT_MAX_SIDE, DecodeReport, iter_frames, probe
from moe_zoo.vad.calibration import DEFAULT_SCORED, Calibration
from moe_zoo.vad.features import SnippetExtractor, extract_stream, make_extractor
from moe_zoo.vad.losses import topk_count
from moe_zoo.vad.model import GSMoE
from moe_zoo.vad.plots import label_segments, plot_scores
from moe_zoo.vad.scope import input_warnings, out_of_distribution
from moe_zoo.vad.timing import check_fps, frame_to_resampled, resample

_log = get_logger(__name__)


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
    model_fps: float = 10.0               # the rate snippets were cut at (the model's training rate)
    warnings: list[str] = field(default_factory=list)   # why the input is out of the model's scope
    calibrated: bool = False              # scores relative to a camera's normal baseline
    features: np.ndarray | None = field(default=None, repr=False)   # [snippets, dim] the model saw
    raw_snippet_scores: np.ndarray | None = field(default=None, repr=False)  # the model's, before calibration

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
        return {"source": self.source, "fps": self.fps, "model_fps": self.model_fps, "n_frames": self.n_frames,
                "threshold": self.threshold, "calibrated": self.calibrated, "warnings": list(self.warnings),
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
        lines.extend(f"warning: {w}" for w in self.warnings)
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


def predict(video: str | Path | np.ndarray | Iterable[np.ndarray], model: nn.Module | str | Path | None = None, *,
            threshold: float = 0.5, fps: float | None = None, plot: str | Path | None = None,
            extractor: SnippetExtractor | None = None, max_side: int | None = DEFAULT_MAX_SIDE,
            calibration: Calibration | str | Path | None = None,
            device: str | torch.device | None = None) -> VADResult:
    """Score every frame of a video and find the anomalous segments.

    ``video``: a file path (decoded with PyAV, streaming), frames ``uint8 [N, H, W, 3]`` RGB, or
    a list or generator of ``uint8 [H, W, 3]`` frames of one size (a generator is consumed once).
    ``model``: a :class:`GSMoE`, a checkpoint path, or None for the shipped weights. ``fps``
    overrides the file's frame rate (for frames it defaults to the model's). Clips faster than
    the model's training rate (``model.config.features.fps``) are resampled to it
    (:mod:`~moe_zoo.vad.timing`), so a snippet spans the same time as in training; scores come
    back per source frame. ``calibration``: a :class:`~moe_zoo.vad.calibration.Calibration` (or its
    file) from :func:`~moe_zoo.vad.calibrate` for this camera. ``plot`` saves a PNG. Inputs out of
    the model's scope (see :mod:`~moe_zoo.vad.scope`) are scored but listed in ``result.warnings``.
    """
    started = time.perf_counter()
    device = resolve_device(device)
    if not 0.0 < threshold < 1.0:
        raise InputError(f"threshold must be in (0, 1), got {threshold}")
    if fps is not None:
        fps = check_fps(fps)
    report = DecodeReport()
    if isinstance(video, str | Path):  # input errors first, before any weights are loaded
        source = str(video)
        fps = fps or check_fps(probe(video).fps, f"frame rate of {video}")
        frames = iter_frames(video, max_side=max_side, report=report)
    else:
        source, frames = "frames", _frame_stream(video)
    if calibration is not None and not isinstance(calibration, Calibration):
        calibration = Calibration.load(calibration)
    net = _resolve_model(model, device)
    config = net.config
    model_fps = config.features.fps
    fps = fps or model_fps
    extractor = extractor or make_extractor(config.features, device=device)
    if extractor.dim != config.feature_dim or extractor.snippet_len != config.features.snippet_len:
        raise InputError(f"extractor gives {extractor.dim}-d features per {extractor.snippet_len} frames; the model "
                         f"expects {config.feature_dim}-d per {config.features.snippet_len}")
    if calibration is not None:
        calibration.check_model(net)
    loaded = time.perf_counter()
    watch = _Watch(frames)
    features, n_used = extract_stream(resample(watch, fps, model_fps), extractor)
    extracted = time.perf_counter()
    with torch.inference_mode():
        out = net(torch.from_numpy(features)[None].to(device))
    snippet = raw = out.scores[0].cpu().numpy()
    warnings = input_warnings(n_frames=watch.count, n_used=n_used, snippet_len=extractor.snippet_len,
                              model_fps=model_fps, source_fps=fps, height=report.height or watch.height,
                              width=report.width or watch.width, still=watch.still, partial=_partial(report))
    if calibration is not None:
        views = calibration.view_z(features, snippet)
        snippet, far = calibration.combine(views), calibration.far_warning(views)
    else:
        far = out_of_distribution(getattr(net, "feature_stats", None), features)
    if far:
        warnings.append(far)
    for warning in warnings:
        _log.warning("%s: %s", source, warning)
    frame_snippet = np.minimum(frame_to_resampled(watch.count, fps, model_fps, n_used) // extractor.snippet_len,
                               len(snippet) - 1)
    frame_scores = snippet[frame_snippet]
    names = net.class_names
    above = snippet >= threshold
    if not above.any():  # favoured class over the top-k snippets when nothing is detected
        above = np.zeros_like(above)
        above[np.argsort(-snippet)[:topk_count(len(snippet), config.topk_divisor)]] = True
    evidence = _class_evidence(out, above, names)
    segments = []
    for a, b in label_segments(frame_scores >= threshold):
        mask = np.zeros(len(snippet), dtype=bool)
        mask[frame_snippet[a]:frame_snippet[b - 1] + 1] = True
        seg_evidence = _class_evidence(out, mask, names)
        segments.append(Segment(a, b, a / fps, b / fps, float(frame_scores[a:b].max()),
                                names[int(seg_evidence.argmax())]))
    result = VADResult(frame_scores, snippet, fps, extractor.snippet_len, threshold, segments,
                       names[int(evidence.argmax())], dict(zip(names, map(float, evidence))),
                       out.expert_scores[0].cpu().numpy(), out.gate_weights[0].cpu().numpy(), tuple(names),
                       source=source, model_fps=model_fps, warnings=warnings, calibrated=calibration is not None,
                       features=features, raw_snippet_scores=raw)
    done = time.perf_counter()
    result.seconds = done - started
    result.timings = {"setup": loaded - started, "decode_and_features": extracted - loaded, "model": done - extracted}
    if plot is not None:
        result.plot(plot)
    return result


def calibrate(normal_clip: str | Path | np.ndarray | Iterable[np.ndarray], model: nn.Module | str | Path | None = None,
              *, fps: float | None = None, max_side: int | None = DEFAULT_MAX_SIDE,
              extractor: SnippetExtractor | None = None, save: str | Path | None = None,
              scored: Sequence[str] = DEFAULT_SCORED, device: str | torch.device | None = None) -> Calibration:
    """Fit one camera's normal baseline from ``normal_clip`` (ordinary activity, ideally 30 s or more)
    and return the :class:`~moe_zoo.vad.calibration.Calibration` to pass to ``predict(...,
    calibration=...)``; ``save`` writes it (safetensors + JSON header). The formula is in
    :mod:`moe_zoo.vad.calibration`; ``scored`` picks the views that raise the score (default: the model's
    score alone; ``("score", "motion")`` or ``("score", "appearance", "motion")`` add novelty views)."""
    from moe_zoo.vad.features import MobileNetMotionExtractor

    device = resolve_device(device)
    net = _resolve_model(model, device)
    result = predict(normal_clip, net, fps=fps, max_side=max_side, extractor=extractor, device=device)
    used = extractor or make_extractor(net.config.features, device=device)
    motion = used.config.motion_dim if isinstance(used, MobileNetMotionExtractor) else None
    calibration = Calibration.fit(net, result.features, result.raw_snippet_scores, motion_dim=motion,
                                  source=result.source, scored=tuple(scored))
    if save is not None:
        calibration.save(save)
    return calibration


def _partial(report: DecodeReport) -> str | None:
    if report.error is not None:
        return f"decoder error after {report.decoded} frames: {report.error}"
    if report.partial:
        return f"{report.decoded} of the {report.declared} frames the file declares"
    return None


class _Watch:
    """Passes frames through, counting them and noting whether any pixel ever changes."""

    def __init__(self, frames: Iterable[np.ndarray]) -> None:
        self.frames, self.count, self.still = frames, 0, True
        self.height = self.width = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        previous = None
        for frame in self.frames:
            if previous is None:
                self.height, self.width = frame.shape[:2]
            elif self.still and not np.array_equal(frame, previous):
                self.still = False
            previous = frame
            self.count += 1
            yield frame


def _frame_stream(video) -> Iterable[np.ndarray]:
    """Frames from an array ``[N, H, W, 3]``, a list/tuple or a generator of ``[H, W, 3]`` frames,
    each checked (uint8 RGB, one size for all) with an error naming the offending frame."""
    if isinstance(video, np.ndarray):
        if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3:
            raise InputError(f"frames must be uint8 RGB [N, H, W, 3], got {video.dtype} {video.shape}")
        if len(video) == 0:
            raise InputError("frames: the video is empty (0 frames)")
        return video
    if isinstance(video, str | bytes | dict) or not isinstance(video, Iterable):
        raise InputError(f"video must be a file path, a uint8 array [N, H, W, 3] or a list/generator of uint8 "
                         f"[H, W, 3] frames, got {type(video).__name__}")
    if isinstance(video, Sequence):
        if len(video) == 0:
            raise InputError("frames: the video is empty (0 frames)")
        first = np.asarray(video[0])
        for i, frame in enumerate(video):  # all checked before any model is loaded
            _check_frame(np.asarray(frame), i, first.shape)
        return (np.asarray(f) for f in video)
    return _checked_generator(iter(video))


def _check_frame(frame: np.ndarray, index: int, shape: tuple[int, ...] | None) -> None:
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
        raise InputError(f"frame {index} must be uint8 RGB [H, W, 3], got {frame.dtype} {frame.shape}")
    if shape is not None and frame.shape != shape:
        raise InputError(f"frames must all have one size: frame {index} is {frame.shape[1]}x{frame.shape[0]}, "
                         f"frame 0 is {shape[1]}x{shape[0]} (width x height)")


def _checked_generator(frames: Iterator) -> Iterator[np.ndarray]:
    shape = None
    count = 0
    for count, frame in enumerate(frames, 1):
        frame = np.asarray(frame)
        _check_frame(frame, count - 1, shape)
        shape = frame.shape
        yield frame
    if count == 0:
        raise InputError("frames: the generator yielded no frames (the video is empty)")
