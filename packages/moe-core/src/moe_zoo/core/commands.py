"""``moe-zoo core demo|bench``: the core package's CLI plug-in."""

from __future__ import annotations

import argparse

from moe_zoo.core.argtypes import non_negative_int, positive_int


def _demo(args: argparse.Namespace) -> int:
    from moe_zoo.core.demo import format_report, run_demo

    report = run_demo(steps=args.steps, n_experts=args.experts, top_k=args.top_k, seed=args.seed,
                      backend=args.backend)
    print(format_report(report))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from moe_zoo.core.benchmark import main as bench_main

    return bench_main(["--quick"] if args.quick else [])


def configure(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    demo = verbs.add_parser("demo", help="train a small MoE on a toy mixture-of-regimes task")
    demo.add_argument("--steps", type=positive_int, default=300)
    demo.add_argument("--experts", type=positive_int, default=8)
    demo.add_argument("--top-k", type=positive_int, default=2)
    demo.add_argument("--seed", type=non_negative_int, default=0)
    demo.add_argument("--backend", default="auto", help="eager | grouped | segmented | triton | auto")
    demo.set_defaults(func=_demo)
    bench = verbs.add_parser("bench", help="MoE layer speed vs dense FFN and peers (writes BENCHMARKS.md)")
    bench.add_argument("--quick", action="store_true", help="fewer repeats, smaller shapes")
    bench.set_defaults(func=_bench)
