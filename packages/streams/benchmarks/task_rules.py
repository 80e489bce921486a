"""Which MoE-Task rule? The package's rule against the released code's and a binary-mask variant.

``python packages/streams/benchmarks/task_rules.py`` runs DriftMoE MoE-Task with three
(mask, prediction) rules on the same streams and seeds and writes the table into the README
(between the ``task-rules`` markers) and ``benchmarks/results/task_rules.md``:

- ``package``: mask ``onehot(y)``, prediction ``p(c) ∝ g_c s_c`` (the package's rule);
- ``released``: mask ``onehot(y)``, prediction ``argmax_c g_c`` (the router alone, as the
  released ``train_joint_task`` predicts);
- ``binary-mask``: mask ``m_c = 1`` where tree ``c``'s yes/no answer is right (else the tree with
  the highest probability of the right answer), prediction the gate-weighted mixture of the trees'
  one-vs-rest distributions (``s_c`` on ``c``, ``(1 - s_c)/(C - 1)`` on every other class).
"""

from __future__ import annotations

import argparse
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


class ReleasedRule(TaskExperts):
    def predict(self, x, classes, weights):
        return weights


class BinaryMaskRule(TaskExperts):
    def router_target(self, x, classes, y_index):
        scores, abstain = self.scores(x)
        targets = np.arange(len(self.experts)) == y_index
        probs = np.where(targets, scores, 1.0 - scores)  # probability each tree gives the right answer
        right = (probs > 0.5) & ~abstain
        if not right.any():
            right[int(np.argmax(probs))] = True
        return right.astype(np.float32)

    def predict(self, x, classes, weights):
        scores, abstain = self.scores(x)
        n = len(scores)
        if n == 1:
            return np.ones(1)
        dist = np.repeat(((1.0 - scores) / (n - 1))[:, None], n, axis=1)
        dist[np.arange(n), np.arange(n)] = scores
        gate = np.where(abstain, 0.0, weights)
        return (gate / gate.sum()) @ dist if gate.sum() > 0 else np.full(n, 1.0 / n)


RULES = {"package": TaskExperts, "released": ReleasedRule, "binary-mask": BinaryMaskRule}


class RuleModel(DriftMoEClassifier):
    """MoE-Task with another pool class (its rules); everything else is the package's model."""

    def __init__(self, pool: type[TaskExperts], seed: int) -> None:
        super().__init__(variant="task", seed=seed)
        self.pool = pool

    def _initialise(self, x: dict) -> None:
        super()._initialise(x)
        self._pool = self.pool()


def run(rule: str, stream: str, n: int, seed: int) -> float:
    model = RuleModel(RULES[rule], seed)
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
        print(rows[-1], flush=True)
    table = markdown_table(["stream (instances)", *[f"{r} (accuracy %)" for r in RULES]], rows)
    text = (f"MoE-Task rules, prequential accuracy, mean ± std over seeds {', '.join(map(str, args.seeds))} "
            f"(`python packages/streams/benchmarks/task_rules.py`):\n\n{table}")
    write_text_atomic(PACKAGE / "benchmarks" / "results" / "task_rules.md", text + "\n")
    replace_marked_block(PACKAGE / "README.md", START, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
