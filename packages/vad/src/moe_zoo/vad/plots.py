"""Score-over-time plots with the ground truth shaded (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from moe_zoo.core.reporting import save_figure


def label_segments(labels: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` frame ranges where a 0/1 label (or boolean) array is on."""
    on = np.concatenate([[0], np.asarray(labels, dtype=np.int8) > 0, [0]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(on))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def plot_scores(path: str | Path, frame_scores: np.ndarray, fps: float, *, title: str = "",
                ground_truth: np.ndarray | None = None, threshold: float | None = None,
                expert_scores: np.ndarray | None = None, class_names: Sequence[str] = (),
                snippet_len: int = 1, curves: dict[str, np.ndarray] | None = None) -> Path:
    """Anomaly score over time (seconds), ground-truth anomalies shaded, optional threshold line,
    extra labelled ``curves`` (other methods) and a lower panel with the class experts' scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 2 if expert_scores is not None and len(class_names) > 1 else 1
    fig, axes = plt.subplots(rows, 1, figsize=(12 if curves else 9, 2.6 * rows + 0.4), sharex=True, squeeze=False)
    axes = axes[:, 0]
    t = np.arange(len(frame_scores)) / fps
    for ax in axes:
        if ground_truth is not None:
            for i, (a, b) in enumerate(label_segments(ground_truth)):
                ax.axvspan(a / fps, b / fps, color="tab:red", alpha=0.18, lw=0,
                           label="ground truth" if i == 0 and ax is axes[0] else None)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].plot(t, frame_scores, color="black", lw=1.6, label="GS-MoE" if curves else "anomaly score")
    for name, values in (curves or {}).items():
        axes[0].plot(np.arange(len(values)) / fps, values, lw=1.0, alpha=0.8, label=name)
    if threshold is not None:
        axes[0].axhline(threshold, color="tab:gray", ls="--", lw=0.8, label=f"threshold {threshold:g}")
    axes[0].set_ylabel("anomaly score")
    if curves:  # several methods: the legend goes beside the plot, not over the curves
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    else:
        axes[0].legend(loc="upper right", fontsize=7, ncol=3)
    if title:
        axes[0].set_title(title, fontsize=10)
    if rows == 2:
        for name, scores in zip(class_names, expert_scores):
            values = np.repeat(scores, snippet_len)[:len(frame_scores)]
            axes[1].plot(np.arange(len(values)) / fps, values, lw=1.0, label=name)
        axes[1].set_ylabel("class experts")
        axes[1].legend(loc="upper right", fontsize=7, ncol=3)
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
