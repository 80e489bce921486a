"""The TCSPC file reader on fixture files in the documented layout, and its error messages."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from moe_zoo.core import InputError
from moe_zoo.flidar.data import read_tcspc, write_tcspc
from moe_zoo.flidar.simulator import simulate

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", ["tcspc_small.npz", "tcspc_small.h5"])
def test_reads_fixture_files(name):
    data = read_tcspc(FIXTURES / name)
    assert data.histograms.shape == (3, 256) and data.histograms.dtype == torch.float32
    assert data.bin_ps == pytest.approx(48.828125)
    assert float(data.irf.sum()) == pytest.approx(1.0)  # stored scaled, normalised on read
    assert set(data.params) == {"depth_mm", "lifetime_ns"}
    assert data.targets().shape == (3, 2)
    assert torch.all(data.histograms.sum(1) > 1000)


def test_npz_and_h5_fixtures_hold_the_same_data():
    a, b = read_tcspc(FIXTURES / "tcspc_small.npz"), read_tcspc(FIXTURES / "tcspc_small.h5")
    assert torch.equal(a.histograms, b.histograms) and torch.allclose(a.irf, b.irf)


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_write_read_round_trip(tmp_path, suffix):
    data = simulate(5, seed=3)
    back = read_tcspc(write_tcspc(tmp_path / f"set{suffix}", data))
    assert torch.equal(back.histograms, data.histograms)
    assert torch.allclose(back.irf, data.irf, atol=1e-7)
    assert set(back.params) == set(data.params)
    assert back.bin_ps == pytest.approx(data.bin_ps)


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_bad_files_give_clear_errors(tmp_path):
    good = {"histograms": np.ones((2, 32)), "time_ps": np.arange(32) * 10.0, "irf": np.ones(32)}
    with pytest.raises(InputError, match="not found"):
        read_tcspc(tmp_path / "missing.npz")
    with pytest.raises(InputError, match="missing"):
        read_tcspc(_write_npz(tmp_path / "a.npz", histograms=good["histograms"]))
    with pytest.raises(InputError, match="NaN"):
        read_tcspc(_write_npz(tmp_path / "b.npz", **{**good, "histograms": np.full((2, 32), np.nan)}))
    with pytest.raises(InputError, match="uniformly"):
        read_tcspc(_write_npz(tmp_path / "c.npz", **{**good, "time_ps": np.arange(32) ** 2.0}))
    with pytest.raises(InputError, match="shape"):
        read_tcspc(_write_npz(tmp_path / "d.npz", **{**good, "irf": np.ones(31)}))
    with pytest.raises(InputError, match="non-negative"):
        read_tcspc(_write_npz(tmp_path / "e.npz", **{**good, "histograms": -np.ones((2, 32))}))
    with pytest.raises(InputError, match="values for 2 histograms"):
        read_tcspc(_write_npz(tmp_path / "f.npz", **good, depth_mm=np.ones(3)))
    (tmp_path / "g.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(InputError, match="HDF5"):
        read_tcspc(tmp_path / "g.h5")
    with h5py.File(tmp_path / "h.h5", "w") as handle:
        handle.attrs["format"] = "something-else"
    with pytest.raises(InputError, match="format"):
        read_tcspc(tmp_path / "h.h5")
    with pytest.raises(InputError, match="expected one of"):
        read_tcspc(_write_npz(tmp_path / "i.npz", **good).rename(tmp_path / "i.csv"))
