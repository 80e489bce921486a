"""Shared fixtures. Tests run on one torch thread: on a shared 2-core machine that is faster and
deterministic."""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def vtest_frames() -> tuple[np.ndarray, float]:
    """The first 48 frames of opencv-doc's vtest.avi at full size (768x576, 10 fps): real footage."""
    from moe_zoo.core.video import iter_frames, probe
    from moe_zoo.vad.synthesis import opencv_data_path

    path = opencv_data_path("vtest.avi")
    return np.stack(list(islice(iter_frames(path, max_side=None), 48))), probe(path).fps


@pytest.fixture(scope="session")
def short_clip(vtest_frames, tmp_path_factory) -> str:
    """The 48 real frames written as an H.264 .mp4 (4.8 s at 10 fps, 768x576)."""
    from moe_zoo.core.video import write_video

    frames, fps = vtest_frames
    return str(write_video(tmp_path_factory.mktemp("clips") / "vtest48.mp4", frames, fps))
