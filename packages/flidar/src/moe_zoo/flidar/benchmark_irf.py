"""Benchmark section: histograms measured with shifted and widened IRFs, with and without using the
file's IRF and time origin (issue 27).

For each condition and seed ``s``: ``simulate(n, SimulationConfig(irf_center_ps=1500 + shift,
irf_fwhm_ps=..., irf_tail_ps=...), seed=10000 + s)`` is written to a ``.npz`` file and read back;
"with the measured IRF" is ``predict(path)`` (the file's IRF aligns the histograms and conditions
the networks), "IRF ignored" is ``predict(data.histograms)`` (the counts alone, as ``predict``
treated every file before the fix: the nominal IRF and time origin assumed). Seed 0 uses the
shipped EvidenceMoE (``TrainConfig(seed=0)``, trained by ``moe-zoo flidar train --ship``); every
other seed (and every seed of another recipe, e.g. ``--quick``'s) trains afresh (one process each, ``workers`` at a time). Run
alone with ``python packages/flidar/benchmarks/run.py --only irf`` (rewrites this section).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from moe_zoo.core import InputError, setup_logging
from moe_zoo.core.reporting import (
    format_mean_std,
    hardware_summary,
    markdown_table,
    write_text_atomic,
)
from moe_zoo.flidar.data import write_tcspc
from moe_zoo.flidar.metrics import summarise
from moe_zoo.flidar.predict import load, predict
from moe_zoo.flidar.simulator import SimulationConfig, simulate
from moe_zoo.flidar.train import TrainConfig, train

START, END = "<!-- irf-section:start -->", "<!-- irf-section:end -->"
TEST_SEED = 10_000
BIN_PS = SimulationConfig().bin_ps
CONDITIONS = (  # (label, time-origin shift in bins, IRF FWHM ps, IRF tail ps)
    ("nominal IRF (150 ps FWHM, 60 ps tail)", 0.0, 150.0, 60.0),
    ("time origin +4 bins (+195 ps)", 4.0, 150.0, 60.0),
    ("time origin +10 bins (+488 ps)", 10.0, 150.0, 60.0),
    ("time origin -2.5 bins (-122 ps)", -2.5, 150.0, 60.0),
    ("widened: 300 ps FWHM", 0.0, 300.0, 60.0),
    ("widened and shifted: 300 ps FWHM, 150 ps tail, +6.5 bins", 6.5, 300.0, 150.0),
)
REFUSED = ("narrow: 50 ps FWHM, 20 ps tail", 0.0, 50.0, 20.0)


def _condition(label: str, shift: float, fwhm: float, tail: float) -> SimulationConfig:
    return SimulationConfig(irf_center_ps=1500.0 + shift * BIN_PS, irf_fwhm_ps=fwhm, irf_tail_ps=tail)


def _seed_job(seed: int, n: int, recipe: TrainConfig) -> list[dict]:
    """Every condition for one training seed, with and without the IRF (seed 0 of the default
    recipe: the shipped weights, which are exactly that run)."""
    torch.set_num_threads(1)
    setup_logging("WARNING")
    shipped = seed == 0 and recipe == TrainConfig()
    model = load() if shipped else train(recipe.replace(seed=seed), progress=False).model.eval()
    records = []
    with tempfile.TemporaryDirectory() as folder:
        for label, *spec in CONDITIONS:
            data = simulate(n, _condition(label, *spec), seed=TEST_SEED + seed)
            path = write_tcspc(Path(folder) / "test.npz", data)
            record = {"condition": label, "seed": seed}
            for name, result in (("with", predict(path, model)), ("without", predict(data.histograms, model))):
                estimate = torch.stack([result.depth_mm, result.lifetime_ns], -1)
                record[name] = {**summarise(estimate, data.targets()),
                                "depth_bias_mm": float((estimate[:, 0] - data.targets()[:, 0]).mean())}
            records.append(record)
    return records


def _refusal() -> str:
    with tempfile.TemporaryDirectory() as folder:
        try:
            predict(write_tcspc(Path(folder) / "narrow.npz", simulate(16, _condition(*REFUSED), seed=TEST_SEED)))
        except InputError as err:
            return str(err).replace(folder, "...")
    return "accepted (unexpected)"


def run_irf(seeds: list[int], n: int, workers: int = 2, recipe: TrainConfig | None = None) -> list[dict]:
    """Records of every condition and seed, plus the refusal message for an IRF the model cannot use."""
    context = multiprocessing.get_context("spawn")
    jobs = len(seeds)
    with ProcessPoolExecutor(min(workers, jobs), mp_context=context) as pool:
        parts = pool.map(_seed_job, seeds, [n] * jobs, [recipe or TrainConfig()] * jobs)
        records = [r for part in parts for r in part]
    return [*records, {"condition": REFUSED[0], "refused": _refusal()}]


def irf_section(records: list[dict], seeds: list[int], n: int, command: str) -> str:
    rows = []
    for label, *_ in CONDITIONS:
        runs = [r for r in records if r["condition"] == label]
        cells = [label]
        for metric, digits in (("nrmse_depth", 4), ("nrmse_lifetime", 4), ("depth_bias_mm", 2)):
            cells += [format_mean_std([r["with"][metric] for r in runs], digits),
                      format_mean_std([r["without"][metric] for r in runs], digits)]
        rows.append(cells)
    refused = next(r["refused"] for r in records if "refused" in r)
    table = markdown_table(["IRF of the file", "NRMSE depth, with IRF", "IRF ignored", "NRMSE lifetime, with IRF",
                            "IRF ignored", "depth bias (mm), with IRF", "IRF ignored"], rows)
    return (f"{START}\n{table}\n\n{n:,} test histograms per condition and seed (seeds {', '.join(map(str, seeds))}: "
            f"`simulate(n, irf config, seed=10000 + s)`, written to a `.npz` file and read back); EvidenceMoE of "
            "training seed s (seed 0 of the default recipe: the shipped weights; every other model trained here by the "
            "same recipe with its seed); mean ± std over seeds. "
            "\"With IRF\": `predict(file)`, which aligns each histogram to its file's IRF peak and gives the "
            "aligned IRF to the networks (trained on IRFs of 100–400 ps FWHM, 20–200 ps tail, origin ± 2 bins); "
            "\"IRF ignored\": `predict(counts)`, the nominal IRF and time origin assumed, as `predict` did with "
            f"every file before this fix. An IRF outside the trained widths is refused; {REFUSED[0]}: `{refused}`.\n\n"
            f"Command: `{command}`; hardware: {hardware_summary()}, load average {os.getloadavg()[0]:.1f} at the end.\n{END}")


def write_irf_records(records: list[dict], path: Path) -> None:
    write_text_atomic(path, json.dumps(records, indent=1))


__all__ = ["CONDITIONS", "END", "START", "irf_section", "run_irf", "write_irf_records"]
