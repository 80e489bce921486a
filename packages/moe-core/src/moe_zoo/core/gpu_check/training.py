"""A few training steps of each domain package's default model through its public ``device=`` path.

Each recipe keeps the package's default architecture and shortens only the schedule; data are the
package's built-in or simulated data, except where those need a download (recsys' MovieLens: its
MMoE synthetic set instead) or a long build (vad's built-in clips: random features of the default
feature size instead). Each returns what it ran and where the trained parameters live.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn


def _devices(model: nn.Module) -> list[str]:
    return sorted({str(p.device) for p in model.parameters()})


def train_vad(device: str) -> dict[str, Any]:
    from moe_zoo import vad
    from moe_zoo.vad.data import NORMAL, FeatureSet, VideoFeatures

    defaults = vad.GSMoEConfig()
    rng = np.random.default_rng(0)
    videos = [VideoFeatures(f"{kind}_{i}", (), int(kind != NORMAL), (kind,),
                            array=rng.normal(size=(16, defaults.feature_dim)).astype(np.float32))
              for i, kind in enumerate([*defaults.class_names * 2, *[NORMAL] * 16])]
    config = vad.TrainConfig(encoder_steps=10, expert_steps=10, gate_steps=10, batch_size=8)
    result = vad.train(FeatureSet(videos), config, device=device, progress=False)
    return {"data": f"{len(videos)} random-feature videos, feature_dim {defaults.feature_dim}",
            "steps": "encoder 10, experts 10, gate 10", "param_devices": _devices(result.model),
            "final_losses": {k: v[-1] for k, v in result.history.items() if v}}


def train_finance(device: str) -> dict[str, Any]:
    from moe_zoo import finance

    result = finance.train("miga-conv", config=finance.TrainConfig(epochs=1, patience=1), device=device,
                           evaluate_test=False, progress=False)
    return {"data": "built-in S&P 500 2009-10 panel", "steps": "1 epoch", "param_devices": _devices(result.model),
            "best_valid_ic": result.fit.best_valid_ic}


def train_flidar(device: str) -> dict[str, Any]:
    from moe_zoo import flidar

    config = flidar.TrainConfig(n_train=2048, n_val=256, expert_steps=10, critic_steps=10, joint_steps=10,
                                kl_anneal_steps=10)
    result = flidar.train(config, device=device, progress=False)
    return {"data": "simulated histograms (2048 train, 256 val)", "steps": "experts 10, critic 10, joint 10",
            "param_devices": _devices(result.model), "metrics": result.metrics}


def train_recsys(device: str) -> dict[str, Any]:
    from moe_zoo import recsys

    result = recsys.train("synthetic", "home", config=recsys.TrainConfig(epochs=1), device=device)
    return {"data": "MMoE synthetic pair (MovieLens needs a download)", "steps": "1 epoch",
            "param_devices": _devices(result.model), "test_metrics": result.test.metrics}


def train_streams(device: str) -> dict[str, Any]:
    from moe_zoo import streams

    model = streams.DriftMoEClassifier(seed=0, device=device)
    result = streams.prequential(model, streams.make_stream("sea_a", length=2000, seed=0))
    return {"data": "SEA stream, 2000 instances", "note": "Hoeffding-tree experts run on CPU (river); "
            "device= moves only the neural router's mini-batch steps", "accuracy": result.accuracy}


RECIPES: dict[str, Callable[[str], dict[str, Any]]] = {
    "vad": train_vad, "finance": train_finance, "flidar": train_flidar, "recsys": train_recsys,
    "streams": train_streams}


def train_package(name: str, device: str) -> dict[str, Any]:
    """Run ``name``'s recipe (or its package's ``gpu_check.run``) on ``device``; adds the wall seconds and the
    peak CUDA memory."""
    started = time.perf_counter()
    recipe = RECIPES.get(name) or importlib.import_module(f"moe_zoo.{name}.gpu_check").run  # a package's own hook
    data = recipe(device)
    data["seconds"] = round(time.perf_counter() - started, 2)
    if torch.cuda.is_initialized():
        data["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return data
