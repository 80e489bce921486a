"""The layer benchmark's bookkeeping: per-repeat ratios to dense, their quartiles, the table."""

import os
import platform
import subprocess
import sys

import pytest

from moe_zoo.core.benchmark import (
    MALLOC_TUNABLES,
    Shape,
    _quartiles,
    _table,
    glibc_tunables,
    measure,
    pool_samples,
    summarise_samples,
)


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
    table = _table(shape, result)
    assert "| dense SwiGLU (same active FLOPs) |" in table and "100% (100–100)" in table


def test_summary_takes_medians_of_times_and_fault_counts():
    """Seconds, faults and % of dense are the medians of the repeats; the quartiles bracket the %."""
    samples = {"dense": {"fwd": [2.0, 2.0, 2.0], "fwd %": [100.0] * 3, "fwd faults": [0, 0, 0],
                         "fwd+bwd": [4.0, 4.0, 4.0], "fwd+bwd %": [100.0] * 3, "fwd+bwd faults": [0, 0, 0]},
               "moe": {"fwd": [1.0, 4.0, 2.0], "fwd %": [200.0, 50.0, 100.0], "fwd faults": [9, 1, 5],
                       "fwd+bwd": [8.0, 2.0, 4.0], "fwd+bwd %": [50.0, 200.0, 100.0], "fwd+bwd faults": [0, 7, 70]}}
    moe = summarise_samples(samples)["moe"]
    assert (moe["fwd"], moe["fwd faults"], moe["fwd %"]) == (2.0, 5, 100.0)
    assert (moe["fwd+bwd"], moe["fwd+bwd faults"], moe["fwd+bwd %"]) == (4.0, 7, 100.0)
    assert (moe["fwd % q1"], moe["fwd % q3"]) == (75.0, 150.0)


def test_pooled_processes_concatenate_their_repeats():
    one = {"dense": {"fwd": [1.0, 1.0], "fwd %": [100.0, 100.0], "fwd faults": [0, 0],
                     "fwd+bwd": [2.0, 2.0], "fwd+bwd %": [100.0, 100.0], "fwd+bwd faults": [0, 0]},
           "moe": {"fwd": [2.0, 4.0], "fwd %": [50.0, 25.0], "fwd faults": [3, 5],
                   "fwd+bwd": [4.0, 4.0], "fwd+bwd %": [50.0, 50.0], "fwd+bwd faults": [1, 1]}}
    two = {"dense": {k: v[:1] for k, v in one["dense"].items()},
           "moe": {"fwd": [1.0], "fwd %": [100.0], "fwd faults": [7],
                   "fwd+bwd": [2.0], "fwd+bwd %": [100.0], "fwd+bwd faults": [1]}}
    pooled = pool_samples([one, two])
    assert pooled["moe"]["fwd %"] == [50.0, 25.0, 100.0]
    moe = summarise_samples(pooled)["moe"]
    assert (moe["fwd"], moe["fwd %"], moe["fwd faults"]) == (2.0, 50.0, 5)
    assert (moe["fwd % q1"], moe["fwd % q3"]) == (37.5, 75.0)
    assert moe["fwd+bwd %"] == 50.0 and moe["fwd+bwd % q3"] == 75.0


def test_measure_in_fresh_processes_pools_their_repeats():
    shape = Shape(tokens=16, d_model=8, d_hidden=4, n_experts=2, top_k=1)
    result = measure(shape, repeats=1, warmup=1, peers=False, processes=2)
    dense, *ours = result.values()
    assert dense["fwd %"] == dense["fwd+bwd %"] == 100.0 and len(ours) == 4
    for t in ours:
        assert t["max_abs_diff"] == pytest.approx(0.0, abs=1e-5)
        assert 0 < t["fwd+bwd % q1"] <= t["fwd+bwd %"] <= t["fwd+bwd % q3"]


# Minor page faults of each of 12 training steps of a layer with a 64 MiB weight gradient, which
# zero_grad(set_to_none=True) frees after every step.
_FAULTS_PER_STEP = """
import resource, torch
torch.manual_seed(0)
layer, x, faults = torch.nn.Linear(4096, 4096, bias=False), torch.randn(8, 4096), []
for _ in range(12):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    layer(x).sum().backward()
    layer.zero_grad(set_to_none=True)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(*faults)
"""


def _faults_per_step() -> list[int]:
    run = subprocess.run([sys.executable, "-c", _FAULTS_PER_STEP], check=True, capture_output=True, text=True,
                         env=dict(os.environ))
    return [int(f) for f in run.stdout.split()]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="GLIBC_TUNABLES needs glibc")
def test_malloc_tunables_let_a_freed_gradient_be_reused_without_fresh_pages():
    default = _faults_per_step()
    with glibc_tunables(MALLOC_TUNABLES):
        tuned = _faults_per_step()
    assert "glibc.malloc.mmap_threshold" not in os.environ.get("GLIBC_TUNABLES", "")
    # glibc's default mmaps anything above 32 MiB, so every step maps and zeroes 16k fresh pages;
    # with the tunables the heap reuses the freed gradient once fragmentation settles (a few steps).
    assert all(f > 10_000 for f in default[1:])
    assert sum(f < 1_000 for f in tuned[1:]) >= 3
