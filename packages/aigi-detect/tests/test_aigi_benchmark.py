"""The benchmark's report on synthetic records (the runs themselves are the benchmark's job)."""

from __future__ import annotations

import numpy as np

from moe_zoo.aigi.benchmark import METHODS, _summaries, report
from moe_zoo.aigi.data import ImageSet

DOMAINS = ("human_animal", "nature", "urban_object")


def _test_set() -> ImageSet:
    gens = np.array(["real"] * 24 + ["vae"] * 12 + ["gan"] * 12 + ["ddpm"] * 12)
    labels = (gens != "real").astype(int)
    domains = np.arange(len(gens)) % 3
    images = np.random.default_rng(0).integers(0, 255, (len(gens), 32, 32, 3), dtype=np.uint8)
    return ImageSet(images, labels, domains, gens, DOMAINS)


def test_report_tables_unseen_means_and_gates(tmp_path):
    test_set = _test_set()
    rng = np.random.default_rng(1)
    records = []
    for seed in (0, 1):
        for method in METHODS:
            probs = rng.uniform(0, 1, len(test_set))
            if method == "omniaid":      # perfect on gan and vae, chance on ddpm
                probs = np.where(test_set.generators == "ddpm", 0.4, test_set.labels.astype(float))
            gates = np.c_[np.eye(3)[test_set.domains], np.ones(len(test_set))] if method == "omniaid" else None
            records.append({"method": method, "seed": seed, "probs": probs.tolist(),
                            "gates": None if gates is None else gates.tolist(), "seconds": 1.0})
    summary = _summaries(records, test_set, "gan")
    omni = summary["omniaid"][0]
    assert omni["gens"]["gan"]["acc"] == 1.0 and omni["gens"]["vae"]["acc"] == 1.0
    assert omni["gens"]["ddpm"]["acc"] == 24 / 36          # every real right, every ddpm fake wrong
    assert abs(omni["unseen_acc"] - (1.0 + 24 / 36) / 2) < 1e-12
    (tmp_path / "benchmarks").mkdir()
    path = report(tmp_path, records, test_set, "gan", [0, 1], {"text": "speed"})
    text = path.read_text()
    assert "| OmniAID | 0.833 ± 0.000 |" in text
    assert "acc gan (seen)" in text and "| human_animal | 1.000 ± 0.000 | 0.000 ± 0.000 | 0.000 ± 0.000 | 1.000" in text
    assert (tmp_path / "benchmarks" / "figures" / "examples.png").is_file()
