"""Feature extraction time with and without the repeated-frame column, side by side in one process.

Extracts the first 200 frames of vtest.avi (decoded at a 384-pixel long side, as predict does)
with both :class:`~moe_zoo.vad.features.FeatureConfig` settings, alternating, ``--repeats`` times,
on one torch thread; prints the seconds per run.

    OMP_NUM_THREADS=1 uv run --locked --no-sync python packages/vad/benchmarks/feature_speed.py
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from moe_zoo.core.video import iter_frames
from moe_zoo.vad.features import FeatureConfig, MobileNetMotionExtractor, extract_stream
from moe_zoo.vad.synthesis import OPENCV_DATA


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    frames = np.stack([f for _, f in zip(range(args.frames), iter_frames(OPENCV_DATA / "vtest.avi", max_side=384))])
    extractors = {flag: MobileNetMotionExtractor(FeatureConfig(repeat_feature=flag)) for flag in (False, True)}
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeats):
        for flag, extractor in extractors.items():
            started = time.perf_counter()
            extract_stream(iter(frames), extractor)
            seconds[flag].append(time.perf_counter() - started)
    for flag, values in seconds.items():
        print(f"repeat_feature={flag}: {np.mean(values):.2f} ± {np.std(values):.2f} s per {len(frames)} frames "
              f"({len(frames) / np.mean(values):.0f} frames/s)")
    print("load average", ", ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
