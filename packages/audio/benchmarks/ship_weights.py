"""Copy the benchmark's seed-0 curriculum checkpoint (records/) into the package's shipped weights,
floating-point tensors stored in float16 (a few MB).

    uv run --locked --no-sync python packages/audio/benchmarks/ship_weights.py
"""

import sys
from pathlib import Path

from moe_zoo.audio.model import WEIGHTS
from moe_zoo.core import load_model, save_checkpoint
from moe_zoo.core.checkpoint import read_checkpoint_metadata

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "records" / "curriculum-topp-moe-seed0.safetensors"
TARGET = HERE.parent / "src" / "moe_zoo" / "audio" / WEIGHTS.split(":", 1)[1]


def main() -> int:
    model = load_model(SOURCE)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    source = read_checkpoint_metadata(SOURCE).get("metadata", {})
    save_checkpoint(TARGET, state, {"trained_by": source, "source": SOURCE.name, "dtype": "float16"},
                    model_name="unimoe-audio-tiny", config=model.config)
    print(f"wrote {TARGET} ({TARGET.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
