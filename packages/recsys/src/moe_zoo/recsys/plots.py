"""Expert-health figures (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from moe_zoo.core.reporting import save_figure

KIND_COLORS = {"shared": "tab:blue", "category": "tab:orange", "own": "tab:green"}


def plot_expert_health(health: dict[str, pd.DataFrame], path: str | Path, title: str) -> Path:
    """Per model (one row of panels): fraction of zero activations and output RMS for every expert."""
    fig, axes = plt.subplots(len(health), 2, figsize=(10, 1.9 * len(health) + 0.6), squeeze=False)
    for row, (model, experts) in enumerate(health.items()):
        labels = [f"{lv[:5]}:{ex}" for lv, ex in zip(experts["level"], experts["expert"])]
        for col, (metric, name) in enumerate((("zero_fraction", "zero activations"), ("rms", "output RMS"))):
            ax = axes[row, col]
            ax.bar(range(len(experts)), experts[metric], color="tab:red" if col == 0 else "tab:blue")
            ax.set_xticks(range(len(experts)), labels, rotation=70, fontsize=6)
            ax.set_ylabel(f"{model}\n{name}", fontsize=8)
            if metric == "zero_fraction":
                ax.set_ylim(0, 1)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=80)


def plot_gate_shares(gates: dict[str, pd.DataFrame], path: str | Path, title: str) -> Path:
    """Per model: stacked mean gate weight each task gate (last level) puts on shared / category / own experts."""
    fig, axes = plt.subplots(1, len(gates), figsize=(3.2 * len(gates), 3), squeeze=False)
    for ax, (model, frame) in zip(axes[0], gates.items()):
        last = frame[frame["level"] == frame["level"].iloc[-1]]
        kind = last.apply(lambda r: "own" if r["group"] == r["gate"] else
                          ("shared" if r["group"].startswith("shared") else "category"), axis=1)
        table = last.assign(kind=kind).pivot_table(index="gate", columns="kind", values="weight", aggfunc="sum").fillna(0)
        table = table.reindex(columns=[c for c in ("shared", "category", "own") if c in table.columns])
        table.plot.bar(stacked=True, ax=ax, legend=True, rot=30, fontsize=7,
                       color=[KIND_COLORS[c] for c in table.columns])
        ax.set_title(model, fontsize=9)
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=80)
