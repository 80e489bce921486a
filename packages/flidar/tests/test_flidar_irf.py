"""The measured IRF and time origin (issue 27): alignment, rebinning, refusal, and the shipped model
on files whose IRF is shifted or widened."""

import pytest
import torch

from moe_zoo import flidar
from moe_zoo.core import InputError
from moe_zoo.flidar.instrument import align, check_irf, peak_position, rebin, shift_bins, widths
from moe_zoo.flidar.metrics import nrmse
from moe_zoo.flidar.simulator import (
    PARAMETERS,
    SimulationConfig,
    expected_histograms,
    irf_histogram,
)

BIN = SimulationConfig().bin_ps


def _irf(shift_bins=0.0, fwhm=150.0, tail=60.0, config=None):
    config = config or SimulationConfig()
    return irf_histogram(config.replace(irf_center_ps=1500.0 + shift_bins * BIN, irf_fwhm_ps=fwhm, irf_tail_ps=tail))


@pytest.mark.parametrize("shift", [0.0, 0.3, 2.5, -7.75])
def test_peak_position_follows_a_gaussian_irf_to_sub_bin_precision(shift):
    gauss = _irf(shift, tail=0.0)
    assert float(peak_position(gauss)) == pytest.approx(1500.0 / BIN + shift, abs=0.02)


