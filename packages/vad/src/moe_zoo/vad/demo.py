"""The demo: anomalies of every class injected into real surveillance footage, then found.

A stretch of opencv-doc's ``vtest.avi`` (frames 560-795; the shipped model saw this camera in
training, augmented, so this is not a held-out test: those figures are in BENCHMARKS.md, section
"Held-out cameras") gets one injected anomaly or camera tampering per clip; the shipped GS-MoE model scores every frame,
finds the segments and names the class expert its gate favours. The first clip goes through
the full file path (H.264 .mp4 written and decoded with PyAV), the others through frames.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from moe_zoo.core.video import write_video
from moe_zoo.vad.builtin import BuiltinConfig, footage_frames
from moe_zoo.vad.metrics import frame_auc
from moe_zoo.vad.plots import label_segments
from moe_zoo.vad.predict import load_default_model, predict
from moe_zoo.vad.synthesis import ALL_CLASSES, render, sample_event

CLIP_LEN = 128
SEED = 11


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def run_demo(plot_dir: str | Path | None = None, seed: int = SEED) -> str:
    """A readable report: per clip the true event, the detected segments and the gate's class."""
    plot_dir = Path(plot_dir or tempfile.mkdtemp(prefix="moe-zoo-vad-demo-"))
    lo, hi = BuiltinConfig().test_frames
    footage, fps = footage_frames(hi)
    rng = np.random.default_rng(seed)
    model = load_default_model("cpu")
    lines = [f"GS-MoE on real footage (vtest.avi frames {lo}-{hi}, {fps:g} fps; a camera in the shipped model's "
             f"training data), one injected anomaly per {CLIP_LEN / fps:.1f} s clip:", "",
             f"{'injected':<17} {'true (s)':<12} {'detected (s)':<24} {'IoU':>5} {'AUC':>5}  gate favours"]
    started, frames_seen = time.perf_counter(), 0
    for i, kind in enumerate(ALL_CLASSES):
        start = int(rng.integers(lo, hi - CLIP_LEN + 1))
        clip = footage[start:start + CLIP_LEN]
        event = sample_event(kind, CLIP_LEN, fps, rng)
        frames, truth = render(clip, event)
        plot = plot_dir / f"{i}_{kind}.png"
        if i == 0:
            source = write_video(plot_dir / f"{kind}.mp4", frames, fps)
            result = predict(source, model)
        else:
            result = predict(frames, model, fps=fps)
        result.plot(plot, ground_truth=truth, title=f"injected {kind}")
        frames_seen += result.n_frames
        detected = result.frame_scores >= result.threshold
        spans = ", ".join(f"{s.start_s:.1f}-{s.end_s:.1f}" for s in result.segments) or "none"
        (a, b), = label_segments(truth)
        lines.append(f"{kind:<17} {a / fps:4.1f}-{b / fps:4.1f}    {spans:<24} {_iou(detected, truth > 0):5.2f} "
                     f"{frame_auc(truth, result.frame_scores):5.2f}  {result.favoured_class}")
    normal = predict(footage[lo:lo + CLIP_LEN], model, fps=fps)
    frames_seen += normal.n_frames
    seconds = time.perf_counter() - started
    lines += [f"{'none (real clip)':<17} {'-':<12} "
              f"{', '.join(f'{s.start_s:.1f}-{s.end_s:.1f}' for s in normal.segments) or 'none':<24}"
              f" max score {normal.max_score:.2f}", "",
              f"{frames_seen} frames scored in {seconds:.1f} s ({frames_seen / seconds:.1f} frames/s incl. "
              "decoding, MobileNetV2 + motion features and the model)",
              f"plots: {plot_dir}"]
    return "\n".join(lines)
