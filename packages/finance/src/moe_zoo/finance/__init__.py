"""MIGA: mixture of style experts with inner group attention for stock prediction, with a backtest.

    from moe_zoo import finance
    panel = finance.load_sp500_2009()                 # built-in real data (524 stocks, 2009-10)
    scores = finance.predict("miga-conv", panel)      # Series indexed by (datetime, instrument)
    result = finance.backtest(scores, panel)          # Qlib TopK-Dropout vs the equal-weight universe
"""

from moe_zoo.finance.backtest import BacktestConfig, BacktestResult, backtest
from moe_zoo.finance.data import (
    load_sp20_long,
    load_sp500_2009,
    read_ohlcv_csv,
    read_qlib,
    sp500_sectors,
    write_qlib,
)
from moe_zoo.finance.dataset import (
    DataConfig,
    Split,
    build_feature_panel,
    compute_factors,
    compute_labels,
    walk_forward_splits,
)
from moe_zoo.finance.metrics import signal_metrics
from moe_zoo.finance.model import MIGA, Forecaster, ForecasterConfig, MIGAConfig
from moe_zoo.finance.predict import load, predict
from moe_zoo.finance.train import TrainConfig, default_split, evaluate, fit, train

__all__ = [
    "MIGA", "BacktestConfig", "BacktestResult", "DataConfig", "Forecaster", "ForecasterConfig", "MIGAConfig",
    "Split", "TrainConfig", "backtest", "build_feature_panel", "compute_factors", "compute_labels",
    "default_split", "evaluate", "fit", "load", "load_sp20_long", "load_sp500_2009", "predict", "read_ohlcv_csv",
    "read_qlib", "signal_metrics", "sp500_sectors", "train", "walk_forward_splits", "write_qlib",
]
