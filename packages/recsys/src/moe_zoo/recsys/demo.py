"""``moe-zoo recsys demo``: the shipped HoME on MovieLens-100K, in plain words."""

from __future__ import annotations

import time

import numpy as np

from moe_zoo.core import read_checkpoint_metadata
from moe_zoo.core.registry import get_model_spec
from moe_zoo.recsys.data import WIDEDEEP, builtin_dir, movielens
from moe_zoo.recsys.diagnostics import expert_health
from moe_zoo.recsys.predict import DEFAULT_MODEL, load
from moe_zoo.recsys.train import evaluate, predict_outputs


def run_demo() -> str:
    began = time.perf_counter()
    model = load(DEFAULT_MODEL)
    meta = read_checkpoint_metadata(get_model_spec(DEFAULT_MODEL).weights_path()).get("metadata", {})
    n_params = sum(p.numel() for p in model.parameters())
    lines = [f"HoME ({n_params:,} parameters): tasks {', '.join(model.config.tasks)}; meta-categories "
             f"{model.config.task_groups} (0 = click, 1 = interactions)",
             f"weights: `{meta.get('command', '?')}` (seed {meta.get('seed')}, best epoch {meta.get('best_epoch')})"]
    if builtin_dir(WIDEDEEP) is None:
        lines.append("built-in MovieLens data not on this machine (run `moe-zoo recsys data --fetch`); stopping here")
        return "\n".join(lines)
    splits = movielens()
    result = evaluate(model, splits.test)
    lines += ["", f"Test split ({len(splits.test):,} impressions, each user's latest 10%): "
              "how well are the users' own impressions ranked?"]
    lines += [f"  {task:>9}: AUC {m['auc']:.4f}  GAUC by user {m['gauc']:.4f}  logloss {m['logloss']:.4f}"
              for task, m in result.metrics.items()]
    health = expert_health(model, splits.test)
    experts = health.experts
    lines += ["", "Expert health (the paper's anomalies):",
              f"  zero activations per expert: {experts['zero_fraction'].max():.3f} at most (Swish after the norm; "
              "the ReLU baselines' numbers are in BENCHMARKS.md)",
              f"  output RMS per expert: {experts['rms'].min():.2f}..{experts['rms'].max():.2f}",
              "  weight each task gate gives its own experts: "
              + ", ".join(f"{t} {w:.2f}" for t, w in health.own_weight().items())]
    test = splits.test
    user = int(np.bincount(test.categorical[:, 0], weights=test.labels[:, 1]).argmax())  # most test likes
    rows = np.flatnonzero(test.categorical[:, 0] == user)
    scores = predict_outputs(model, test.subset(rows))
    best = rows[np.argsort(-scores[:, 1])[:5]]
    vocab = splits.schema.vocabularies[1]
    lines += ["", f"User {splits.schema.vocabularies[0][user - 1]}: 5 highest like-probabilities among their "
              f"{len(rows)} test impressions (item id, P(click), P(like), P(5 stars), liked it?):"]
    for r, s in zip(best, predict_outputs(model, test.subset(best))):
        item = vocab[test.categorical[r, 1] - 1] if test.categorical[r, 1] else "unknown"
        lines.append(f"  item {item:>5}: {s[0]:.2f} {s[1]:.2f} {s[2]:.2f}  {'yes' if test.labels[r, 1] else 'no'}")
    liked = test.labels[rows, 1].mean()
    lines.append(f"  (this user liked {liked:.0%} of their test impressions; "
                 f"{test.labels[best, 1].mean():.0%} of these five)")
    lines.append(f"\n({time.perf_counter() - began:.1f} s on CPU)")
    return "\n".join(lines)
