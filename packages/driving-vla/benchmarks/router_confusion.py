"""The camera router's confusion matrix on the demonstration frames (teacher labels), for one model.

Shows what the focal loss's alpha (normalised inverse class counts, as in the authors' code) does:
it trains a class-balanced router, so the majority label (``back``) is not always chosen.

    python packages/driving-vla/benchmarks/router_confusion.py [--model drivemoe] [--episodes DIR]

Writes ``benchmarks/router_confusion.json`` (counts, alpha, confusion, accuracy, balanced recall).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from moe_zoo.driving.api import load
from moe_zoo.driving.cameras import ROUTED_CAMERAS
from moe_zoo.driving.data import load_feature_set
from moe_zoo.driving.features import cache_dir
from moe_zoo.driving.losses import class_alpha
from moe_zoo.driving.model import N_ROUTED


def confusion(model, data) -> dict:
    """Rows: label, columns: the router's argmax, over every frame of ``data`` (reduced features)."""
    with torch.no_grad():
        batch = data.batch(torch.arange(len(data)))
        logits = model.route_cameras(model.camera_tokens(batch["features"][:, 0], 0), batch["command_point"])
    labels, pred = data.arrays["camera"].long(), logits.argmax(-1)
    matrix = torch.zeros(N_ROUTED, N_ROUTED, dtype=torch.long)
    matrix.index_put_((labels, pred), torch.ones_like(labels), accumulate=True)
    counts = matrix.sum(1)
    recall = matrix.diag().float() / counts.clamp(min=1)
    return {"views": list(ROUTED_CAMERAS), "label_counts": counts.tolist(),
            "alpha": [round(a, 4) for a in class_alpha(labels, N_ROUTED).tolist()],
            "confusion": matrix.tolist(), "accuracy": (pred == labels).float().mean().item(),
            "majority_rate": (counts.max() / counts.sum()).item(),
            "balanced_recall": recall[counts > 0].mean().item(), "recall": recall.tolist()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="drivemoe", help="registry name with weights or a checkpoint path")
    parser.add_argument("--episodes", default=str(cache_dir() / "episodes" / "bench-8"))
    parser.add_argument("--out", default=str(Path(__file__).with_name("router_confusion.json")))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = load(args.model)
    data = load_feature_set(args.episodes, progress=False).with_features(model.reduce)
    result = {"model": args.model, "episodes": os.path.basename(os.path.normpath(args.episodes)),
              "frames": len(data), **confusion(model, data)}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "confusion"}, indent=1))
    for view, row in zip(result["views"], result["confusion"]):
        print(f"{view:>12}: {row}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
