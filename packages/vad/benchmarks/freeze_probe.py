"""Where a held-out fold model puts its score on ``freeze`` clips (the tampering class it misses).

For the GS-MoE fold model that left ``--held`` out (trained by ``held_out_cameras.py``), prints per
snippet: the repeated-frame share (the feature's last column), the event labels, the task encoder's
coarse score and the final score, on the ``freeze`` training clips of ``--train-camera`` and on the
held-out camera's ``freeze`` test clips.

    OMP_NUM_THREADS=1 uv run --locked --no-sync python packages/vad/benchmarks/freeze_probe.py --held bikes --seed 0
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from held_out_cameras import MODELS

from moe_zoo.core import load_model
from moe_zoo.vad.cameras import build_camera, camera_assets


def _rows(model, features: np.ndarray, frame_labels: np.ndarray, snippet_len: int) -> str:
    with torch.inference_mode():
        out = model(torch.as_tensor(features, dtype=torch.float32)[None])
    events = np.pad(frame_labels, (0, (-len(frame_labels)) % snippet_len)).reshape(-1, snippet_len).max(1)
    return "\n".join(f"  {name:<9}" + " ".join(f"{v:5.2f}" for v in values) for name, values in (
        ("repeated", features[:, -1]), ("event", events), ("coarse", out.coarse[0].numpy()),
        ("score", out.scores[0].numpy())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--held", default="bikes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-camera", default="vtest")
    parser.add_argument("--suffix", default="", help="model name suffix of an ablation, e.g. -encoder-tgs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(MODELS / f"seed{args.seed}-{args.held}-gsmoe{args.suffix}.safetensors").eval()
    snippet_len = model.config.features.snippet_len
    root = build_camera(args.train_camera)
    for record in json.loads((root / "meta.json").read_text())["train"]:
        if record["kind"] == "freeze":
            print(f"training clip {record['name']}:")
            print(_rows(model, np.load(root / "train" / f"{record['name']}.npy"), np.asarray(record["labels"]), snippet_len))
    for kind, features, labels in camera_assets(args.held).tests:
        if kind == "freeze":
            print(f"held-out {args.held} freeze test clip:")
            print(_rows(model, features, labels, snippet_len))


if __name__ == "__main__":
    main()
