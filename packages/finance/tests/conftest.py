"""Shared fixtures: small synthetic OHLCV panels and the built-in S&P data (computed once)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

# Small shapes: one thread is faster than two, and far faster on a machine shared with other jobs
# (two OpenMP threads that wait for each other on busy cores stall every tiny op).
torch.set_num_threads(1)


def make_panel(n_days: int = 80, n_stocks: int = 4, seed: int = 0, start: str = "2020-01-01") -> pd.DataFrame:
    """A random-walk OHLCV panel with consistent high/low, indexed by (datetime, instrument)."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range(start, periods=n_days)
    frames = []
    for k in range(n_stocks):
        close = 20.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n_days)))
        opening = close * np.exp(rng.normal(0, 0.01, n_days))
        high = np.maximum(opening, close) * (1 + rng.uniform(0, 0.02, n_days))
        low = np.minimum(opening, close) * (1 - rng.uniform(0, 0.02, n_days))
        volume = rng.integers(1_000, 50_000, n_days).astype(float)
        frames.append(pd.DataFrame({"datetime": days, "instrument": f"S{k:02d}", "open": opening, "high": high,
                                    "low": low, "close": close, "volume": volume}))
    return pd.concat(frames).set_index(["datetime", "instrument"]).sort_index()


@pytest.fixture
def panel() -> pd.DataFrame:
    return make_panel()


@pytest.fixture(scope="session")
def sp500():
    from moe_zoo.finance.data import load_sp500_2009

    return load_sp500_2009()


@pytest.fixture(scope="session")
def sp500_features(sp500):
    from moe_zoo.finance.dataset import build_feature_panel

    return build_feature_panel(sp500)


@pytest.fixture
def panel_factory():
    """``make_panel`` itself (test modules cannot import conftest under --import-mode=importlib)."""
    return make_panel
