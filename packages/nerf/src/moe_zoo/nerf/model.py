"""Switch-NeRF++ (heterogeneous mixture of hash experts, hash gate) and the baselines it is compared with.

Switch-NeRF++ field for a sample at contracted unit-cube position ``u`` with view direction ``d``
seen from image ``k``::

    p     = Softmax(W_g LN(MLP(Hash_gate(u))))                 gate, E probabilities (fp32, no bias)
    i     = argmax_e p_e                                        top-1 expert
    h     = p_i * E_i(u),   E_i(u) = MLP_i(Hash_i(u))           expert i: its own hash grid + tiny MLP
    sigma = exp(h W_sigma)                                      unified head: density
    rgb   = sigmoid(MLP_c([h, PE_4(d), a_k]))                   unified head: view-dependent colour

The experts differ in resolution range, table size and MLP width (heterogeneous). Routing (top-1
softmax router), dispatch (rows sorted by expert, each expert run once on its block) and the
balance loss ``L = E * sum_e f_e P_e`` are moe-core's (:class:`~moe_zoo.core.TopKRouter`,
:class:`~moe_zoo.core.HeterogeneousExperts`, :func:`~moe_zoo.core.load_balancing_loss`).

Baselines (same head, same rendering): :class:`SwitchNeRFv1` (positional encoding, MLP gate and
MLP experts with a residual, as in the ICLR'23 paper, narrower for CPU), :class:`HashNeRF` (one
hash grid of the same parameter count, Instant-NGP style) and the homogeneous mixture
(``switch-nerf-homogeneous``: Switch-NeRF++ with every expert alike).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from moe_zoo.core import (
    Config,
    HeterogeneousExperts,
    InputError,
    RoutingResult,
    TopKRouter,
    load_balancing_loss,
    register_model,
)
from moe_zoo.core.checks import check_ints
from moe_zoo.nerf.hashgrid import GridSpec, HashGrids
from moe_zoo.nerf.rendering import OccupancyGrid


def positional_encoding(x: Tensor, n_freqs: int) -> Tensor:
    """NeRF's ``[x, sin(2^k x), cos(2^k x)]_{k<n}``: ``3 + 6 n`` dims for ``x [N, 3]``."""
    scales = 2.0 ** torch.arange(n_freqs, device=x.device, dtype=x.dtype)
    angles = (x[:, None, :] * scales[:, None]).reshape(x.shape[0], 3 * n_freqs)
    return torch.cat([x, angles.sin(), angles.cos()], -1)


