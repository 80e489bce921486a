"""``moe-zoo streams eval|bench|demo``."""

from __future__ import annotations

import argparse
import json

from moe_zoo.core import InputError
from moe_zoo.core.argtypes import non_negative_int, positive_int
from moe_zoo.core.reporting import write_text_atomic


def _eval(args: argparse.Namespace) -> int:
    from moe_zoo.streams.baselines import list_benchmark_models, make_model
    from moe_zoo.streams.data import STREAMS, get_stream_spec, open_stream
    from moe_zoo.streams.evaluate import prequential_side_by_side
    from moe_zoo.streams.plots import plot_accuracy_over_time

    models = args.model or ["driftmoe-plus"]
    for name in models:
        if name not in list_benchmark_models():
            raise InputError(f"--model {name!r}: known models are {', '.join(list_benchmark_models())}")
    builtin = args.stream in STREAMS
    length = args.length
    if builtin:
        spec = get_stream_spec(args.stream)
        length = length or min(spec.default_length, 20_000)
    window = args.window if args.window is not None else max(25, (length or 20_000) // 40)
    stream = open_stream(args.stream, length, args.seed, target=args.target)
    results = prequential_side_by_side({name: make_model(name, args.seed) for name in dict.fromkeys(models)}, stream,
                                       window=window, total=length, progress=not args.quiet, description=args.stream)
    print(f"stream {args.stream}: {results[models[0]].n:,} instances, seed {args.seed}, prequential")
    print(f"{'model':<15} {'accuracy':>8} {'kappa':>7} {'kappa_m':>8} {'kappa_t':>8} {'inst/s':>8} {'memory':>9} {'router':>7}")
    for name, r in results.items():
        share = "" if r.router_share is None else f"{100 * r.router_share:.1f}%"
        print(f"{name:<15} {100 * r.accuracy:7.2f}% {100 * r.kappa:6.1f}% {100 * r.kappa_m:7.1f}% {100 * r.kappa_t:7.1f}% "
              f"{r.throughput:8.0f} {r.peak_memory_bytes / 1024:7.0f}Ki {share:>7}")
    if args.json:
        payload = {"stream": args.stream, "seed": args.seed, "results": {m: r.to_dict() for m, r in results.items()}}
        print(f"wrote {write_text_atomic(args.json, json.dumps(payload, indent=1))}")
    if args.plot:
        drifts = get_stream_spec(args.stream).drift_positions(length) if builtin else []
        panel = {"title": args.stream, "curves": {m: r.curve for m, r in results.items()}, "window": window,
                 "drifts": drifts, "drift_width": 0}
        print(f"wrote {plot_accuracy_over_time([panel], args.plot, columns=1)}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from moe_zoo.streams.benchmark import main

    argv = ["--quick"] if args.quick else []
    argv += ["--workers", str(args.workers)] + (["--report-only"] if args.report_only else [])
    return main(argv)


def _demo(args: argparse.Namespace) -> int:
    from moe_zoo.streams.demo import run_demo

    print(run_demo(stream=args.stream, length=args.length, seed=args.seed))
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    ev = verbs.add_parser("eval", help="prequential accuracy, kappas, throughput, memory of models on a stream")
    ev.add_argument("--stream", required=True,
                    help="led_a led_g sea_a sea_g rbf_m rbf_f agr_a phishing image_segments bananas shuttle noaa, "
                         "or a path to an .arff/.csv stream file (Electricity, Airlines, Covertype, ...)")
    ev.add_argument("--model", nargs="+", default=None,
                    help="driftmoe-plus (default) driftmoe-data driftmoe-task arf srp levbag hat ht; several run "
                         "side by side")
    ev.add_argument("--length", type=positive_int, default=None, help="instances (built-in synthetic default: 20,000)")
    ev.add_argument("--target", default=None, help="file streams: the label column/attribute (default: the last)")
    ev.add_argument("--seed", type=non_negative_int, default=0)
    ev.add_argument("--window", type=positive_int, default=None, help="instances per point of the accuracy curve")
    ev.add_argument("--plot", default=None, help="write the accuracy-over-time plot (PNG)")
    ev.add_argument("--json", default=None, help="write all measured numbers (JSON)")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=_eval)
    bench = verbs.add_parser("bench", help="DriftMoE vs ARF/SRP/LevBag/HAT/HT over seeds; writes BENCHMARKS.md")
    bench.add_argument("--quick", action="store_true", help="smoke run on short streams (a few minutes)")
    bench.add_argument("--workers", type=positive_int, default=2)
    bench.add_argument("--report-only", action="store_true", help="re-render BENCHMARKS.md from the saved records")
    bench.set_defaults(func=_bench)
    demo = verbs.add_parser("demo", help="DriftMoE vs ARF and a Hoeffding tree on a short drifting SEA stream")
    demo.add_argument("--stream", default="sea_a")
    demo.add_argument("--length", type=positive_int, default=4000, help="instances (at least 100)")
    demo.add_argument("--seed", type=non_negative_int, default=0)
    demo.set_defaults(func=_demo)
