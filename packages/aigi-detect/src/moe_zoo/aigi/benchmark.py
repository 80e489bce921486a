"""Cross-generator benchmark (``make bench-aigi-detect``, ``moe-zoo aigi bench``).

Protocol (CNNSpot's "train on one GAN, test on unseen generators", with the paper's metrics):
every method trains on the built-in train split's real crops, the fakes of ONE family
(``--train-family``, default ``gan``) and the autoencoder reconstructions; it is tested on the
test split (held-out photographs, generators' test seeds) against each family, the unseen ones
being the measure. Methods: OmniAID; OmniAID with the official sum that counts the residual chunk
once per applied expert (``chunk_once=False``); OmniAID without the artifact expert; a single always-on
low-rank adapter (rank 8 = OmniAID's active rank, no router), trained on as many images as
OmniAID's whole run or for one epoch (as each OmniAID phase); CNNSpot-, UnivFD- and NPR-style
baselines (:mod:`moe_zoo.aigi.baselines`). CNNSpot- and NPR-style see the same number of training
images as OmniAID's run. Each (method, seed) result is stored as JSON under
``results/`` as it finishes, so an interrupted run resumes and ``--report-only`` re-renders.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from moe_zoo.aigi.baselines import CNNSpot, NPRDetector, UnivFD, classifier_scores, fit_classifier
from moe_zoo.aigi.builtin import build_builtin, load_builtin
from moe_zoo.aigi.generators import FAMILIES
from moe_zoo.aigi.metrics import detection_metrics, per_domain, per_generator
from moe_zoo.aigi.model import OmniAID, OmniAIDConfig
from moe_zoo.aigi.predict import score
from moe_zoo.aigi.train import TrainConfig, train, training_subset
from moe_zoo.core import get_logger
from moe_zoo.core.reporting import (
    format_mean_std,
    hardware_summary,
    markdown_table,
    write_benchmarks_md,
)

_log = get_logger(__name__)
METHODS = ("omniaid", "omniaid_sum", "no_artifact", "single_adapter", "single_adapter_epoch", "cnnspot", "univfd",
           "npr")
LABELS = {"omniaid": "OmniAID", "omniaid_sum": "OmniAID, official sum (chunk counted per expert)",
          "no_artifact": "OmniAID w/o artifact expert", "single_adapter": "single adapter",
          "single_adapter_epoch": "single adapter (1 epoch)",
          "cnnspot": "CNNSpot-style", "univfd": "UnivFD-style", "npr": "NPR-style"}
PACKAGE = Path(__file__).resolve().parents[3]


def _train_config(quick: bool, stage2_epochs: int = 1, phase_images: int = 0) -> TrainConfig:
    """One epoch per stage-1 phase (the official scripts' ``--epochs 1``), ``stage2_epochs`` of stage
    2; ``phase_images`` caps the images per phase epoch (0: whole epochs; quick: 128)."""
    return TrainConfig(stage1_epochs=1, stage2_epochs=stage2_epochs, phase_images=128 if quick else phase_images)


def _single_adapter_config(config: TrainConfig, train_set, budget: int) -> TrainConfig:
    """The single adapter's one phase: as many class-balanced images as ``budget`` (OmniAID's whole
    run), as whole epochs over all training images, the last ones capped to fit."""
    epoch = 2 * min(int((train_set.labels == 0).sum()), int((train_set.labels == 1).sum()))
    epochs = max(1, -(-budget // epoch))
    return config.replace(stage1_epochs=epochs, phase_images=2 * -(-budget // (2 * epochs)))


def _omniaid_images(history: list[dict], batch: int) -> int:
    return sum(r["steps"] for r in history) * batch


def run_method(method: str, seed: int, train_set, test_set, config: TrainConfig, budget: int,
               size: int = 64) -> dict:
    """Train ``method`` with ``seed`` at input size ``size``; return its test probabilities, gates
    and timings."""
    began = time.perf_counter()
    torch.manual_seed(seed)
    gates = None
    history: list[dict] = []
    if method in ("omniaid", "omniaid_sum", "no_artifact", "single_adapter", "single_adapter_epoch"):
        single = {"domains": (), "rank": 8}
        overrides = {"omniaid_sum": {"chunk_once": False}, "no_artifact": {"artifact_expert": False},
                     "single_adapter": single, "single_adapter_epoch": single}
        model = OmniAID(OmniAIDConfig(image_size=size).replace(**overrides.get(method, {})))
        run_config = config
        if method == "single_adapter":      # one phase: as many images as OmniAID's whole run
            run_config = _single_adapter_config(config, train_set, budget)
        elif method == "single_adapter_epoch":     # one epoch over everything, as each OmniAID phase
            run_config = config.replace(stage1_epochs=1)
        history = train(model, train_set, config=run_config, seed=seed, device="cpu").history
        probs, gates = score(model, test_set.images)
    elif method == "univfd":
        probe = UnivFD(size).fit(train_set, seed)
        probs = probe.scores(test_set.images)
    else:
        module = CNNSpot() if method == "cnnspot" else NPRDetector()
        lr = 1e-4 if method == "cnnspot" else 1e-3
        fit_classifier(module, [p for p in module.parameters() if p.requires_grad], train_set, images=budget,
                       size=size, lr=lr, seed=seed)
        probs = classifier_scores(module, test_set.images, size)
    return {"method": method, "seed": seed, "probs": probs.tolist(),
            "gates": None if gates is None else gates.tolist(), "history": history,
            "seconds": round(time.perf_counter() - began, 1)}


def _speed() -> dict:
    """Predict throughput of the shipped weights at 224 px, 1 and 2 threads (:mod:`moe_zoo.aigi.speed`)."""
    from moe_zoo.aigi.speed import measure
    from moe_zoo.core import create_model

    return measure(create_model("omniaid-mnv2", pretrained=True, image_size=224), (1, 2))


def _mean_std(values) -> str:
    return format_mean_std(values, digits=3)


def _summaries(records: list[dict], test_set, train_family: str) -> dict:
    out = {}
    for record in records:
        probs = np.asarray(record["probs"])
        gens = per_generator(test_set.labels, probs, test_set.generators)
        doms = per_domain(test_set.labels, probs, test_set.domains, test_set.domain_names)
        unseen = [g for g in gens if g != train_family]
        out.setdefault(record["method"], []).append({
            "overall": detection_metrics(test_set.labels, probs), "gens": gens, "domains": doms,
            "unseen_acc": float(np.mean([gens[g]["acc"] for g in unseen])),
            "unseen_ap": float(np.mean([gens[g]["ap"] for g in unseen])), "seconds": record["seconds"]})
    return out


def _example_grid(records: list[dict], test_set, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from moe_zoo.core.reporting import save_figure

    probs = np.asarray(next(r for r in records if r["method"] == "omniaid" and r["seed"] == 0)["probs"])
    rng = np.random.default_rng(0)
    groups = [("real", test_set.labels == 0)] + [(g, test_set.generators == g) for g in FAMILIES]
    fig, axes = plt.subplots(len(groups), 6, figsize=(7.5, 1.45 * len(groups)))
    for row, (name, mask) in enumerate(groups):
        for col, i in enumerate(rng.choice(np.flatnonzero(mask), 6, replace=False)):
            ax = axes[row, col]
            ax.imshow(test_set.images[i], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"P(AI) {probs[i]:.2f}", fontsize=7, color="red" if (probs[i] >= 0.5) != (name != "real")
                         else "black")
            if col == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.suptitle("Built-in test images (32x32) with OmniAID's P(AI-generated), seed 0; red = wrong", fontsize=8)
    return save_figure(fig, path)


def report(out: Path, records: list[dict], test_set, train_family: str, seeds: list[int], extra: dict) -> Path:
    summary = _summaries(records, test_set, train_family)
    methods = [m for m in METHODS if m in summary]
    unseen = [g for g in FAMILIES if g != train_family]
    rows = []
    for m in methods:
        runs = summary[m]
        rows.append([LABELS[m], _mean_std([r["unseen_acc"] for r in runs]), _mean_std([r["unseen_ap"] for r in runs])]
                    + [_mean_std([r["gens"][g]["acc"] for r in runs]) for g in FAMILIES]
                    + [_mean_std([r["overall"]["real_acc"] for r in runs]), f"{np.mean([r['seconds'] for r in runs]):.0f}",
                       str(len(runs))])
    main_table = markdown_table(["method", "unseen acc", "unseen AP"] + [f"acc {g}" + (" (seen)" if g == train_family
                                                                                     else "") for g in FAMILIES]
                                + ["real acc", "train+test s", "seeds"], rows)
    gen_rows = [[LABELS[m], g] + [_mean_std([r["gens"][g][k] for r in summary[m]])
                                  for k in ("acc", "real_acc", "fake_acc", "ap")]
                for m in methods for g in FAMILIES]
    dom_rows = [[LABELS[m], d] + [_mean_std([r["domains"][d][k] for r in summary[m]])
                                  for k in ("acc", "real_acc", "fake_acc", "ap")]
                for m in methods for d in test_set.domain_names]
    gates = [np.asarray(r["gates"]) for r in records if r["method"] == "omniaid" and r["gates"] is not None]
    expert_names = [*test_set.domain_names, "artifact"]
    gate_rows = [[d] + [_mean_std([g[test_set.domains == i, e].mean() for g in gates]) for e in range(len(expert_names))]
                 for i, d in enumerate(test_set.domain_names)]
    figure = _example_grid(records, test_set, out / "benchmarks" / "figures" / "examples.png") if gates else None
    best = max(methods, key=lambda m: np.mean([r["unseen_acc"] for r in summary[m]]))
    sections = [
        ("Cross-generator generalisation (built-in set)",
         f"Trained on real crops vs **{train_family}** fakes (+ autoencoder reconstructions); tested on the held-out "
         f"test split. 'unseen' = mean over {', '.join(unseen)}. Accuracy at threshold 0.5, AP with fake as the "
         f"positive class; mean ± std over seeds {', '.join(map(str, seeds))}. Best on unseen accuracy: "
         f"{LABELS[best]}.\n\n" + main_table),
        ("Per generator", markdown_table(["method", "generator", "acc", "real acc", "fake acc", "AP"], gen_rows)),
        ("Per semantic domain (all test generators)",
         markdown_table(["method", "domain", "acc", "real acc", "fake acc", "AP"], dom_rows)),
        ("OmniAID gate weights per domain (test images, mean over seeds)",
         "Mean gate of each expert over the test images of each domain (top-1 router: the fraction of images "
         "routed to the expert; the artifact expert is always 1).\n\n"
         + markdown_table(["domain", *expert_names], gate_rows)),
    ]
    if figure is not None:
        sections.append(("Example images", f"![examples]({figure.relative_to(out).as_posix()})"))
    if "text" in extra:
        sections.append(("Speed and memory", extra["text"]))
    notes = extra.get("scale", "")
    return write_benchmarks_md(out / "BENCHMARKS.md", "aigi-detect benchmark (OmniAID)",
                               command=extra.get("command", "make bench-aigi-detect"), sections=sections,
                               notes=notes, seeds=seeds, hardware=extra.get("hardware"))


def speed_text(speed: dict, generation_seconds) -> str:
    """The BENCHMARKS.md paragraph for a :func:`moe_zoo.aigi.speed.measure` record."""
    rows = [[f"{threads}", name, f"{rate:.1f}"] for threads, row in speed["threads"].items() for name, rate in row.items()]
    before, after = speed["load_before"], speed["load_after"]
    return (f"Predict throughput at {speed['size']}x{speed['size']}, batch {speed['batch']}, same process, variants "
            "interleaved, median of 3 (`benchmarks/speed.py`; the fast path is what `aigi.predict` / `score` run: "
            "router-grouped merged expert weights, folded batch norms, channels-last; two backbone passes).\n\n"
            + markdown_table(["torch threads", "variant", "images/s"], rows)
            + f"\n\nLoad average (1/5/15 min) before {before[0]:.1f} / {before[1]:.1f} / {before[2]:.1f}, after "
            f"{after[0]:.1f} / {after[1]:.1f} / {after[2]:.1f}: the 2 cores were shared with other jobs. Built-in set "
            f"generation: {generation_seconds} s.")


def _speed_text(builtin_root: Path) -> str:
    meta = json.loads((builtin_root / "complete.json").read_text())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    return (speed_text(_speed(), meta.get("seconds", "not recorded"))
            + f" Peak resident memory of this benchmark process: {peak:.2f} GB.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train-family", default="gan", choices=FAMILIES)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--quick", action="store_true", help="128 images per phase: a smoke run")
    parser.add_argument("--stage2-epochs", type=int, default=1, help="epochs of stage 2 (router + head)")
    parser.add_argument("--phase-images", type=int, default=0,
                        help="cap on the images of each phase's epoch (0: whole epochs)")
    parser.add_argument("--image-size", type=int, default=64, help="model input size (the 32 px images upsampled)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--out", default=None, help="folder for BENCHMARKS.md and results/ (default: the package)")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    argv_list = [a for a in argv if a != "--report-only"]   # the run's command
    torch.set_num_threads(1)
    out = Path(args.out) if args.out else (PACKAGE if (PACKAGE / "pyproject.toml").is_file() else Path.cwd())
    results = out / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    root = build_builtin()
    train_set = training_subset(load_builtin("train"), [args.train_family])
    test_set = load_builtin("test")
    test_set = test_set.subset(test_set.generators != "ae_recon")
    config = _train_config(args.quick, args.stage2_epochs, args.phase_images)
    seeds = list(range(args.seeds))
    records = []
    budget = None
    for seed in seeds:
        for method in args.methods:
            path = results / f"{method}-seed{seed}{'-quick' if args.quick else ''}.json"
            if path.is_file():
                record = json.loads(path.read_text())
            elif args.report_only:
                continue
            else:
                _log.info("benchmark: %s seed %d", method, seed)
                record = run_method(method, seed, train_set, test_set, config, budget or 0, args.image_size)
                path.write_text(json.dumps(record))
            if method == "omniaid":
                budget = _omniaid_images(record["history"], config.batch_size)
            records.append(record)
    cap = f"at most {config.phase_images} images per phase" if config.phase_images else "whole class-balanced epochs"
    extra = {"scale": (f"Scale: built-in set at 32x32, model input {args.image_size}x{args.image_size} ({len(train_set)} "
                       f"training images incl. reconstructions, {len(test_set)} test images); one epoch per stage-1 "
                       f"phase, {config.stage2_epochs} epoch(s) of stage 2, {cap}; the single adapter and the "
                       "gradient-trained baselines see as many training images as OmniAID's run. Timings on a shared, "
                       "loaded 2-core machine."),
             "command": ("python packages/aigi-detect/benchmarks/run.py " + " ".join(argv_list)) if argv_list
             else "make bench-aigi-detect",
             "hardware": hardware_summary()}
    if not args.no_speed and not args.report_only:
        extra["text"] = _speed_text(root)
        (results / "speed.json").write_text(json.dumps({"text": extra["text"]}))
    elif (results / "speed.json").is_file():
        extra["text"] = json.loads((results / "speed.json").read_text())["text"]
    print(report(out, records, test_set, args.train_family, seeds, extra))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
