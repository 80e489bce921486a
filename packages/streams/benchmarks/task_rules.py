"""Which MoE-Task rule? The released code's rule against the opt-in gated rule and a binary mask.

``python packages/streams/benchmarks/task_rules.py`` runs DriftMoE MoE-Task with three
(mask, prediction) rules on the same streams and seeds and writes the table into the README
(between the ``task-rules`` markers) and ``benchmarks/results/task_rules.md``:

- ``gated``: mask ``onehot(y)``, prediction ``p(c) ∝ g_c s_c`` (``combine="gated"``);
- ``released``: mask ``onehot(y)``, prediction ``argmax_c g_c`` (the router alone, as the
  released ``train_joint_task`` predicts; ``combine="router"``, the package's default);
- ``binary-mask``: mask ``m_c = 1`` where tree ``c``'s yes/no answer is right (else the tree with
  the highest probability of the right answer), prediction the gate-weighted mixture of the trees'
  one-vs-rest distributions (``s_c`` on ``c``, ``(1 - s_c)/(C - 1)`` on every other class).

All three run with the settings the table was first measured with (one router step per 256
instances, running standardisation of the router's inputs), so that only the rule differs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from moe_zoo.core.reporting import (
    format_mean_std,
    markdown_table,
    replace_marked_block,
    write_text_atomic,
)
from moe_zoo.streams import DriftMoEClassifier, get_stream_spec, prequential
from moe_zoo.streams.experts import TaskExperts

PACKAGE = Path(__file__).resolve().parents[1]
START, END = "<!-- task-rules:start -->", "<!-- task-rules:end -->"
STREAMS = {"sea_a": 6000, "rbf_m": 6000, "rbf_f": 6000, "led_a": 3000}


class BinaryMaskRule(TaskExperts):
    def router_target(self, rows, abstain, y_index):
        scores = rows[:, 1]
        targets = np.arange(len(self.experts)) == y_index
        probs = np.where(targets, scores, 1.0 - scores)  # probability each tree gives the right answer
        right = (probs > 0.5) & ~abstain
        if not right.any():
            right[int(np.argmax(probs))] = True
        return right.astype(np.float32)

    def predict(self, rows, abstain, weights):
        scores = rows[:, 1]
        n = len(scores)
        if n == 1:
            return np.ones(1)
        dist = np.repeat(((1.0 - scores) / (n - 1))[:, None], n, axis=1)
        dist[np.arange(n), np.arange(n)] = scores
        gate = np.where(abstain, 0.0, weights)
        return (gate / gate.sum()) @ dist if gate.sum() > 0 else np.full(n, 1.0 / n)


RULES = {"gated": "gated", "released": "router", "binary-mask": "gated"}
SETTINGS = {"batch_size": 256, "scaling": "running"}


class BinaryMaskModel(DriftMoEClassifier):
    """MoE-Task with the binary-mask pool; everything else is the package's model."""

    def _initialise(self, x: dict) -> None:
        super()._initialise(x)
        self._pool = BinaryMaskRule("gated")


def run(rule: str, stream: str, n: int, seed: int) -> float:
    kind = BinaryMaskModel if rule == "binary-mask" else DriftMoEClassifier
    model = kind(variant="task", combine=RULES[rule], seed=seed, **SETTINGS)
    return prequential(model, get_stream_spec(stream).build(n, seed), window=n).accuracy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for stream, n in STREAMS.items():
        cells = [format_mean_std([run(rule, stream, n, seed) for seed in args.seeds], 2, 100.0) for rule in RULES]
        rows.append([f"{stream} ({n:,})", *cells])
        logging.getLogger(__name__).info("%s", rows[-1])
    table = markdown_table(["stream (instances)", *[f"{r} (accuracy %)" for r in RULES]], rows)
    text = (f"MoE-Task rules, prequential accuracy, mean ± std over seeds {', '.join(map(str, args.seeds))} "
            f"(`python packages/streams/benchmarks/task_rules.py`):\n\n{table}")
    write_text_atomic(PACKAGE / "benchmarks" / "results" / "task_rules.md", text + "\n")
    replace_marked_block(PACKAGE / "README.md", START, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
