"""Expert-health diagnostics, the quantities HoME's three anomalies are defined by.

- expert collapse: per expert, the fraction of exactly-zero activations (dead ReLU units) and the
  output scale (mean, standard deviation and RMS of its outputs over rows and units);
- expert degradation / underfitting: per gate, the mean weight it puts on each expert group
  (shared, category, its own task experts), and per expert the mean weight each gate gives it.

Measured in eval mode (BatchNorm running statistics) on up to ``max_rows`` rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from moe_zoo.recsys.dataset import MultiTaskData


@dataclass
class ExpertHealth:
    """``experts``: one row per (level, expert); ``gates``: one row per (level, gate, expert group)."""

    experts: pd.DataFrame
    gates: pd.DataFrame

    def own_weight(self) -> pd.Series:
        """Weight each task gate of the last level gives its own task experts (0 when it has none)."""
        gates = self.gates[self.gates["level"] == self.gates["level"].iloc[-1]]
        own = gates[gates["group"] == gates["gate"]].set_index("gate")["weight"]
        return own.reindex(gates["gate"].unique(), fill_value=0.0)


def _group_of(level) -> list[str]:
    return [g.name for g in level.groups for _ in range(g.size)]


@torch.no_grad()
def expert_health(model, data: MultiTaskData, *, max_rows: int = 20_000, batch_size: int = 4096) -> ExpertHealth:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rows = np.arange(min(len(data), max_rows))
    sums: dict = defaultdict(lambda: np.zeros(4))  # (level, expert) -> [zeros, sum, sum of squares, count]
    gate_sums: dict = defaultdict(float)            # (level, gate, group) -> summed weight
    expert_weight: dict = defaultdict(float)        # (level, expert, gate) -> summed weight
    meta: dict = {}
    for start in range(0, len(rows), batch_size):
        part = data.subset(rows[start:start + batch_size])
        categorical, numeric, _ = part.tensors(device)
        out = model(categorical, numeric)
        for name, level, record in out.levels:
            outputs = record.expert_outputs.double()  # [T, E, d]
            labels = level.expert_labels() if level is not None else [f"{name}/{i}" for i in range(outputs.shape[1])]
            groups = _group_of(level) if level is not None else [name] * outputs.shape[1]
            for e, label in enumerate(labels):
                y = outputs[:, e]
                sums[(name, label)] += np.array([(y == 0).sum().item(), y.sum().item(), y.square().sum().item(),
                                                 y.numel()])
                meta[(name, label)] = groups[e]
            if level is None:
                continue
            for spec in level.specs:
                w = record.gate_weights[spec.name].double().sum(0).cpu().numpy()  # [|S_g|]
                for weight, e in zip(w, spec.experts):
                    gate_sums[(name, spec.name, groups[e])] += float(weight)
                    expert_weight[(name, labels[e], spec.name)] += float(weight)
    model.train(was_training)
    n = float(len(rows))
    experts = []
    for (name, label), (zeros, total, squares, count) in sums.items():
        mean = total / count
        experts.append({"level": name, "expert": label, "group": meta[(name, label)], "zero_fraction": zeros / count,
                        "mean": mean, "std": float(np.sqrt(max(squares / count - mean**2, 0.0))),
                        "rms": float(np.sqrt(squares / count))})
    frame = pd.DataFrame(experts)
    for (name, label, gate), weight in expert_weight.items():
        frame.loc[(frame["level"] == name) & (frame["expert"] == label), f"w_{gate}"] = weight / n
    gates = pd.DataFrame([{"level": name, "gate": gate, "group": group, "weight": w / n}
                          for (name, gate, group), w in gate_sums.items()],
                         columns=["level", "gate", "group", "weight"])
    return ExpertHealth(frame, gates)
