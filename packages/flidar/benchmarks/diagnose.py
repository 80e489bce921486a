"""Why EvidenceMoE and the single CNN tie: capacity, ablations, the Bayes floor, harder regimes.

Subcommands (all on this package's simulator; every number is printed as one JSON line)::

    python packages/flidar/benchmarks/diagnose.py capacity        # parameters and FLOPs per histogram
    python packages/flidar/benchmarks/diagnose.py ablate          # shipped weights: critics / decider removed
    python packages/flidar/benchmarks/diagnose.py floor --n 300   # posterior-mean (MMSE) floor vs the networks
    python packages/flidar/benchmarks/diagnose.py regimes --regimes biexp hard --seeds 0 1 2 > runs.jsonl
    python packages/flidar/benchmarks/diagnose.py pairs runs.jsonl   # paired EvidenceMoE - CNN per regime

``floor``: the Bayes-optimal estimate under squared error is the posterior mean
``E[theta | h] = int theta p(h | theta) p(theta) dtheta / int p(h | theta) p(theta) dtheta`` with the
Poisson likelihood ``ln p(h | theta) = sum_k h_k ln m_k - m_k``, ``m_k = N_s s_k(theta) + N_b / T``
of the exact forward model (:func:`expected_histograms`) and the uniform prior of the simulation
box. It is computed by adaptive importance sampling (5,000 prior draws with the lifetime limited
to the truth ± 0.25 ns, then three rounds of 5,000 draws from the defensive mixture
``0.2 q_0 + 0.8 N(mean, 2 cov)`` of the previous round's weighted draws); the estimator is given
the true photon and background counts (which the networks infer from the counts almost exactly).
``--known`` fixes ``mu_a`` and ``mu_s'`` at the truth (the floor with the tissue optics known).

``regimes``: the same recipe as ``train`` (shortened schedule) for EvidenceMoE and the single CNN
on the same training set and test set per seed, under a harder simulator: ``biexp`` (normalised
bi-exponential decay ``a e^(-t/tau1) + (1 - a) e^(-t/tau2)``, tau1 0.1–0.8 ns, tau2 0.6–2 ns,
a 0–1, label the amplitude-weighted mean lifetime ``a tau1 + (1 - a) tau2``), ``irf`` (IRF FWHM
drawn per histogram in 100–400 ps; the models see the nominal IRF), ``bg`` (background 0–50 % of
the signal), ``hard`` (all three), ``default``. ``--n-train`` sets the training-set size.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from moe_zoo.core import create_model, setup_logging
from moe_zoo.core.argtypes import non_negative_int, positive_int
from moe_zoo.flidar.metrics import summarise
from moe_zoo.flidar.model import denormalise_targets
from moe_zoo.flidar.simulator import (
    SimulationConfig,
    TCSPCData,
    _uniform,
    add_photon_noise,
    decay_spectrum,
    expected_histograms,
    irf_fine,
    irf_histogram,
    sample_parameters,
    simulate,
)
from moe_zoo.flidar.train import KINDS, TrainConfig, train

TEST_SEED = 10_000
BIEXP = {"tau1": (0.1, 0.8), "tau2": (0.6, 2.0), "a": (0.0, 1.0)}
REGIMES = ("default", "biexp", "irf", "bg", "hard")


def emit(**record: object) -> None:
    print(json.dumps(record), flush=True)


def _normalised_prediction(model: torch.nn.Module, histograms: torch.Tensor):
    with torch.no_grad():
        out = model(histograms)
    return out if isinstance(out, torch.Tensor) else out.prediction, out


def capacity(_: argparse.Namespace) -> None:
    """Parameters and forward FLOPs per histogram (torch's FLOP counter: matmuls and convolutions)."""
    x = torch.poisson(torch.full((1, 256), 20.0), generator=torch.Generator().manual_seed(0))
    for name in ("evidence-moe-flidar", "plain-moe-flidar", "cnn-flidar"):
        model = create_model(name).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        parts = {}
        if hasattr(model, "experts"):
            parts = {f"expert_{i}": sum(p.numel() for p in e.parameters()) for i, e in enumerate(model.experts.experts)}
            parts["gates"] = sum(p.numel() for p in model.gates.parameters())
            if model.critics is not None:
                parts["critics"] = sum(p.numel() for p in model.critics.parameters())
        emit(what="capacity", model=name, parameters=sum(p.numel() for p in model.parameters()),
             flops_per_histogram=counter.get_total_flops(), parts=parts)


def ablate(args: argparse.Namespace) -> None:
    """Shipped EvidenceMoE on ``simulate(n, seed=10000)``: what the critics and the decider change."""
    test = simulate(args.n, seed=TEST_SEED)
    truth = test.targets()
    moe = create_model("evidence-moe-flidar", pretrained=True).eval()
    cnn = create_model("cnn-flidar", pretrained=True).eval()
    ranges = moe.target_ranges
    target = (truth - ranges[:, 0]) / (ranges[:, 1] - ranges[:, 0])
    _, out = _normalised_prediction(moe, test.histograms)
    cnn_pred, _ = _normalised_prediction(cnn, test.histograms)

    def score(prediction: torch.Tensor) -> list[float]:
        metrics = summarise(denormalise_targets(prediction, ranges), truth)
        return [round(metrics["nrmse_depth"], 4), round(metrics["nrmse_lifetime"], 4)]

    weights = out.gate_weights.transpose(1, 2)                        # [B, E, 2]
    squared = (out.expert_predictions - target[:, None]) ** 2
    best = out.expert_predictions.gather(1, squared.argmin(1, keepdim=True)).squeeze(1)
    rows = {
        "EvidenceMoE (fused)": score(out.prediction),
        "single CNN": score(cnn_pred),
        "fused, critic corrections removed (same gate weights)": score((weights * out.raw_expert_predictions).sum(1)),
        "uniform average of the corrected experts (no decider)": score(out.expert_predictions.mean(1)),
        "per-histogram best expert (oracle decider)": score(best),
    }
    for e, name in enumerate(("early", "late", "global")):
        rows[f"{name} expert alone, corrected"] = score(out.expert_predictions[:, e])
        rows[f"{name} expert alone, raw"] = score(out.raw_expert_predictions[:, e])
    for label, nrmse in rows.items():
        emit(what="ablation", variant=label, nrmse_depth=nrmse[0], nrmse_lifetime=nrmse[1])
    errors_moe, errors_cnn = out.prediction - target, cnn_pred - target
    emit(what="agreement", mean_gate_weights=out.gate_weights.mean(0).tolist(),
         error_correlation=[float(torch.corrcoef(torch.stack([errors_moe[:, j], errors_cnn[:, j]]))[0, 1]) for j in range(2)],
         rms_difference_normalised=((out.prediction - cnn_pred) ** 2).mean(0).sqrt().tolist())


def posterior_means(test: TCSPCData, config: SimulationConfig, known: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``[N, 2]`` posterior means of (depth, lifetime) and ``[N]`` effective sample sizes."""
    irf = irf_fine(config)
    lo = torch.tensor([config.depth_mm[0], config.lifetime_ns[0], math.log(config.mu_a_per_mm[0]), config.mu_sp_per_mm[0]],
                      dtype=torch.float64)
    hi = torch.tensor([config.depth_mm[1], config.lifetime_ns[1], math.log(config.mu_a_per_mm[1]), config.mu_sp_per_mm[1]],
                      dtype=torch.float64)
    free = [0, 1] if known else [0, 1, 2, 3]
    half_width = 0.25 / (hi[1] - lo[1])
    generator = torch.Generator().manual_seed(seed)

    def physical(u: torch.Tensor) -> dict[str, torch.Tensor]:
        v = lo + u * (hi - lo)
        return {"depth_mm": v[:, 0], "lifetime_ns": v[:, 1], "mu_a_per_mm": v[:, 2].exp(), "mu_sp_per_mm": v[:, 3]}

    estimates, ess = [], []
    for i in range(len(test)):
        h = test.histograms[i].double()
        p = {k: v[i].double() for k, v in test.params.items()}
        truth_unit = (torch.stack([p["depth_mm"], p["lifetime_ns"], p["mu_a_per_mm"].log(), p["mu_sp_per_mm"]]) - lo) / (hi - lo)
        a, b = (truth_unit[1] - half_width).clamp_min(0), (truth_unit[1] + half_width).clamp_max(1)

        def log_likelihood(u: torch.Tensor, h=h, p=p) -> torch.Tensor:
            shape = torch.cat([expected_histograms(physical(u[j:j + 1024]), config, irf=irf, dtype=torch.float32).double()
                               for j in range(0, len(u), 1024)])
            m = p["photons"] * shape + p["background"] / shape.shape[-1]
            return (h * m.log() - m).sum(-1)

        def prior_draws(n: int, a=a, b=b, truth_unit=truth_unit) -> torch.Tensor:
            u = truth_unit.repeat(n, 1)
            r = torch.rand(n, 4, generator=generator, dtype=torch.float64)
            u[:, free] = r[:, free]
            u[:, 1] = a + r[:, 1] * (b - a)
            return u

        u = prior_draws(5000)
        log_w = log_likelihood(u)
        for _ in range(3):
            w = (log_w - log_w.max()).exp()
            w = w / w.sum()
            x = u[:, free]
            mean = (w[:, None] * x).sum(0)
            cov = 2.0 * ((x - mean).T * w) @ (x - mean) + 1e-5 * torch.eye(len(free), dtype=torch.float64)
            gaussian = torch.distributions.MultivariateNormal(mean, cov)
            defensive = prior_draws(1000)
            mixed = truth_unit.repeat(4000, 1)
            noise = torch.randn(4000, len(free), generator=generator, dtype=torch.float64)
            mixed[:, free] = mean + noise @ torch.linalg.cholesky(cov).T
            proposal = torch.cat([defensive, mixed])
            inside = ((proposal >= 0) & (proposal <= 1)).all(1)
            in_window = ((proposal[:, 1] >= a) & (proposal[:, 1] <= b)).double() / (b - a)
            density = 0.2 * in_window + 0.8 * gaussian.log_prob(proposal[:, free]).exp()
            u = proposal.clamp(0, 1)
            log_w = torch.where(inside, log_likelihood(u) - density.log(), torch.tensor(-math.inf, dtype=torch.float64))
        w = (log_w - log_w.max()).exp()
        w = w / w.sum()
        ess.append(float(1.0 / (w**2).sum()))
        estimates.append(lo[:2] + (w[:, None] * u).sum(0)[:2] * (hi[:2] - lo[:2]))
    return torch.stack(estimates).float(), torch.tensor(ess)


def floor(args: argparse.Namespace) -> None:
    """Posterior-mean floor vs the shipped networks on the first ``n`` default test histograms."""
    config = SimulationConfig()
    test = simulate(args.n, config, seed=TEST_SEED)
    truth = test.targets()
    span = config.label_ranges()[:, 1] - config.label_ranges()[:, 0]

    def nrmse(estimate: torch.Tensor) -> list[float]:
        return [round(float(v), 4) for v in ((estimate - truth) ** 2).mean(0).sqrt() / span]

    started = time.perf_counter()
    estimate, ess = posterior_means(test, config, args.known)
    emit(what="floor", estimator="posterior mean, optics " + ("known" if args.known else "unknown"), n=args.n,
         nrmse=nrmse(estimate), ess_median=float(ess.median()), ess_min=float(ess.min()),
         seconds=round(time.perf_counter() - started))
    for name in ("evidence-moe-flidar", "cnn-flidar"):
        model = create_model(name, pretrained=True).eval()
        prediction, _ = _normalised_prediction(model, test.histograms)
        emit(what="floor", estimator=name, n=args.n, nrmse=nrmse(denormalise_targets(prediction, model.target_ranges)))


def _regime(name: str) -> dict:
    biexp = name in ("biexp", "hard")
    config = SimulationConfig(lifetime_ns=(0.1, 2.0)) if biexp else SimulationConfig()
    if name in ("bg", "hard"):
        config = config.replace(background_fraction=(0.0, 0.5))
    return {"biexp": biexp, "irf_fwhm": (100.0, 400.0) if name in ("irf", "hard") else None, "config": config}


def simulate_regime(n: int, name: str, seed: int) -> TCSPCData:
    """Like :func:`simulate` (identical for ``default``) with the regime's decay, IRF and background."""
    regime = _regime(name)
    config = regime["config"]
    generator = torch.Generator().manual_seed(seed)
    params = sample_parameters(n, config, generator)
    n_fine, delta = config.n_bins * config.oversample, config.bin_ps / config.oversample
    if regime["biexp"]:
        tau1, tau2, a = (_uniform(generator, n, *BIEXP[k]) for k in ("tau1", "tau2", "a"))
        params["lifetime_ns"] = a * tau1 + (1 - a) * tau2
    fwhm = _uniform(generator, n, *regime["irf_fwhm"]) if regime["irf_fwhm"] else None
    shapes = []
    for i in range(0, n, 256):
        rows = slice(i, i + 256)
        irf = (None if fwhm is None
               else torch.stack([irf_fine(config.replace(irf_fwhm_ps=float(f))).float() for f in fwhm[rows]]))
        decay = None
        if regime["biexp"]:  # a e^(-t/tau1) + (1-a) e^(-t/tau2) = a tau1 f_tau1 + (1-a) tau2 f_tau2, normalised
            w1, w2 = (a[rows] * tau1[rows]).float(), ((1 - a[rows]) * tau2[rows]).float()
            decay = (w1[:, None] * decay_spectrum(tau1[rows].float() * 1e3, n_fine, delta)
                     + w2[:, None] * decay_spectrum(tau2[rows].float() * 1e3, n_fine, delta)) / (w1 + w2)[:, None]
        shapes.append(expected_histograms({k: v[rows] for k, v in params.items()}, config, irf=irf, decay=decay,
                                          dtype=torch.float32))
    histograms = add_photon_noise(torch.cat(shapes).double(), params["photons"], params["background"], generator).float()
    return TCSPCData(histograms, config.bin_ps, irf_histogram(config), {k: v.float() for k, v in params.items()})


def regimes(args: argparse.Namespace) -> None:
    """Paired training runs: the same simulated training and test set per (regime, seed) for every kind."""
    for name in args.regimes:
        config = _regime(name)["config"]
        for seed in args.seeds:
            test = simulate_regime(args.n_test, name, TEST_SEED + seed)
            for kind in args.kinds:
                experts, critics = int(args.steps * 0.5), int(args.steps * 0.16)
                train_config = TrainConfig(kind=kind, simulation=config, n_train=args.n_train, n_val=512, seed=seed,
                                           expert_steps=experts, critic_steps=critics,
                                           joint_steps=args.steps - experts - critics)
                result = train(train_config, progress=False,
                               simulator=lambda n, _config, seed, _name=name: simulate_regime(n, _name, seed))
                prediction, _ = _normalised_prediction(result.model.eval(), test.histograms)
                metrics = summarise(denormalise_targets(prediction, result.model.target_ranges), test.targets())
                emit(what="regime", regime=name, seed=seed, kind=kind, n_train=args.n_train, steps=args.steps,
                     seconds=round(result.seconds, 1), **{k: round(v, 5) for k, v in metrics.items()})


def pairs(args: argparse.Namespace) -> None:
    """Paired per-seed differences EvidenceMoE - CNN from ``regimes`` output (JSON lines files)."""
    runs: dict[tuple, dict] = {}
    for path in args.files:
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                if r.get("what", "regime") == "regime":
                    runs[(r["regime"], r["n_train"], r["steps"], r["seed"], r["kind"])] = r
    groups = sorted({key[:3] for key in runs})
    for group in groups:
        seeds = sorted(k[3] for k in runs if k[:3] == group and k[4] == "evidence-moe" and (*group, k[3], "cnn") in runs)
        if not seeds:
            continue
        row = {"regime": group[0], "n_train": group[1], "steps": group[2], "seeds": seeds}
        for metric in ("nrmse_depth", "nrmse_lifetime"):
            moe = torch.tensor([runs[(*group, s, "evidence-moe")][metric] for s in seeds])
            cnn = torch.tensor([runs[(*group, s, "cnn")][metric] for s in seeds])
            delta = moe - cnn
            spread = float(delta.std()) if len(seeds) > 1 else 0.0
            row[metric] = {"evidence_moe": round(float(moe.mean()), 4), "cnn": round(float(cnn.mean()), 4),
                           "delta": round(float(delta.mean()), 4), "delta_std": round(spread, 4),
                           "moe_better_seeds": int((delta < 0).sum())}
        emit(what="paired", **row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=positive_int, default=1)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("capacity").set_defaults(fn=capacity)
    p = sub.add_parser("ablate")
    p.add_argument("--n", type=positive_int, default=8192)
    p.set_defaults(fn=ablate)
    p = sub.add_parser("floor")
    p.add_argument("--n", type=positive_int, default=300)
    p.add_argument("--known", action="store_true", help="mu_a and mu_s' fixed at the truth")
    p.set_defaults(fn=floor)
    p = sub.add_parser("regimes")
    p.add_argument("--regimes", nargs="+", choices=REGIMES, default=["biexp"])
    p.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0, 1, 2])
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=["evidence-moe", "cnn"])
    p.add_argument("--n-train", type=positive_int, default=20_000)
    p.add_argument("--n-test", type=positive_int, default=4096)
    p.add_argument("--steps", type=positive_int, default=2000, help="total steps (EvidenceMoE: 50 %% experts, 16 %% critics, rest joint)")
    p.set_defaults(fn=regimes)
    p = sub.add_parser("pairs")
    p.add_argument("files", nargs="+", help="JSON lines written by `regimes`")
    p.set_defaults(fn=pairs)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    setup_logging("WARNING")
    args.fn(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
