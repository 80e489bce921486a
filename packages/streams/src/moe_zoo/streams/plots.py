"""Accuracy-over-time plots with the drift points marked (matplotlib, Agg backend, small PNGs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from moe_zoo.core.reporting import save_figure

# one colour per model, DriftMoE first and strongest
COLOURS = {"driftmoe-data": "#d62728", "driftmoe-task": "#ff7f0e", "arf": "#1f77b4", "srp": "#2ca02c",
           "levbag": "#9467bd", "hat": "#8c564b", "ht": "#7f7f7f"}


def _draw(ax, curves: Mapping[str, Sequence[float]], window: int, drifts: Sequence[int], drift_width: int,
          title: str) -> None:
    for name, curve in curves.items():
        if not len(curve):
            continue
        xs = (np.arange(len(curve)) + 1) * window
        ax.plot(xs, np.asarray(curve) * 100, label=name, color=COLOURS.get(name), lw=1.6 if "driftmoe" in name else 1.0)
    for position in drifts:
        if drift_width > 0:
            ax.axvspan(position - drift_width / 2, position + drift_width / 2, color="0.85", lw=0)
        ax.axvline(position, color="k", ls="--", lw=0.8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def plot_accuracy_over_time(panels: Sequence[dict], path: str | Path, columns: int = 3) -> Path:
    """One subplot per stream: windowed prequential accuracy (%) of each model, drifts dashed
    (gradual drifts shaded over their width). ``panels``: dicts with ``title``, ``curves``
    (model -> per-window accuracies), ``window``, ``drifts`` and ``drift_width``."""
    path = Path(path)
    columns = max(1, min(columns, len(panels)))
    rows = max(1, -(-len(panels) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.5 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        _draw(ax, panel["curves"], panel["window"], panel.get("drifts", ()), panel.get("drift_width", 0),
              panel["title"])
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.supxlabel("instances", fontsize=8)
    fig.supylabel("windowed accuracy (%)", fontsize=8)
    top = 0.35 / (2.5 * rows)  # room for the legend above the panels
    fig.tight_layout(rect=(0, 0, 1, 1 - top))
    fig.legend(handles, labels, loc="upper center", ncol=min(7, len(labels)), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    return save_figure(fig, path, dpi=72)

