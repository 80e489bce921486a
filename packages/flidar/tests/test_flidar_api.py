"""Public API, CLI, shipped weights, the least-squares baseline and the README example."""

import doctest
from pathlib import Path

import numpy as np
import pytest
import torch

from moe_zoo import flidar
from moe_zoo.core import InputError, create_model, read_checkpoint_metadata
from moe_zoo.core.cli import main
from moe_zoo.flidar.fitting import fit_histogram
from moe_zoo.flidar.metrics import nrmse
from moe_zoo.flidar.model import denormalise_targets
from moe_zoo.flidar.simulator import SimulationConfig, expected_histograms

PACKAGE = Path(__file__).resolve().parents[1]


def test_predict_returns_typed_result_from_tensors_arrays_and_files():
    data = flidar.simulate(64, seed=11)
    result = flidar.predict(data.histograms)
    assert isinstance(result, flidar.FLiDARPrediction) and len(result) == 64
    assert torch.all((result.depth_mm > 0) & (result.lifetime_ns > 0))
    assert torch.all((result.depth_uncertainty > 0) & (result.depth_uncertainty <= 1))
    assert torch.all(result.depth_error_mm > 0) and torch.all(result.lifetime_error_ns > 0)
    assert torch.allclose(result.expert_weights.sum(-1), torch.ones(64, 2), atol=1e-5)
    single = flidar.predict(data.histograms[0].numpy())
    assert single.depth_mm.shape == (1,)
    assert float(single.depth_mm[0]) == pytest.approx(float(result.depth_mm[0]), rel=1e-4)
    from_file = flidar.predict(PACKAGE / "tests" / "fixtures" / "tcspc_small.h5")
    assert len(from_file) == 3


def test_shipped_model_beats_chance_on_fresh_data():
    data = flidar.simulate(1024, seed=12345)
    result = flidar.predict(data)
    truth = data.targets()
    # predicting the mean of a uniform target gives NRMSE 1/sqrt(12) = 0.29
    assert torch.all(nrmse(torch.stack([result.depth_mm, result.lifetime_ns], -1), truth) < 0.5 / np.sqrt(12))


def test_shipped_evidence_moe_is_on_par_with_the_shipped_cnn_on_one_held_out_set():
    """What this checks: the two shipped checkpoints (one training run each, the same recipe and
    training seed, checked from their metadata), on one held-out set of 8,192 histograms whose seed
    neither used: EvidenceMoE's NRMSE is within 3 % of the single CNN's on both outputs, so a
    regression in the EvidenceMoE's training, critics or fusion shows up. What it does not check:
    that EvidenceMoE is better. One seed of each cannot show that, and the benchmark over three
    training seeds finds the two tied (README, "Reading it")."""
    weights = Path(flidar.__file__).parent / "weights"
    configs = [read_checkpoint_metadata(weights / name)["metadata"]["train_config"]
               for name in ("evidence_moe.safetensors", "cnn.safetensors")]
    assert [c.pop("kind") for c in configs] == ["evidence-moe", "cnn"] and configs[0] == configs[1]
    data = flidar.simulate(8192, seed=31337)
    truth = data.targets()
    moe = flidar.predict(data)
    cnn = create_model("cnn-flidar", pretrained=True).eval()
    with torch.no_grad():
        cnn_estimate = denormalise_targets(cnn(data.histograms), cnn.target_ranges)
    moe_nrmse = nrmse(torch.stack([moe.depth_mm, moe.lifetime_ns], -1), truth)
    cnn_nrmse = nrmse(cnn_estimate, truth)
    assert torch.all(moe_nrmse < 1.03 * cnn_nrmse), (moe_nrmse, cnn_nrmse)


def test_bad_histograms_are_rejected_clearly():
    with pytest.raises(InputError, match="expected \\[N, 256\\]"):
        flidar.predict(torch.ones(4, 100))
    with pytest.raises(InputError, match="finite and non-negative"):
        flidar.predict(torch.full((2, 256), float("nan")))
    with pytest.raises(InputError, match="finite and non-negative"):
        flidar.predict(-torch.ones(256))


def test_shipped_checkpoint_records_its_provenance():
    model = create_model("evidence-moe-flidar", pretrained=True)
    assert isinstance(model, flidar.EvidenceMoE)
    spec_path = Path(flidar.__file__).parent / "weights" / "evidence_moe.safetensors"
    assert spec_path.stat().st_size < 5 * 2**20
    meta = read_checkpoint_metadata(spec_path)
    assert "flidar train" in str(meta)


def test_cli_simulate_predict_eval(tmp_path, capsys):
    out = tmp_path / "sim.h5"
    assert main(["flidar", "simulate", "--n", "20", "--out", str(out)]) == 0
    assert flidar.read_tcspc(out).histograms.shape == (20, 256)
    assert main(["flidar", "predict", str(out), "--limit", "3"]) == 0
    assert "depth (mm)" in capsys.readouterr().out
    csv = tmp_path / "pred.csv"
    assert main(["flidar", "predict", str(out), "--csv", str(csv)]) == 0
    assert len(csv.read_text().splitlines()) == 21
    assert main(["flidar", "eval", "--n", "256"]) == 0
    assert "NRMSE" in capsys.readouterr().out
    assert main(["flidar", "predict", str(tmp_path / "missing.npz")]) == 2


def test_least_squares_baseline_recovers_a_clean_lifetime():
    config = SimulationConfig()
    params = {"depth_mm": torch.tensor([6.0], dtype=torch.float64), "lifetime_ns": torch.tensor([0.9], dtype=torch.float64),
              "mu_a_per_mm": torch.tensor([0.015], dtype=torch.float64), "mu_sp_per_mm": torch.tensor([1.2], dtype=torch.float64)}
    counts = torch.poisson(2e5 * expected_histograms(params, config)[0], generator=torch.Generator().manual_seed(0))
    fit = fit_histogram(counts.numpy(), config)
    assert fit["lifetime_ns"] == pytest.approx(0.9, rel=0.05)
    assert fit["amplitude"] == pytest.approx(2e5, rel=0.05)


def test_readme_examples_run():
    failures, attempted = doctest.testfile(str(PACKAGE / "README.md"), module_relative=False,
                                           optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0 and failures == 0
