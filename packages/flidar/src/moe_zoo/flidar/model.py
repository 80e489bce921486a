"""EvidenceMoE (Erbas et al., 2025): physics-guided temporal experts, evidential Dirichlet
critics and a decider, plus the two learned baselines it is compared with.

Forward pass for a TCSPC histogram ``h`` (``T`` bins) measured with the instrument response ``IRF``::

    h, IRF <- both shifted so the IRF peaks where the nominal IRF does    (:mod:`.instrument`)
    x = [h / max h,  log(1 + h) / log(1 + max h),  IRF / max IRF]          3 channels  [B, 3, T]
    expert e in {early, late, global} reads its own time window W_e of x:
        (z_e, y_e) = Expert_e(x[:, :, W_e])        y_e = (depth, lifetime) normalised to [0, 1]
    critic e (Evidence-Based Dirichlet Critic) reads (z_e, y_e, n), n = photon-count level:
        delta_e = correction,   y'_e = y_e + delta_e                       corrective feedback
        alpha_ej = softplus(evidence_ej) + 1  over K quality classes of |y'_ej - y_j|  (per output j)
        p_ejk = alpha_ejk / S_ej,  S_ej = sum_k alpha_ejk,   u_ej = K / S_ej
        q_ej = sum_k p_ejk v_k   (quality score, v_k = 1 ... 0 from the best to the worst class)
    decider: one SoftGate per output j over the experts,
        g_j = softmax(MLP_j([y'_1..E, q_1..E, u_1..E, z_global, n]))
        y_j = sum_e g_je y'_ej,   u_j = sum_e g_je u_ej,   err_j = sum_e g_je sum_k p_ejk c_k

The windows come from diffusion theory (:func:`physics_windows`): the early expert sees the
rising edge from the IRF onset to the latest transport peak in the parameter range (time of
flight -> depth), the late expert the decay from the earliest peak to the end of the period
(lifetime), the global expert the whole period at half resolution (context); the global expert
also predicts the nuisance optical properties (``mu_a``, ``mu_s'``) used by the physics loss.
``use_critics=False`` gives the plain MoE baseline (same experts, decider on predictions and
context only); :class:`SingleRegressor` is the one-network baseline.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moe_zoo.core import Config, HeterogeneousExperts, InputError, SoftGate, register_model
from moe_zoo.flidar.instrument import align, peak_position
from moe_zoo.flidar.simulator import (
    PARAMETERS,
    TRAINING_SIMULATION,
    SimulationConfig,
    expected_histograms,
    irf_fine,
    irf_histogram,
)

EXPERT_NAMES = ("early", "late", "global")
TARGETS = ("depth_mm", "lifetime_ns")
NUISANCE = ("mu_a_per_mm", "mu_sp_per_mm")


@dataclass(frozen=True)
class EvidenceMoEConfig(Config):
    """Architecture and the simulation it was built for (windows in bins, ``[start, stop)``)."""

    simulation: SimulationConfig = TRAINING_SIMULATION
    early_window: tuple[int, int] = (16, 80)
    late_window: tuple[int, int] = (32, 256)
    global_pool: int = 2
    channels: int = 16
    hidden: int = 64
    # |normalised error| class edges per output (depth, lifetime), spread over each one's error scale
    quality_thresholds: tuple[tuple[float, ...], ...] = ((0.03, 0.07, 0.14), (0.01, 0.025, 0.05))
    critic_hidden: int = 32
    decider_hidden: int = 32
    use_critics: bool = True

    def __post_init__(self) -> None:
        n_bins = self.simulation.n_bins
        for name in ("early_window", "late_window"):
            start, stop = getattr(self, name)
            if not 0 <= start < stop <= n_bins or stop - start < 16:
                raise InputError(f"EvidenceMoEConfig.{name}={(start, stop)} must be a window of >= 16 bins in [0, {n_bins}]")
        rows = self.quality_thresholds
        if (len(rows) != len(TARGETS) or len({len(r) for r in rows}) != 1
                or any(list(r) != sorted(r) or r[0] <= 0 for r in rows)):
            raise InputError("EvidenceMoEConfig.quality_thresholds: one positive increasing row per output, equal lengths")

    @property
    def n_quality(self) -> int:
        return len(self.quality_thresholds[0]) + 1

    def windows(self) -> dict[str, tuple[int, int]]:
        return {"early": self.early_window, "late": self.late_window, "global": (0, self.simulation.n_bins)}


def aligned_irfs(simulation: SimulationConfig) -> list[tuple[float, Tensor]]:
    """``(centre ps, fine-grid IRF)`` at the corners of the FWHM x tail box, each centred so that
    its binned peak sits on the nominal IRF's (as :func:`~moe_zoo.flidar.instrument.align` puts it)."""
    reference = float(peak_position(irf_histogram(simulation)))
    out = []
    for fwhm, tail in itertools.product(simulation.irf_fwhm_range_ps, simulation.irf_tail_range_ps):
        corner = simulation.replace(irf_fwhm_ps=fwhm, irf_tail_ps=tail)
        centre = simulation.irf_center_ps + (reference - float(peak_position(irf_histogram(corner)))) * simulation.bin_ps
        out.append((centre, irf_fine(corner.replace(irf_center_ps=centre))))
    return out


