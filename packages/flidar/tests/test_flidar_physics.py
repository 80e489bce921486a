"""The simulator against diffusion theory's closed forms, Monte Carlo, and photon statistics."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from moe_zoo.flidar.montecarlo import simulate_exits
from moe_zoo.flidar.physics import (
    boundary_coefficient,
    cumulative_t32,
    cumulative_t52,
    exitance_bins,
    fluence_bins,
    peak_time_pcw,
    reflectance_bins,
    reflectance_pcw,
    steady_state_fluence,
    steady_state_reflectance,
)
from moe_zoo.flidar.simulator import (
    SimulationConfig,
    add_photon_noise,
    decay_spectrum,
    expected_histograms,
    irf_fine,
)

F64 = torch.float64


def _t(*values):
    return torch.tensor(values, dtype=F64)


@pytest.mark.parametrize(("a", "b", "t"), [(50.0, 0.004, 80.0), (300.0, 0.02, 900.0), (5.0, 0.001, 3000.0)])
def test_bin_integral_closed_forms_match_quadrature(a, b, t):
    for power, cumulative in ((1.5, cumulative_t32), (2.5, cumulative_t52)):
        reference = quad(lambda s, p=power: s**-p * math.exp(-a / s - b * s), 0.0, t, limit=200)[0]
        assert float(cumulative(_t(a), _t(b), _t(t))) == pytest.approx(reference, rel=1e-7)


def test_boundary_coefficient_matches_fresnel_theory():
    assert float(boundary_coefficient(1.0)) == pytest.approx(1.0)
    assert 2.8 < float(boundary_coefficient(1.4)) < 3.1  # Haskell et al. (1994): A(1.4) ~ 2.9-3.0


@pytest.mark.parametrize(("depth", "mu_a", "mu_sp", "rho"), [(6.0, 0.01, 1.0, 0.0), (9.0, 0.03, 1.8, 2.0)])
def test_time_integrated_kernels_equal_steady_state_diffusion(depth, mu_a, mu_sp, rho):
    edges = torch.arange(0.0, 40_000.0, 5.0, dtype=F64)
    fluence = fluence_bins(_t(depth), _t(mu_a), _t(mu_sp), edges, n=1.4, rho=rho).sum()
    assert float(fluence) == pytest.approx(steady_state_fluence(depth, rho, mu_a, mu_sp, 1.4), rel=1e-6)
    reflectance = reflectance_bins(_t(depth), _t(mu_a), _t(mu_sp), edges, n=1.4, rho=rho).sum()
    assert float(reflectance) == pytest.approx(steady_state_reflectance(rho, mu_a, mu_sp, 1.4, depth), rel=1e-6)


@pytest.mark.parametrize(("rho", "mu_a", "mu_sp"), [(10.0, 0.01, 1.0), (20.0, 0.03, 1.5)])
def test_peak_time_of_pcw_reflectance_matches_pattersons_formula(rho, mu_a, mu_sp):
    t = torch.arange(1.0, 6000.0, 0.25, dtype=F64)
    curve = reflectance_pcw(rho, t, mu_a, mu_sp, 1.4, boundary="zero")
    assert float(t[curve.argmax()]) == pytest.approx(peak_time_pcw(rho, mu_a, mu_sp, 1.4), abs=0.5)
    integrated = torch.trapezoid(reflectance_pcw(rho, t, mu_a, mu_sp, 1.4), t)
    assert float(integrated) == pytest.approx(steady_state_reflectance(rho, mu_a, mu_sp, 1.4), rel=2e-3)


def _params(depth=7.0, tau=0.6, mu_a=0.02, mu_sp=1.2):
    return {"depth_mm": _t(depth), "lifetime_ns": _t(tau), "mu_a_per_mm": _t(mu_a), "mu_sp_per_mm": _t(mu_sp)}


def test_decay_and_per_row_irf_overrides_are_linear_in_the_decay():
    """``decay=`` replaces the mono-exponential spectrum, ``irf=`` takes one IRF per row: the default
    equals its explicit form, and a bi-exponential decay gives the weighted sum of the two shapes."""
    config = SimulationConfig()
    n_fine, delta = config.n_bins * config.oversample, config.bin_ps / config.oversample
    params = {k: v.repeat(2) for k, v in _params(tau=0.4).items()}
    default = expected_histograms(params, config, normalise=False)
    explicit = expected_histograms(params, config, normalise=False, irf=irf_fine(config).repeat(2, 1),
                                   decay=decay_spectrum(params["lifetime_ns"] * 1e3, n_fine, delta))
    torch.testing.assert_close(explicit, default)
    slow = expected_histograms({**params, "lifetime_ns": _t(1.5, 1.5)}, config, normalise=False)
    mixed = expected_histograms(params, config, normalise=False, decay=(
        0.3 * decay_spectrum(_t(400.0, 400.0), n_fine, delta) + 0.7 * decay_spectrum(_t(1500.0, 1500.0), n_fine, delta)))
    torch.testing.assert_close(mixed, 0.3 * default + 0.7 * slow)


def test_simulated_signal_total_is_the_product_of_steady_state_legs():
    config = SimulationConfig()
    total = float(expected_histograms(_params(), config, normalise=False).sum())
    expected = steady_state_fluence(7.0, 0.0, 0.02, 1.2, 1.4) * steady_state_reflectance(0.0, 0.02, 1.2, 1.4, 7.0)
    assert total == pytest.approx(expected, rel=1e-4)


def test_mean_arrival_time_is_the_sum_of_the_component_means():
    """Convolution adds first moments: <t> = <IRF> + <G_x> + <R_m> + tau (checks the phase correction)."""
    config = SimulationConfig(oversample=8)
    histogram = expected_histograms(_params(tau=0.5), config)[0]
    mean = float((histogram * config.time_axis_ps()).sum())
    delta = config.bin_ps / config.oversample
    edges = torch.arange(0.0, 40_000.0, 1.0, dtype=F64)
    centres = 0.5 * (edges[1:] + edges[:-1])
    legs = [fluence_bins(_t(7.0), _t(0.02), _t(1.2), edges, n=1.4)[0],
            reflectance_bins(_t(7.0), _t(0.02), _t(1.2), edges, n=1.4)[0]]
    leg_means = sum(float((leg * centres).sum() / leg.sum()) for leg in legs)
    irf = irf_fine(config)
    irf_mean = float((irf * (torch.arange(irf.numel(), dtype=F64) + 0.5) * delta).sum())
    assert mean == pytest.approx(irf_mean + leg_means + 500.0, abs=3.0)


def test_exact_bin_integration_converges_with_oversampling():
    params = _params(depth=3.5, mu_sp=2.0)  # shallow: a kernel rising within a few ps
    coarse = expected_histograms(params, SimulationConfig(oversample=4))
    fine = expected_histograms(params, SimulationConfig(oversample=16))
    assert float((coarse - fine).abs().sum()) < 2e-3
    assert float(expected_histograms(params, SimulationConfig(), dtype=torch.float32).sub(coarse).abs().sum()) < 1e-4


def test_photon_counts_are_poisson():
    shape = expected_histograms(_params(), SimulationConfig())
    draws = add_photon_noise(shape.expand(4000, -1), torch.full((4000,), 5000.0, dtype=F64),
                             torch.full((4000,), 256.0, dtype=F64), torch.Generator().manual_seed(0))
    rate = 5000.0 * shape[0] + 1.0
    busy = rate > 20
    mean, var = draws.mean(0), draws.var(0)
    assert torch.all((mean[busy] - rate[busy]).abs() < 5 * torch.sqrt(rate[busy] / 4000))
    ratio = (var[busy] / mean[busy]).mean()
    assert 0.95 < float(ratio) < 1.05  # Poisson: variance = mean
    assert torch.equal(draws, draws.round()) and draws.min() >= 0


@pytest.mark.parametrize(("depth", "mu_sp", "g", "photons", "rho_range"), [
    (5.0, 1.0, 0.0, 12_000, (0.0, math.inf)),     # buried isotropic source (the emission leg)
    (8.0, 1.5, 0.8, 5_000, (0.0, math.inf)),      # tissue-like anisotropic scattering, mu_s = 7.5 /mm
    (None, 1.0, 0.0, 12_000, (4.0, 10.0)),        # pencil beam, detector annulus (the excitation leg)
])
def test_diffusion_model_agrees_with_monte_carlo(depth, mu_sp, g, photons, rho_range):
    tally = simulate_exits(photons, mu_sp, g=g, source_depth=depth, t_max_ps=2500.0, seed=1)
    edges = np.arange(0.0, 2501.0, 100.0)
    for mu_a in (0.0, 0.02):
        mc = tally.histogram(edges, mu_a, rho_range)
        theory = exitance_bins(depth if depth is not None else 1.0 / mu_sp, mu_a, mu_sp, torch.tensor(edges),
                               rho_range=rho_range).numpy()
        assert mc.sum() == pytest.approx(theory.sum(), rel=0.1)
        late = np.arange(len(theory)) > np.argmax(theory)
        late &= theory > 0.02 * theory.max()
        assert np.abs(mc[late] - theory[late]).sum() / theory[late].sum() < 0.2