def mlp(d_in: int, hidden: int, d_out: int, layers: int = 1) -> nn.Sequential:
    """``layers`` hidden ReLU layers of width ``hidden``, then a linear output."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(d_in if i == 0 else hidden, hidden), nn.ReLU()]
    mods.append(nn.Linear(hidden if layers else d_in, d_out))
    return nn.Sequential(*mods)


@dataclass(frozen=True)
class SceneBox(Config):
    """How world coordinates map to the contracted unit cube, and the ray interval."""

    center: tuple[float, ...] = (0.0, 0.0, 0.0)
    radius: float = 1.0
    near: float = 0.05
    far: float = 4.0
    samples: int = 48
    background: tuple[float, ...] = (0.0, 0.0, 0.0)
    occupancy_res: int = 32


@dataclass(frozen=True)
class HeadConfig(Config):
    """The unified density / colour head."""

    dir_freqs: int = 4
    appearance_dim: int = 8
    n_images: int = 1
    color_hidden: int = 64


class RadianceHead(nn.Module):
    """``sigma = act(h W_sigma)``, ``rgb = sigmoid(MLP([h, PE(d), a_k]))`` (module docstring);
    ``act`` = exp (hash models) or ReLU with N(0, 1) noise on the raw value in training (v1)."""

    def __init__(self, feature_dim: int, config: HeadConfig, density_activation: str = "exp") -> None:
        super().__init__()
        self.config, self.density_activation = config, density_activation
        self.sigma = nn.Linear(feature_dim, 1)
        self.appearance = nn.Embedding(config.n_images, config.appearance_dim)
        nn.init.zeros_(self.appearance.weight)
        self.color = mlp(feature_dim + 3 + 6 * config.dir_freqs + config.appearance_dim, config.color_hidden, 3, 2)

    def density(self, h: Tensor) -> Tensor:
        raw = self.sigma(h)[:, 0]
        if self.density_activation == "exp":  # Instant-NGP's truncated exponential, clamped for stability
            return torch.exp(raw.clamp(max=15.0))
        if self.training:  # NeRF / Switch-NeRF v1: N(0, 1) noise on the raw density while training
            raw = raw + torch.randn_like(raw)
        return torch.relu(raw)

    def appearance_code(self, image: Tensor | None, n: int, like: Tensor) -> Tensor:
        """Per-image appearance embedding; held-out views (``image=None``) use the mean of the training codes."""
        if image is None:
            return self.appearance.weight.mean(0).expand(n, -1)
        return self.appearance(image.long())

    def forward(self, h: Tensor, dirs: Tensor, image: Tensor | None) -> tuple[Tensor, Tensor]:
        code = self.appearance_code(image, h.shape[0], h)
        rgb = torch.sigmoid(self.color(torch.cat([h, positional_encoding(dirs, self.config.dir_freqs), code], -1)))
        return self.density(h), rgb


@dataclass
class FieldOutput:
    sigma: Tensor                       # [N]
    rgb: Tensor                         # [N, 3]
    routing: RoutingResult | None = None

    def aux_loss(self) -> Tensor:
        """The gate balance loss ``E * sum_e f_e P_e`` (0 for a field without a gate)."""
        if self.routing is None:
            return self.sigma.new_zeros(())
        return load_balancing_loss(self.routing)


class RoutedField(nn.Module):
    """Common part of the mixtures: gate features -> top-1 router -> experts via moe-core -> head."""

    scene: SceneBox
    router: TopKRouter
    head: RadianceHead

    def route(self, u: Tensor) -> tuple[Tensor, RoutingResult]:
        """Gate hidden features and the top-1 routing."""
        raise NotImplementedError

    def expert_input(self, u: Tensor, gate_hidden: Tensor, expert: Tensor) -> Tensor:
        """What each row's expert reads."""
        raise NotImplementedError

    def features(self, u: Tensor) -> tuple[Tensor, RoutingResult]:
        """``h = G(u)_i * E_i(u)`` for the top-1 expert ``i`` of each row, and the routing."""
        hidden, routing = self.route(u)
        top1, weight = routing.indices[:, 0], routing.weights[:, 0]
        rows = torch.arange(u.shape[0], device=u.device)
        return self.experts(self.expert_input(u, hidden, top1), rows, top1, weight), routing

    def density(self, u: Tensor) -> Tensor:
        return self.head.density(self.features(u)[0])

    def forward(self, u: Tensor, dirs: Tensor, image: Tensor | None = None) -> FieldOutput:
        h, routing = self.features(u)
        sigma, rgb = self.head(h, dirs, image)
        return FieldOutput(sigma, rgb, routing)


@dataclass(frozen=True)
class SwitchNeRFConfig(Config):
    """Switch-NeRF++: per-expert grid (``min_res``, ``max_res``, ``log2_table``) and MLP width."""

    expert_min_res: tuple[int, ...] = (8, 16, 16, 16)
    expert_max_res: tuple[int, ...] = (64, 128, 256, 512)
    expert_log2_table: tuple[int, ...] = (12, 13, 14, 15)
    expert_hidden: tuple[int, ...] = (32, 32, 64, 64)
    n_levels: int = 8
    n_features: int = 2
    gate_grid: tuple[int, ...] = (8, 64, 12)
    gate_hidden: int = 32
    feature_dim: int = 16
    head: HeadConfig = field(default_factory=HeadConfig)
    scene: SceneBox = field(default_factory=SceneBox)

    def __post_init__(self) -> None:
        n = len(self.expert_min_res)
        if n < 1 or not all(len(v) == n for v in (self.expert_max_res, self.expert_log2_table, self.expert_hidden)):
            raise InputError("SwitchNeRFConfig: expert_min_res, expert_max_res, expert_log2_table and expert_hidden "
                             f"must have the same length >= 1, got {n}, {len(self.expert_max_res)}, "
                             f"{len(self.expert_log2_table)}, {len(self.expert_hidden)}")
        if len(self.gate_grid) != 3:
            raise InputError(f"SwitchNeRFConfig.gate_grid must be (min_res, max_res, log2_table), got {self.gate_grid}")
        check_ints("SwitchNeRFConfig", self, {"n_levels": 1, "n_features": 1, "gate_hidden": 1, "feature_dim": 2})

    @property
    def n_experts(self) -> int:
        return len(self.expert_min_res)

    def grid_specs(self) -> list[GridSpec]:
        return [GridSpec(a, b, c) for a, b, c in zip(self.expert_min_res, self.expert_max_res, self.expert_log2_table)]


