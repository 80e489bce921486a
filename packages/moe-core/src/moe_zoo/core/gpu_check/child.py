"""Entry point of one gpu-check section in its own process: ``python -m moe_zoo.core.gpu_check.child
<section> <data.json> <repeats>``. The section writes what it measured to ``data.json`` (the
benchmark after every shape, so a cut run keeps the shapes it finished)."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import sys
from pathlib import Path
from typing import Any

import torch

from moe_zoo.core.atomic import atomic_path
from moe_zoo.core.gpu_check.runner import DOMAIN_PACKAGES


def write_data(path: Path, data: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))


def environment() -> dict[str, Any]:
    """Versions, the GPU and which moe-zoo packages are installed."""
    versions = {}
    for dist in ("torch", "triton", "transformers", "safetensors", "river", "moe-zoo-core",
                 *(f"moe-zoo-{p}" for p in DOMAIN_PACKAGES)):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    props = torch.cuda.get_device_properties(0)
    return {"python": platform.python_version(), "versions": versions, "cuda": torch.version.cuda,
            "gpu": props.name, "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1), "gpus": torch.cuda.device_count()}


def main(argv: list[str]) -> int:
    name, path, repeats = argv[0], Path(argv[1]), int(argv[2])
    if name == "env":
        write_data(path, environment())
    elif name == "bench":
        from moe_zoo.core.gpu_check.gpu_bench import run_benchmark

        run_benchmark(repeats, lambda data: write_data(path, data))
    elif name.startswith("train:"):
        from moe_zoo.core.gpu_check.training import train_package

        write_data(path, train_package(name.partition(":")[2], "cuda"))
    else:
        raise SystemExit(f"unknown section {name!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