def test_shift_bins_keeps_counts_and_integer_shifts_are_rolls():
    values = torch.rand(3, 64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(shift_bins(values, torch.tensor([3.0, -5.0, 0.0])),
                               torch.stack([values[0].roll(3), values[1].roll(-5), values[2]]))
    moved = shift_bins(values, torch.tensor([0.25, 10.5, -3.75]))
    torch.testing.assert_close(moved.sum(-1), values.sum(-1))
    torch.testing.assert_close(shift_bins(values[:1], torch.tensor([0.5]))[0], 0.5 * (values[0] + values[0].roll(1)))


@pytest.mark.parametrize("shift", [4.0, 10.0, -2.5, 6.3])
def test_alignment_undoes_a_time_origin_shift(shift):
    """A noise-free histogram measured with a delayed IRF, aligned to the nominal IRF's peak,
    matches the nominal histogram (up to the interpolation's sub-bin smoothing)."""
    config = SimulationConfig()
    values = {"depth_mm": [7.0, 4.0], "lifetime_ns": [0.8, 0.4], "mu_a_per_mm": [0.02, 0.01], "mu_sp_per_mm": [1.2, 1.8]}
    params = {k: torch.tensor(values[k], dtype=torch.float64) for k in PARAMETERS}
    nominal = expected_histograms(params, config)
    moved_config = config.replace(irf_center_ps=1500.0 + shift * BIN)
    moved = expected_histograms(params, moved_config)
    aligned, _ = align(moved, irf_histogram(moved_config).double(), float(peak_position(irf_histogram(config))))
    tolerance = 1e-6 if shift == int(shift) else 0.02
    assert float((aligned - nominal).abs().sum(-1).max()) < tolerance
    assert float((moved - nominal).abs().sum(-1).min()) > 0.1  # without alignment: far apart


def test_finer_grids_are_rebinned_and_other_grids_refused():
    config = SimulationConfig()
    fine = torch.rand(2, 1024, generator=torch.Generator().manual_seed(1))
    coarse = rebin(fine, BIN / 4, config)
    torch.testing.assert_close(coarse, fine.view(2, 256, 4).sum(-1))
    odd = rebin(fine[:, :700], config.period_ps / 700, config)   # non-integer ratio: counts kept
    torch.testing.assert_close(odd.sum(-1), fine[:, :700].sum(-1))
    with pytest.raises(InputError, match="coarser ones or other periods are refused"):
        rebin(fine[:, :128], BIN * 2, config)
    with pytest.raises(InputError, match="one laser period"):
        rebin(fine[:, :512], BIN / 4, config)   # half a period


def test_irf_width_checks_accept_the_trained_family_and_refuse_others():
    model = flidar.load()
    simulation = model.config.simulation
    half, tenth = widths(_irf(tail=0.0))   # a binned Gaussian: sqrt(FWHM^2 + 2.355^2 bin^2 / 12)
    assert half * BIN == pytest.approx(153.6, rel=0.03) and tenth / half == pytest.approx(1.823, rel=0.03)
    for fwhm, tail in ((150.0, 60.0), (110.0, 25.0), (380.0, 180.0)):
        check_irf(_irf(3.0, fwhm, tail), simulation)
    floor = _irf() * 1e4 + 30.0   # a measured IRF: counts on a flat dark-count floor
    torch.testing.assert_close(check_irf(floor, simulation), _irf(), atol=2e-4, rtol=0)
    for fwhm, tail in ((50.0, 20.0), (700.0, 60.0), (150.0, 900.0)):
        with pytest.raises(InputError, match="this model cannot use this instrument"):
            check_irf(_irf(0.0, fwhm, tail), simulation)
    with pytest.raises(InputError, match="no peak"):
        check_irf(torch.ones(256), simulation)


def _read_back(tmp_path, name, shift=0.0, fwhm=150.0, tail=60.0, n=2048, **grid):
    config = SimulationConfig(irf_center_ps=1500.0 + shift * BIN, irf_fwhm_ps=fwhm, irf_tail_ps=tail, **grid)
    data = flidar.simulate(n, config, seed=4242)
    return flidar.read_tcspc(flidar.write_tcspc(tmp_path / name, data)), data


def _nrmse(result, data):
    return nrmse(torch.stack([result.depth_mm, result.lifetime_ns], -1), data.targets())


def test_shifted_and_widened_irfs_keep_the_accuracy_of_the_nominal_one(tmp_path):
    """Files measured with a delayed or wider IRF, read back through the file format, keep the
    shipped model's NRMSE within a small margin of the nominal-IRF file (same parameters and noise
    seed); the counts alone (IRF ignored, the behaviour before the fix) are far worse."""
    model = flidar.load()
    reference, _ = _read_back(tmp_path, "nominal.npz")
    base = _nrmse(flidar.predict(reference, model), reference)
    cases = {"+4 bins": (4.0, 150.0, 60.0), "+10 bins": (10.0, 150.0, 60.0), "-2.5 bins": (-2.5, 150.0, 60.0),
             "300 ps FWHM": (0.0, 300.0, 60.0), "300 ps, 150 ps tail, +6.5 bins": (6.5, 300.0, 150.0)}
    for i, (label, spec) in enumerate(cases.items()):
        data, _ = _read_back(tmp_path, f"case{i}.{'h5' if i % 2 else 'npz'}", *spec)
        got = _nrmse(flidar.predict(data, model), data)
        assert got[0] < base[0] + 0.01 and got[1] < base[1] * 1.2 + 0.002, (label, got, base)
        if spec[0] >= 4:
            ignored = _nrmse(flidar.predict(data.histograms, model), data)
            assert ignored[0] > base[0] + 0.1, (label, ignored, base)


def test_a_finer_grid_file_is_rebinned_to_the_models_grid(tmp_path):
    """A file of 1024 bins of 12.2 ps over the same 12.5 ns period: the summed bins are Poisson
    counts on the model's grid, so the accuracy is that of a native file."""
    model = flidar.load()
    native, _ = _read_back(tmp_path, "native.npz", n=1024)
    fine, _ = _read_back(tmp_path, "fine.npz", n=1024, n_bins=1024, bin_ps=BIN / 4, oversample=1)
    assert fine.histograms.shape == (1024, 1024)
    base, got = _nrmse(flidar.predict(native, model), native), _nrmse(flidar.predict(fine, model), fine)
    assert got[0] < base[0] + 0.01 and got[1] < base[1] * 1.2 + 0.002, (got, base)
    coarse = flidar.TCSPCData(native.histograms[:, ::2] + native.histograms[:, 1::2], BIN * 2, native.irf.view(128, 2).sum(-1))
    with pytest.raises(InputError, match="bins of at most"):
        flidar.predict(coarse, model)