def physics_windows(simulation: SimulationConfig, margin_bins: int = 8) -> tuple[tuple[int, int], tuple[int, int]]:
    """Early and late windows from the noise-free histograms at the corners of the parameter box
    (tissue, lifetime and, aligned to the nominal peak, the IRF's FWHM and tail).

    early = [earliest IRF onset (centre - 3 sigma), latest histogram peak + margin); late = [earliest
    peak - margin/4, end). The peak delay is the diffusive time of flight (``~ d^2 / 6 D c`` per
    leg) plus the lifetime's shift, so the windows follow the physics of the chosen ranges.
    """
    corners = list(itertools.product(*(getattr(simulation, name) for name in PARAMETERS)))
    params = {name: torch.tensor([c[i] for c in corners], dtype=torch.float64) for i, name in enumerate(PARAMETERS)}
    irfs = aligned_irfs(simulation)
    peaks = torch.stack([expected_histograms(params, simulation, irf=irf).argmax(-1) for _, irf in irfs])
    sigma = max(simulation.irf_fwhm_range_ps) / 2.3548
    onset = max(0, int((min(centre for centre, _ in irfs) - 3.0 * sigma) // simulation.bin_ps))
    early = (onset, min(simulation.n_bins, int(peaks.max()) + margin_bins))
    late = (max(0, int(peaks.min()) - margin_bins // 4), simulation.n_bins)
    return early, late


def config_for_simulation(simulation: SimulationConfig, **overrides: object) -> EvidenceMoEConfig:
    """The architecture for data from ``simulation``: the shipped windows while they contain the
    :func:`physics_windows` of ``simulation``'s ranges (as for the default and the known-tissue
    boxes), else the physics windows themselves (e.g. a deeper box, whose peaks come later)."""
    shipped = EvidenceMoEConfig()
    early, late = physics_windows(simulation)
    same_period = shipped.late_window[1] == late[1]  # the late window runs to the period's end
    if same_period and _contains(shipped.early_window, early) and _contains(shipped.late_window, late):
        early, late = shipped.early_window, shipped.late_window
    return EvidenceMoEConfig(simulation=simulation, early_window=early, late_window=late, **overrides)


def _contains(outer: tuple[int, int], inner: tuple[int, int]) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1]


def normalise_targets(values: Tensor, ranges: Tensor) -> Tensor:
    """``(y - low) / (high - low)`` per column (``ranges``: ``[n, 2]``)."""
    return (values - ranges[:, 0]) / (ranges[:, 1] - ranges[:, 0])


def denormalise_targets(values: Tensor, ranges: Tensor) -> Tensor:
    return values * (ranges[:, 1] - ranges[:, 0]) + ranges[:, 0]


def histogram_features(histograms: Tensor, irf: Tensor, reference_peak: float) -> Tensor:
    """``[B, T]`` counts and their IRF (``[T]`` or ``[B, T]``) -> ``[B, 3, T]``: both shifted so the
    IRF peaks at ``reference_peak`` (:func:`~moe_zoo.flidar.instrument.align`: the measured time
    origin), then the counts peak-normalised and log-normalised (an exponential decay becomes a
    line whose slope is ``-1/tau``), and the aligned IRF over its maximum (its width and tail)."""
    rows = histograms.shape[0] if histograms.dim() == 2 else -1
    if histograms.dim() != 2 or histograms.shape[-1] != irf.shape[-1] or irf.dim() not in (1, 2) \
            or (irf.dim() == 2 and irf.shape[0] != rows):
        raise InputError(f"histograms: expected [N, {irf.shape[-1]}] counts with an IRF of [{irf.shape[-1]}] or "
                         f"[N, {irf.shape[-1]}], got {tuple(histograms.shape)} and {tuple(irf.shape)}")
    histograms, irf = align(histograms, irf, reference_peak)
    peak = histograms.amax(-1, keepdim=True).clamp_min(1.0)
    log_h = torch.log1p(histograms.clamp_min(0.0)) / torch.log1p(peak)
    return torch.stack([histograms / peak, log_h, irf / irf.amax(-1, keepdim=True)], dim=1)


def count_level(histograms: Tensor) -> Tensor:
    """``[B, 1]`` photon-count level ``(ln(1 + sum_k h_k) - 9) / 2`` (about -1.5 ... 1.5 here)."""
    return (torch.log1p(histograms.sum(-1, keepdim=True)) - 9.0) / 2.0


class TemporalExpert(nn.Module):
    """A 1-D CNN over one time window: three strided convolutions, then an MLP.

    ``[B, 3, T] -> (z [B, hidden], y [B, n_out])`` on ``x[:, :, start:stop]`` average-pooled by ``pool``.
    """

    def __init__(self, window: tuple[int, int], n_out: int, *, channels: int, hidden: int, pool: int = 1) -> None:
        super().__init__()
        self.start, self.stop = window
        self.pool = pool
        length = (self.stop - self.start) // pool
        self.conv = nn.Sequential(
            nn.Conv1d(3, channels, 7, stride=2, padding=3), nn.GELU(),
            nn.Conv1d(channels, 2 * channels, 5, stride=2, padding=2), nn.GELU(),
            nn.Conv1d(2 * channels, 2 * channels, 5, stride=2, padding=2), nn.GELU(),
        )
        for _ in range(3):
            length = (length - 1) // 2 + 1
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(2 * channels * length, hidden), nn.GELU(),
                                  nn.Linear(hidden, hidden), nn.GELU())
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x[:, :, self.start:self.stop]
        if self.pool > 1:
            x = F.avg_pool1d(x, self.pool)
        z = self.body(self.conv(x))
        return z, self.head(z)


class DirichletCritic(nn.Module):
    """Evidence-Based Dirichlet Critic for one expert: correction and Dirichlet evidence per output.

    ``h = MLP([z_e, y_e, n])`` with ``n`` the photon-count level (shot noise sets the attainable
    precision); ``delta = W_d h``; ``alpha = softplus(W_a h) + 1`` reshaped to ``[B, n_targets, K]``
    (evidential deep learning, Sensoy et al. 2018).
    """

    def __init__(self, d_features: int, n_targets: int, n_quality: int, hidden: int) -> None:
        super().__init__()
        self.n_targets, self.n_quality = n_targets, n_quality
        self.body = nn.Sequential(nn.Linear(d_features + n_targets + 1, hidden), nn.GELU(),
                                  nn.Linear(hidden, hidden), nn.GELU())
        self.correction = nn.Linear(hidden, n_targets)
        self.evidence = nn.Linear(hidden, n_targets * n_quality)
        nn.init.zeros_(self.correction.weight)
        nn.init.zeros_(self.correction.bias)

    def forward(self, z: Tensor, y: Tensor, count_level: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(torch.cat([z, y, count_level], dim=-1))
        alpha = F.softplus(self.evidence(h)).view(-1, self.n_targets, self.n_quality) + 1.0
        return self.correction(h), alpha


@dataclass
class EvidenceMoEOutput:
    """Normalised predictions and everything the losses and the calibration need.

    prediction [B, 2]; expert_predictions [B, E, 2] (after correction); raw_expert_predictions
    [B, E, 2]; nuisance [B, 2] (normalised mu_a, mu_s'); gate_weights [B, 2, E]; and with critics:
    alpha [B, E, 2, K], uncertainty [B, E, 2] (u = K / S), quality [B, E, 2], fused uncertainty
    [B, 2], fused expected error [B, 2] (normalised units).
    """

    prediction: Tensor
    expert_predictions: Tensor
    raw_expert_predictions: Tensor
    nuisance: Tensor
    gate_weights: Tensor
    alpha: Tensor | None = None
    uncertainty: Tensor | None = None
    quality: Tensor | None = None
    fused_uncertainty: Tensor | None = None
    fused_error: Tensor | None = None


class EvidenceMoE(nn.Module):
    """EvidenceMoE for FLiDAR depth and lifetime (see the module docstring for the equations)."""

    def __init__(self, config: EvidenceMoEConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or EvidenceMoEConfig()
        windows = config.windows()
        n_targets = len(TARGETS)
        kw = {"channels": config.channels, "hidden": config.hidden}
        self.experts = HeterogeneousExperts([
            TemporalExpert(windows["early"], n_targets, **kw),
            TemporalExpert(windows["late"], n_targets, **kw),
            TemporalExpert(windows["global"], n_targets + len(NUISANCE), pool=config.global_pool, **kw),
        ])
        n_experts = len(EXPERT_NAMES)
        if config.use_critics:
            self.critics = nn.ModuleList(DirichletCritic(config.hidden, n_targets, config.n_quality, config.critic_hidden)
                                         for _ in range(n_experts))
            decider_in = n_experts * n_targets * 3 + config.hidden + 1
        else:
            self.critics = None
            decider_in = n_experts * n_targets + config.hidden
        self.gates = nn.ModuleList(SoftGate(decider_in, n_experts, hidden=config.decider_hidden) for _ in range(n_targets))
        self.register_buffer("irf", irf_histogram(config.simulation), persistent=False)
        self.reference_peak = float(peak_position(self.irf))
        self.register_buffer("target_ranges", config.simulation.label_ranges(), persistent=False)
        self.register_buffer("nuisance_ranges", torch.tensor([config.simulation.mu_a_per_mm,
                                                              config.simulation.mu_sp_per_mm]).log(), persistent=False)
        k = config.n_quality
        self.register_buffer("class_values", torch.linspace(1.0, 0.0, k), persistent=False)
        centres = [[(lo + hi) / 2 for lo, hi in itertools.pairwise((0.0, *row))] + [1.5 * row[-1]]
                   for row in config.quality_thresholds]
        self.register_buffer("class_errors", torch.tensor(centres), persistent=False)          # [2, K]
        self.register_buffer("thresholds", torch.tensor(config.quality_thresholds), persistent=False)

    def quality_class(self, abs_error: Tensor) -> Tensor:
        """Class of each normalised absolute error ``[..., 2]``: ``k = #{thresholds_j <= |err_j|}``."""
        return (abs_error[..., None] >= self.thresholds.to(abs_error.dtype)).sum(-1)

    def forward(self, histograms: Tensor, irf: Tensor | None = None) -> EvidenceMoEOutput:
        """``histograms [B, T]`` counts; ``irf`` their measured IRF, ``[T]`` or ``[B, T]`` (default:
        the nominal IRF, i.e. the histograms are taken to share the simulator's time origin)."""
        x = histogram_features(histograms, self.irf if irf is None else irf, self.reference_peak)
        features, raw = [], []
        for expert in self.experts.experts:  # heterogeneous windows: one batched call per expert
            z, y = expert(x)
            features.append(z)
            raw.append(y)
        nuisance = raw[-1][:, len(TARGETS):]
        raw_predictions = torch.stack([y[:, :len(TARGETS)] for y in raw], dim=1)  # [B, E, 2]
        context = features[-1]
        if self.critics is None:
            predictions = raw_predictions
            decider_in = torch.cat([predictions.flatten(1), context], dim=-1)
            out = {}
        else:
            level = count_level(histograms)
            corrections, alphas = zip(*(critic(z, y[:, :len(TARGETS)], level)
                                        for critic, z, y in zip(self.critics, features, raw)))
            predictions = raw_predictions + torch.stack(corrections, dim=1)
            alpha = torch.stack(alphas, dim=1)                          # [B, E, 2, K]
            strength = alpha.sum(-1)
            probs = alpha / strength[..., None]
            uncertainty = self.config.n_quality / strength
            quality = (probs * self.class_values).sum(-1)
            expected_error = (probs * self.class_errors).sum(-1)
            decider_in = torch.cat([predictions.flatten(1), quality.flatten(1), uncertainty.flatten(1), context, level],
                                   dim=-1)
            out = {"alpha": alpha, "uncertainty": uncertainty, "quality": quality, "expected_error": expected_error}
        weights = torch.stack([gate(decider_in).weights for gate in self.gates], dim=1)   # [B, 2, E]
        fused = torch.stack([SoftGate.mix(predictions[:, :, j], weights[:, j]) for j in range(len(TARGETS))], dim=-1)
        result = EvidenceMoEOutput(fused, predictions, raw_predictions, nuisance, weights)
        if out:
            result.alpha, result.uncertainty, result.quality = out["alpha"], out["uncertainty"], out["quality"]
            result.fused_uncertainty = (weights * out["uncertainty"].transpose(1, 2)).sum(-1)
            result.fused_error = (weights * out["expected_error"].transpose(1, 2)).sum(-1)
        return result

    def physical_parameters(self, output: EvidenceMoEOutput) -> dict[str, Tensor]:
        """Final depth (mm) and lifetime (ns) with the global expert's ``mu_a``, ``mu_s'`` (1/mm)."""
        targets = denormalise_targets(output.prediction, self.target_ranges)
        nuisance = denormalise_targets(output.nuisance, self.nuisance_ranges).exp()
        return {"depth_mm": targets[:, 0], "lifetime_ns": targets[:, 1],
                "mu_a_per_mm": nuisance[:, 0], "mu_sp_per_mm": nuisance[:, 1]}


@dataclass(frozen=True)
class SingleRegressorConfig(Config):
    """One CNN over the whole histogram (the single-regressor baseline)."""

    simulation: SimulationConfig = TRAINING_SIMULATION
    channels: int = 16
    hidden: int = 128


class SingleRegressor(nn.Module):
    """Baseline: a single :class:`TemporalExpert` over all bins at full resolution, wider."""

    def __init__(self, config: SingleRegressorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SingleRegressorConfig()
        self.net = TemporalExpert((0, config.simulation.n_bins), len(TARGETS), channels=config.channels, hidden=config.hidden)
        self.register_buffer("irf", irf_histogram(config.simulation), persistent=False)
        self.reference_peak = float(peak_position(self.irf))
        self.register_buffer("target_ranges", config.simulation.label_ranges(), persistent=False)

    def forward(self, histograms: Tensor, irf: Tensor | None = None) -> Tensor:
        """As :meth:`EvidenceMoE.forward`: ``irf`` defaults to the nominal one."""
        return self.net(histogram_features(histograms, self.irf if irf is None else irf, self.reference_peak))[1]


register_model("evidence-moe-flidar", config=EvidenceMoEConfig(), weights="moe_zoo.flidar:weights/evidence_moe.safetensors",
               summary="EvidenceMoE: early/late/global experts, Dirichlet critics, decider (FLiDAR depth + lifetime)")(EvidenceMoE)
register_model("plain-moe-flidar", config=EvidenceMoEConfig(use_critics=False),
               summary="Baseline: the same three experts and decider gates without critics")(EvidenceMoE)
register_model("cnn-flidar", config=SingleRegressorConfig(), weights="moe_zoo.flidar:weights/cnn.safetensors",
               summary="Baseline: one CNN regressor over the whole histogram")(SingleRegressor)
