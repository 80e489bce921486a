"""Cumulative excess-return plots (matplotlib Agg)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from moe_zoo.core.reporting import save_figure


def plot_cumulative_excess(curves: Mapping[str, pd.Series | list[pd.Series]], path: str | Path, title: str) -> Path:
    """One line per model: the cumulative (additive, Qlib-style) excess return with costs.

    A list of series (one per seed) is drawn as its mean with a min-max band.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.8))
    for name, curve in curves.items():
        runs = curve if isinstance(curve, list) else [curve]
        frame = pd.concat(runs, axis=1)
        mean = frame.mean(axis=1)
        line = ax.plot(mean.index, mean.to_numpy() * 100, label=f"{name} ({len(runs)} seeds)" if len(runs) > 1 else name)
        if len(runs) > 1:
            ax.fill_between(mean.index, frame.min(axis=1) * 100, frame.max(axis=1) * 100, alpha=0.15,
                            color=line[0].get_color())
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("cumulative excess return with costs (%)")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
