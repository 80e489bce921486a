"""``moe-zoo aigi generate|train|eval|predict|bench|demo``."""

from __future__ import annotations

import argparse
import json

from moe_zoo.core.argtypes import non_negative_int, positive_float, positive_int

FAMILY_HELP = "fake families to train on, comma-separated (vae,gan,ddpm)"


def _families(text: str) -> tuple[str, ...]:
    from moe_zoo.aigi.generators import FAMILIES

    names = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [n for n in names if n not in FAMILIES]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(FAMILIES)}, got {text!r}")
    return names


def _generate(args: argparse.Namespace) -> int:
    import time

    from moe_zoo.aigi.builtin import build_builtin, write_demo_grid

    began = time.perf_counter()
    root = build_builtin(force=args.force)
    print(f"built-in set at {root} ({time.perf_counter() - began:.0f} s)")
    if args.demo_grid:
        print(f"wrote {write_demo_grid(args.demo_grid)}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from moe_zoo.aigi.builtin import load_builtin
    from moe_zoo.aigi.train import TrainConfig, train, training_subset
    from moe_zoo.core import create_model

    data = training_subset(load_builtin("train"), args.generators)
    config = TrainConfig(lr=args.lr, stage1_epochs=args.epochs, stage2_epochs=args.epochs, batch_size=args.batch_size,
                         phase_images=args.phase_images)
    model = create_model(args.model, **({"backbone_weights": args.backbone_weights} if args.backbone_weights else {}))
    result = train(model, data, config=config, seed=args.seed, device=args.device, save_to=args.out,
                   state_path=args.resume, force_restart=args.force_restart,
                   metadata={"data": f"built-in train split, fakes: {','.join(args.generators)} + ae_recon",
                             "command": "moe-zoo aigi train"})
    for record in result.history:
        print(f"{record['phase']}: {record['steps']} steps, loss {record['loss']:.4f}")
    print(f"trained in {result.seconds:.0f} s; saved {result.checkpoint}")
    return 0


def _print_metrics(name: str, m: dict) -> None:
    print(f"{name:<16} acc {m['acc']:.3f}  real {m['real_acc']:.3f}  fake {m['fake_acc']:.3f}  AP {m['ap']:.3f}  "
          f"(n={m['n']})")


def _eval(args: argparse.Namespace) -> int:
    from moe_zoo.aigi.predict import evaluate

    result = evaluate(args.model, args.data, layout=args.layout, device=args.device)
    _print_metrics("overall", result["overall"])
    for group in ("per_generator", "per_domain"):
        for name, m in result[group].items():
            _print_metrics(name, m)
    print("mean gates per domain:", json.dumps(result["gates_per_domain"]))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({k: v for k, v in result.items() if k != "probs"}, handle, indent=2)
        print(f"wrote {args.json}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from moe_zoo.aigi.predict import predict

    for path in args.paths:
        results = predict(path, args.model, device=args.device)
        for r in results if isinstance(results, list) else [results]:
            experts = ", ".join(f"{n} {g:.2f}" for n, g in r.experts)
            print(f"{r.prob_fake:.3f}  {'AI-generated' if r.is_fake else 'real':<12}  [{experts}]  {r.source}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from moe_zoo.aigi.benchmark import main

    argv = ["--quick"] if args.quick else []
    return main(argv + ["--seeds", str(args.seeds)] + (["--out", args.out] if args.out else []))


def _demo(args: argparse.Namespace) -> int:
    from moe_zoo.aigi.demo import run_demo

    print(run_demo())
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    gen = verbs.add_parser("generate", help="build the built-in real/fake set (trains the small generators; cached)")
    gen.add_argument("--force", action="store_true", help="rebuild even when cached")
    gen.add_argument("--demo-grid", default=None, help="also write the demo's grid of test fakes (PNG) here")
    gen.set_defaults(func=_generate)
    tr = verbs.add_parser("train", help="two-stage OmniAID training on the built-in set; writes a checkpoint")
    tr.add_argument("--model", default="omniaid-mnv2", help="registry name (omniaid-mnv2, omniaid-clip, omniaid-vit)")
    tr.add_argument("--backbone-weights", default="", help="local weights for a timm / transformers backbone")
    tr.add_argument("--generators", type=_families, default=("vae", "gan", "ddpm"), help=FAMILY_HELP)
    tr.add_argument("--epochs", type=non_negative_int, default=2, help="epochs per phase (each stage)")
    tr.add_argument("--lr", type=positive_float, default=1e-3)
    tr.add_argument("--batch-size", type=positive_int, default=32)
    tr.add_argument("--phase-images", type=non_negative_int, default=800,
                    help="at most this many images per phase and epoch (0 = all)")
    tr.add_argument("--seed", type=non_negative_int, default=0)
    tr.add_argument("--device", default=None)
    tr.add_argument("--out", default="omniaid.safetensors")
    tr.add_argument("--resume", default=None, help="training-state file: resume from it, updated after each phase")
    tr.add_argument("--force-restart", action="store_true", help="with --resume: discard a state of other settings")
    tr.set_defaults(func=_train)
    ev = verbs.add_parser("eval", help="accuracy / AP per generator and domain")
    ev.add_argument("--model", default="omniaid-mnv2", help="registry name or .safetensors checkpoint")
    ev.add_argument("--data", default="builtin", help="'builtin' (test split) or a labelled folder")
    ev.add_argument("--layout", default="auto", choices=("auto", "genimage", "chameleon", "binary"))
    ev.add_argument("--device", default=None)
    ev.add_argument("--json", default=None, help="write the metrics as JSON")
    ev.set_defaults(func=_eval)
    pr = verbs.add_parser("predict", help="probability that images are AI-generated, and the experts used")
    pr.add_argument("paths", nargs="+", help="image files or folders")
    pr.add_argument("--model", default="omniaid-mnv2")
    pr.add_argument("--device", default=None)
    pr.set_defaults(func=_predict)
    be = verbs.add_parser("bench", help="cross-generator benchmark vs baselines; writes BENCHMARKS.md")
    be.add_argument("--quick", action="store_true", help="one small seed: a smoke run")
    be.add_argument("--seeds", type=positive_int, default=3)
    be.add_argument("--out", default=None, help="output folder (default: the package folder when in the repo)")
    be.set_defaults(func=_bench)
    de = verbs.add_parser("demo", help="the shipped detector on real photos and built-in fakes")
    de.set_defaults(func=_demo)