class HashExpertMLP(nn.Module):
    """Expert ``i``'s tiny MLP over its own hash encoding (the encoding is batched over experts)."""

    def __init__(self, d_in: int, hidden: int, d_out: int) -> None:
        super().__init__()
        self.net = mlp(d_in, hidden, d_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class SwitchNeRF(RoutedField):
    """Switch-NeRF++: hash gate + heterogeneous hash experts + unified head (module docstring)."""

    def __init__(self, config: SwitchNeRFConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SwitchNeRFConfig()
        self.scene = config.scene
        self.occupancy = OccupancyGrid(config.scene.occupancy_res)
        self.gate_grid = HashGrids([GridSpec(*config.gate_grid)], config.n_levels, config.n_features)
        self.gate_mlp = nn.Sequential(mlp(self.gate_grid.out_dim, config.gate_hidden, config.gate_hidden, 1),
                                      nn.LayerNorm(config.gate_hidden))
        self.router = TopKRouter(config.gate_hidden, config.n_experts, top_k=1, renormalize=False)
        self.grids = HashGrids(config.grid_specs(), config.n_levels, config.n_features)
        self.experts = HeterogeneousExperts(
            [HashExpertMLP(self.grids.out_dim, width, config.feature_dim) for width in config.expert_hidden],
            d_out=config.feature_dim)
        self.head = RadianceHead(config.feature_dim, config.head)
        self.kernel = "auto"  # expert encodings: "triton" (fused kernel), "torch", or "auto" (triton on CUDA)

    def route(self, u: Tensor) -> tuple[Tensor, RoutingResult]:
        hidden = self.gate_mlp(self.gate_grid(u))
        return hidden, self.router(hidden)

    def expert_input(self, u: Tensor, gate_hidden: Tensor, expert: Tensor) -> Tensor:
        """Every row encoded with its own expert's grid, all experts in one pass (one fused Triton
        launch on GPU, :mod:`moe_zoo.nerf.triton_hash`; the vectorised torch reference otherwise)."""
        if self.kernel == "triton" or (self.kernel == "auto" and u.is_cuda):
            from moe_zoo.nerf.triton_hash import encode

            return encode(self.grids, u, expert)
        return self.grids(u, expert)


@dataclass(frozen=True)
class SwitchNeRFv1Config(Config):
    """Switch-NeRF (ICLR'23): PE(12) -> Linear -> gate MLP + LN -> top-1 of E MLP experts (residual)."""

    n_experts: int = 4
    width: int = 64
    expert_layers: int = 7
    residual_at: int = 3
    xyz_freqs: int = 12
    head: HeadConfig = field(default_factory=HeadConfig)
    scene: SceneBox = field(default_factory=SceneBox)

    def __post_init__(self) -> None:
        check_ints("SwitchNeRFv1Config", self, {"n_experts": 1, "width": 1, "expert_layers": 1, "residual_at": 0, "xyz_freqs": 0})


class MLPExpert(nn.Module):
    """v1 expert: ``expert_layers`` x Linear(W, W) + ReLU, the input added back after layer ``residual_at``."""

    def __init__(self, width: int, layers: int, residual_at: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(layers))
        self.residual_at = residual_at

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for i, layer in enumerate(self.layers):
            h = torch.relu(layer(h))
            if i + 1 == self.residual_at:
                h = h + x
        return h


class SwitchNeRFv1(RoutedField):
    """Switch-NeRF v1 baseline (module docstring); density through ReLU as in NeRF."""

    def __init__(self, config: SwitchNeRFv1Config | None = None) -> None:
        super().__init__()
        self.config = config = config or SwitchNeRFv1Config()
        self.scene = config.scene
        self.occupancy = OccupancyGrid(config.scene.occupancy_res)
        w = config.width
        self.embed = nn.Linear(3 + 6 * config.xyz_freqs, w)
        self.gate_mlp = nn.Sequential(mlp(w, w, w, 1), nn.ReLU(), nn.LayerNorm(w))
        self.router = TopKRouter(w, config.n_experts, top_k=1, renormalize=False)
        self.experts = HeterogeneousExperts(
            [MLPExpert(w, config.expert_layers, config.residual_at) for _ in range(config.n_experts)], d_out=w)
        self.head = RadianceHead(w, config.head, density_activation="relu")

    def route(self, u: Tensor) -> tuple[Tensor, RoutingResult]:
        h = self.embed(positional_encoding(u * 2 - 1, self.config.xyz_freqs))
        return h, self.router(self.gate_mlp(h))

    def expert_input(self, u: Tensor, gate_hidden: Tensor, expert: Tensor) -> Tensor:
        return gate_hidden


@dataclass(frozen=True)
class HashNeRFConfig(Config):
    """One multi-resolution hash grid + MLP (Instant-NGP style), no gate."""

    min_res: int = 16
    max_res: int = 512
    log2_table: int = 15
    n_levels: int = 16
    n_features: int = 2
    hidden: int = 64
    feature_dim: int = 16
    head: HeadConfig = field(default_factory=HeadConfig)
    scene: SceneBox = field(default_factory=SceneBox)


class HashNeRF(nn.Module):
    """Single hash grid baseline with the same unified head."""

    def __init__(self, config: HashNeRFConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or HashNeRFConfig()
        self.scene = config.scene
        self.occupancy = OccupancyGrid(config.scene.occupancy_res)
        self.grids = HashGrids([GridSpec(config.min_res, config.max_res, config.log2_table)],
                               config.n_levels, config.n_features)
        self.net = mlp(self.grids.out_dim, config.hidden, config.feature_dim, 1)
        self.head = RadianceHead(config.feature_dim, config.head)

    def density(self, u: Tensor) -> Tensor:
        return self.head.density(self.net(self.grids(u)))

    def forward(self, u: Tensor, dirs: Tensor, image: Tensor | None = None) -> FieldOutput:
        sigma, rgb = self.head(self.net(self.grids(u)), dirs, image)
        return FieldOutput(sigma, rgb)


HOMOGENEOUS = SwitchNeRFConfig(expert_min_res=(16,) * 4, expert_max_res=(256,) * 4, expert_log2_table=(14,) * 4,
                               expert_hidden=(48,) * 4)

SUMMARIES = {
    "switch-nerf-pp": "Switch-NeRF++: hash gate, heterogeneous hash experts (top-1), unified head",
    "switch-nerf-homogeneous": "Ablation: Switch-NeRF++ with every hash expert alike",
    "switch-nerf-v1": "Baseline: Switch-NeRF (ICLR'23), PE + MLP gate + MLP experts, top-1",
    "hash-nerf": "Baseline: one multi-resolution hash grid + MLP (Instant-NGP style)",
}
# name -> (class, default config); the zoo registry holds the same, this is the package's own
# lookup (the registry's first use imports every installed package's models)
MODELS: dict[str, tuple[type[nn.Module], Config]] = {
    "switch-nerf-pp": (SwitchNeRF, SwitchNeRFConfig()),
    "switch-nerf-homogeneous": (SwitchNeRF, HOMOGENEOUS),
    "switch-nerf-v1": (SwitchNeRFv1, SwitchNeRFv1Config()),
    "hash-nerf": (HashNeRF, HashNeRFConfig()),
}
SHIPPED_WEIGHTS = "weights/switch_nerf_pp.safetensors"
for _name, (_cls, _config) in MODELS.items():
    register_model(_name, config=_config, summary=SUMMARIES[_name],
                   weights=f"moe_zoo.nerf:{SHIPPED_WEIGHTS}" if _name == "switch-nerf-pp" else None)(_cls)


def build_model(name: str, config: Config | None = None, **overrides) -> nn.Module:
    """``name``'s model from ``config`` (default: its registered one) with ``overrides`` applied
    (the zoo's ``create_model`` without its scan of every installed package)."""
    if name not in MODELS:
        raise InputError(f"unknown nerf model {name!r}; choose from {sorted(MODELS)}")
    cls, default = MODELS[name]
    model = cls((config or default).replace(**overrides))
    model.registry_name = name
    return model
