"""Predict throughput at 224x224 (``benchmarks/speed.py``): images per second of the shipped
detector's fast path (router-grouped merged weights, folded batch norms, channels-last:
:func:`~moe_zoo.aigi.predict.score`), of the per-image expert path it replaced (low-rank
convolutions for every image, unfolded), of the plain MobileNetV2 trunk (one pass; OmniAID needs
two), and of :func:`~moe_zoo.aigi.predict.predict` on a folder of JPEG photographs (decoding and
resizing included). All variants run interleaved in one process, median of ``repeats``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from moe_zoo.aigi.inference import inference_copy
from moe_zoo.aigi.model import OmniAID


def expert_path(model: OmniAID, images: torch.Tensor) -> torch.Tensor:
    """The detector's logits through the per-image expert path: ``y = x W_main^T + sum_k g_k ((x
    V_k^T) * S_k) U_k^T + b`` for every image, no grouping, no folding (the reference the fast
    path is tested against)."""
    x = model.normalise(images)
    gates, _ = model.route(x)
    return model.head(model._adapted_pass(x, gates))


def _photo_folder(folder: Path, count: int, side: int) -> Path:
    """``count`` JPEG crops (``side`` px) of scikit-image's photographs."""
    import skimage.data

    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    rng = np.random.default_rng(0)
    for i in range(count):
        photo = photos[i % len(photos)]
        top, left = (int(rng.integers(0, max(dim - side, 0) + 1)) for dim in photo.shape[:2])
        crop = Image.fromarray(photo[top:top + side, left:left + side]).resize((side, side))
        crop.save(folder / f"photo{i:03d}.jpg", quality=90)
    return folder


def throughput(model: OmniAID, threads: int, *, batch: int = 32, repeats: int = 3, files: int = 64,
               file_side: int = 384) -> dict[str, float]:
    """Images per second of each variant (see the module docstring) with ``threads`` torch threads,
    at the model's ``config.image_size``."""
    from moe_zoo.aigi.predict import predict
    from moe_zoo.core.backbones import load_mobilenet_v2

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = model.eval()
        fast = inference_copy(model)
        trunk = load_mobilenet_v2(trunk_only=True, frozen=True).eval()
        size = model.config.image_size
        x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
        x_cl = x.contiguous(memory_format=torch.channels_last)
        with tempfile.TemporaryDirectory() as tmp:
            folder = _photo_folder(Path(tmp), files, file_side)
            variants = {"OmniAID fast path": (lambda: fast(x_cl), batch),
                        "OmniAID per-image expert path": (lambda: expert_path(model, x), batch),
                        "MobileNetV2 trunk, one pass (unfolded)": (lambda: trunk(x), batch),
                        f"predict() on {files} JPEG files ({file_side} px)": (lambda: predict(folder, model), files)}
            times: dict[str, list[float]] = {name: [] for name in variants}
            with torch.inference_mode():
                for fn, _ in variants.values():
                    fn()                                   # warm-up
                for _ in range(repeats):
                    for name, (fn, _) in variants.items():
                        began = time.perf_counter()
                        fn()
                        times[name].append(time.perf_counter() - began)
    finally:
        torch.set_num_threads(previous)
    return {name: count / float(np.median(times[name])) for name, (_, count) in variants.items()}


def measure(model: OmniAID, threads: tuple[int, ...] = (1, 2), **kwargs) -> dict:
    """:func:`throughput` for each thread count, with the load averages around it."""
    record = {"size": model.config.image_size, "batch": kwargs.get("batch", 32), "load_before": os.getloadavg(),
              "threads": {}}
    for n in threads:
        record["threads"][str(n)] = throughput(model, n, **kwargs)
    record["load_after"] = os.getloadavg()
    return record
