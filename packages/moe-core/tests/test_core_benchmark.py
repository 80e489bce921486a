"""The layer benchmark's bookkeeping: per-repeat ratios to dense, their quartiles, the table."""

import pytest

from moe_zoo.core.benchmark import Shape, _quartiles, _table, measure


def test_quartiles_of_a_hand_made_list():
    assert _quartiles([4.0, 1.0, 3.0, 2.0, 5.0]) == (2.0, 3.0, 4.0)
    assert _quartiles([7.0]) == (7.0, 7.0, 7.0)


def test_measure_reports_each_backend_against_dense_with_its_spread():
    shape = Shape(tokens=32, d_model=16, d_hidden=8, n_experts=4, top_k=2)
    result = measure(shape, repeats=3, warmup=0, peers=False)
    dense, *ours = result.values()
    assert dense["fwd %"] == dense["fwd+bwd % q3"] == 100.0
    assert [name for name in result][1:] == ["moe-core eager", "moe-core grouped", "moe-core segmented",
                                           "moe-core padded"]
    for t in ours:
        assert t["max_abs_diff"] == pytest.approx(0.0, abs=1e-5)
        for phase in ("fwd", "fwd+bwd"):
            assert 0 < t[f"{phase} % q1"] <= t[f"{phase} %"] <= t[f"{phase} % q3"]
            assert t[f"{phase} faults"] >= 0
    table = _table(shape, result)
    assert "| dense SwiGLU (same active FLOPs) |" in table and "100% (100–100)" in table
