"""DriveMoE (Yang et al., 2025, arXiv 2505.16278) scaled to CPU, and its dense / ablated baselines.

A Drive-pi0-style VLA over features of a frozen ImageNet MobileNetV2 (``features.py``; its 1280-d
tokens are reduced by a frozen PCA to ``pca_dim``, fit on the training features):

1. **Vision MoE** (camera router): the far command waypoint ``w`` becomes a token
   ``MLP(2 -> 128 -> d)(w)``; a learnable query ``q`` cross-attends over ``[w-token; front tokens]``,
   ``z = MLP(LN(Attn(q, K, V)))`` gives 5 logits over (front-left, front-right, back, back-left,
   back-right). The chosen camera's tokens (plus a learned view embedding) join the context.
   Selection: stage 1 teacher-forces the labelled camera, stage 2 mixes all five with
   ``gumbel_softmax(z, tau=1, hard=True)`` (straight-through), inference takes ``argmax z``.
2. **Context** ("VLM" stand-in): front camera at t and t-1, the chosen camera, the command text
   (MiniLM sentence embedding, projected), 5 proprioception tokens; a small Transformer encoder.
3. **Action expert** (flow matching, pi0 joint attention): 10 noisy waypoint tokens attend to
   ``[context; actions]`` in every layer. The last ``moe_layers`` layers replace the FFN with
   **Action MoE**: 1 shared GeGLU expert (always on) + 7 skill experts (merging, parking-exit,
   overtaking, emergency-brake, give-way, traffic-sign, normal). Router (moe-core ``TopKRouter``,
   top-3, renormalised): ``g = TopK3(softmax(W h_bar / |tau|))`` with ``h_bar`` the pre-MLP hidden
   states of the first MoE layer averaged over the 10 action tokens (one decision per trajectory),
   ``tau`` a learnable temperature; the same weights serve every MoE layer and their gradient is
   scaled by ``1 / moe_layers``. Layer output ``x + Shared(x) + sum_{e in top3} g_e Expert_e(x)``.
4. Output: velocity ``v_theta(x_t, t)`` of the 10 x 2 normalised waypoints.

``cameras``: ``"moe"`` (DriveMoE), ``"front"`` (front camera only), ``"all"`` (all six, dense);
``action_moe=False`` uses one dense GeGLU FFN of the same active width (shared + top-3 experts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moe_zoo.core import (
    Config,
    ExpertBank,
    InputError,
    RoutingResult,
    SharedExperts,
    TopKRouter,
    register_model,
)
from moe_zoo.core.dispatch import expert_ffn, make_plan
from moe_zoo.core.experts import FeedForward

N_CAMERAS, N_ROUTED, N_SKILLS = 6, 5, 7
WEIGHTS = "moe_zoo.driving:weights/drivemoe-highway.safetensors"
CAMERA_MODES = ("moe", "front", "all")


@dataclass(frozen=True)
class DriveMoEConfig(Config):
    """Sizes of the CPU-scale DriveMoE (see the module docstring)."""

    cameras: str = "moe"
    action_moe: bool = True
    feat_dim: int = 1280
    pca_dim: int = 64
    tokens_per_camera: int = 4
    text_dim: int = 384
    n_commands: int = 8
    history: int = 5
    proprio_dim: int = 10
    n_waypoints: int = 10
    d_model: int = 64
    n_heads: int = 4
    context_layers: int = 2
    action_layers: int = 4
    moe_layers: int = 2
    n_skills: int = N_SKILLS
    top_k: int = 3
    expert_hidden: int = 64
    router_hidden: int = 128

    def __post_init__(self) -> None:
        if self.cameras not in CAMERA_MODES:
            raise InputError(f"DriveMoEConfig.cameras must be one of {CAMERA_MODES}, got {self.cameras!r}")
        if not 0 <= self.moe_layers <= self.action_layers:
            raise InputError("DriveMoEConfig.moe_layers must be in [0, action_layers]")
        if self.action_moe and not (self.moe_layers >= 1 and 1 <= self.top_k <= self.n_skills):
            raise InputError("DriveMoEConfig: action_moe needs moe_layers >= 1 and 1 <= top_k <= n_skills")
        if self.d_model % self.n_heads:
            raise InputError("DriveMoEConfig.d_model must be divisible by n_heads")


@dataclass
class DriveMoEOutput:
    """``velocity [B, W, 2]``; ``camera_logits [B, 5]`` (None without the vision MoE); ``camera_choice
    [B, 5]`` (one-hot or straight-through Gumbel); ``skill_logits [B, 7]`` (divided by ``|tau|``) and
    ``routing`` (None without the action MoE)."""

    velocity: Tensor
    camera_logits: Tensor | None
    camera_choice: Tensor | None
    skill_logits: Tensor | None
    routing: RoutingResult | None


def scale_grad(x: Tensor, scale: float) -> Tensor:
    """Identity forward, gradient multiplied by ``scale``."""
    return x * scale + x.detach() * (1.0 - scale)


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding of flow time ``t in [0, 1]`` (``[B] -> [B, dim]``)."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device, dtype=t.dtype) / half)
    angles = 100.0 * t[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class CameraRouter(nn.Module):
    """Vision MoE router: a learnable query over ``[command-waypoint token; front tokens]`` -> 5 logits."""

    def __init__(self, d: int, n_heads: int, hidden: int, n_cameras: int = N_ROUTED) -> None:
        super().__init__()
        self.waypoint = nn.Sequential(nn.Linear(2, hidden), nn.GELU(), nn.Linear(hidden, d))
        self.query = nn.Parameter(torch.randn(1, 1, d) * d**-0.5)
        self.attn = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, n_cameras))

    def forward(self, command_point: Tensor, front_tokens: Tensor) -> Tensor:
        keys = torch.cat([self.waypoint(command_point)[:, None], front_tokens], dim=1)
        pooled, _ = self.attn(self.query.expand(keys.shape[0], -1, -1), keys, keys, need_weights=False)
        return self.head(self.norm(pooled[:, 0]))


def select_camera(logits: Tensor, mode: str, label: Tensor | None = None, tau: float = 1.0) -> Tensor:
    """``[B, 5]`` selection weights: ``"teacher"`` one-hot(label), ``"gumbel"`` hard Gumbel-softmax
    (straight-through gradient to the logits), ``"argmax"`` one-hot(argmax logits)."""
    if mode == "teacher":
        if label is None:
            raise InputError("select_camera: teacher forcing needs the camera labels")
        return F.one_hot(label.long(), logits.shape[-1]).to(logits.dtype)
    if mode == "gumbel":
        return F.gumbel_softmax(logits, tau=tau, hard=True)
    if mode == "argmax":
        return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    raise InputError(f"select_camera: mode must be teacher, gumbel or argmax, got {mode!r}")


class ActionLayer(nn.Module):
    """pi0-style action-expert layer: action tokens attend to ``[context; actions]``, then an FFN
    (dense GeGLU) or the action MoE (shared + routed skill experts, routing given from outside)."""

    def __init__(self, cfg: DriveMoEConfig, moe: bool) -> None:
        super().__init__()
        d = cfg.d_model
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, cfg.n_heads, batch_first=True)
        self.moe = moe
        if moe:
            self.shared = SharedExperts(d, cfg.expert_hidden, 1, activation="geglu")
            self.experts = ExpertBank(cfg.n_skills, d, cfg.expert_hidden, activation="geglu")
        else:
            # dense layers: the active width of an MoE layer (shared + top-k experts)
            self.ffn = FeedForward(d, cfg.expert_hidden * (1 + cfg.top_k), activation="geglu")

    def _heads(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.attn.num_heads, d // self.attn.num_heads).transpose(1, 2)

    def context_kv(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """The context's keys and values ``[B, H, L, d/H]``: constant over a trajectory's Euler steps,
        so sampling projects them once (``DriveMoE.sample``)."""
        _, w_k, w_v = self.attn.in_proj_weight.chunk(3)
        _, b_k, b_v = self.attn.in_proj_bias.chunk(3)
        return self._heads(F.linear(context, w_k, b_k)), self._heads(F.linear(context, w_v, b_v))

    def attend(self, x: Tensor, context: Tensor | None = None, kv: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """``x + MHA(LN(x), [context; LN(x)])`` (the parameters of ``self.attn``, an ``nn.MultiheadAttention``);
        ``kv = context_kv(context)`` may be given instead of ``context``."""
        h = self.norm1(x)
        k_ctx, v_ctx = kv if kv is not None else self.context_kv(context)
        q, k, v = (self._heads(t) for t in F.linear(h, self.attn.in_proj_weight, self.attn.in_proj_bias).chunk(3, -1))
        out = F.scaled_dot_product_attention(q, torch.cat([k_ctx, k], dim=2), torch.cat([v_ctx, v], dim=2))
        return x + self.attn.out_proj(out.transpose(1, 2).flatten(2))

    def feed_forward(self, x: Tensor, routing: RoutingResult | None) -> Tensor:
        h = self.norm2(x)
        if not self.moe:
            return x + self.ffn(h)
        b, w, d = h.shape
        flat = h.reshape(b * w, d)
        # one routing decision per trajectory, applied to each of its W action tokens
        indices = routing.indices.repeat_interleave(w, dim=0)
        weights = routing.weights.repeat_interleave(w, dim=0)
        routed = expert_ffn(flat, self.experts, make_plan(indices, weights, self.experts.n_experts))
        return x + self.shared(h) + routed.reshape(b, w, d)


class DriveMoE(nn.Module):
    """DriveMoE and its dense / ablated variants (``cameras``, ``action_moe``); see the module docstring."""

    def __init__(self, config: DriveMoEConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or DriveMoEConfig()
        d = cfg.d_model
        # frozen PCA of the backbone's 1280-d tokens (fit on the training features; see training.py)
        self.register_buffer("feat_mean", torch.zeros(cfg.feat_dim))
        self.register_buffer("feat_basis", torch.eye(cfg.feat_dim, cfg.pca_dim))
        self.visual = nn.Sequential(nn.LayerNorm(cfg.pca_dim), nn.Linear(cfg.pca_dim, d))
        self.view_embed = nn.Parameter(torch.zeros(N_CAMERAS + 1, cfg.tokens_per_camera, d))  # +1: front at t-1
        nn.init.normal_(self.view_embed, std=0.02)
        self.text = nn.Linear(cfg.text_dim, d)
        self.proprio = nn.Linear(cfg.proprio_dim, d)
        self.proprio_pos = nn.Parameter(torch.randn(cfg.history, d) * 0.02)
        self.command_point = nn.Sequential(nn.Linear(2, cfg.router_hidden), nn.GELU(), nn.Linear(cfg.router_hidden, d))
        layer = nn.TransformerEncoderLayer(d, cfg.n_heads, 2 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.context = nn.TransformerEncoder(layer, cfg.context_layers, enable_nested_tensor=False)
        self.camera_router = CameraRouter(d, cfg.n_heads, cfg.router_hidden) if cfg.cameras == "moe" else None
        self.action_in = nn.Linear(2, d)
        self.action_pos = nn.Parameter(torch.randn(cfg.n_waypoints, d) * 0.02)
        self.time = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        first_moe = cfg.action_layers - cfg.moe_layers if cfg.action_moe else cfg.action_layers
        self.layers = nn.ModuleList(ActionLayer(cfg, moe=i >= first_moe) for i in range(cfg.action_layers))
        self.first_moe = first_moe
        if cfg.action_moe:
            self.skill_router = TopKRouter(d, cfg.n_skills, cfg.top_k, renormalize=True)
            self.log_temperature = nn.Parameter(torch.zeros(()))   # |tau| = exp(.) > 0, starts at 1
        self.action_out = nn.Linear(d, 2)
        # normalisation statistics (1st / 99th percentiles of the training set), set by train.py
        self.register_buffer("proprio_lo", -torch.ones(cfg.proprio_dim))
        self.register_buffer("proprio_hi", torch.ones(cfg.proprio_dim))
        self.register_buffer("waypoint_lo", -torch.ones(cfg.n_waypoints, 2))
        self.register_buffer("waypoint_hi", torch.ones(cfg.n_waypoints, 2))
        self.register_buffer("point_scale", torch.tensor(30.0))
        self.register_buffer("command_table", torch.zeros(cfg.n_commands, cfg.text_dim))

    # -- normalisation -------------------------------------------------------------------
    def normalise_waypoints(self, wp: Tensor) -> Tensor:
        return 2 * (wp - self.waypoint_lo) / (self.waypoint_hi - self.waypoint_lo) - 1

    def denormalise_waypoints(self, wp: Tensor) -> Tensor:
        return (wp.clamp(-1, 1) + 1) / 2 * (self.waypoint_hi - self.waypoint_lo) + self.waypoint_lo

    def normalise_proprio(self, history: Tensor) -> Tensor:
        return (2 * (history - self.proprio_lo) / (self.proprio_hi - self.proprio_lo) - 1).clamp(-3, 3)

    def reduce(self, feats: Tensor) -> Tensor:
        """Backbone tokens ``[..., 1280]`` -> ``[..., pca_dim]`` (the frozen PCA)."""
        return (feats.float() - self.feat_mean) @ self.feat_basis

    # -- context -------------------------------------------------------------------------
    def camera_tokens(self, feats: Tensor, view: int) -> Tensor:
        """Reduced tokens ``[B, P, pca_dim] -> [B, P, d]`` plus the view's embedding (view 6 = front at t-1)."""
        return self.visual(feats) + self.view_embed[view]

    def route_cameras(self, front: Tensor, command_point: Tensor) -> Tensor:
        return self.camera_router(command_point / self.point_scale, front)

    def encode_context(self, front: Tensor, front_prev: Tensor, others: Tensor | None, choice: Tensor | None,
                       command: Tensor, command_point: Tensor, history: Tensor) -> Tensor:
        """Context tokens. ``front``/``front_prev`` ``[B, P, feat]``; ``others`` ``[B, 5, P, feat]``:
        with ``choice [B, 5]`` (vision MoE) the chosen camera, else (``cameras="all"``) all five."""
        tokens = [self.camera_tokens(front, 0), self.camera_tokens(front_prev, N_CAMERAS)]
        if others is not None:
            views = self.visual(others) + self.view_embed[1:N_CAMERAS][None]          # [B, 5, P, d]
            if choice is not None:
                tokens.append(torch.einsum("bc,bcpd->bpd", choice, views))
            else:
                tokens.append(views.flatten(1, 2))
        tokens.append(self.text(self.command_table[command])[:, None])
        tokens.append(self.command_point(command_point / self.point_scale)[:, None])
        tokens.append(self.proprio(self.normalise_proprio(history)) + self.proprio_pos)
        return self.context(torch.cat(tokens, dim=1))

    # -- action expert -------------------------------------------------------------------
    def skill_routing(self, hidden: Tensor) -> tuple[RoutingResult, Tensor]:
        """One routing per trajectory: ``TopK3(softmax(W mean_w(h) / |tau|))`` with moe-core's router
        (scaling the input by ``1/|tau|`` scales the bias-free linear logits by the same factor)."""
        pooled = hidden.mean(dim=1) / self.log_temperature.exp()
        routing = self.skill_router(pooled)
        weights = scale_grad(routing.weights, 1.0 / self.config.moe_layers)
        routing = RoutingResult(routing.indices, weights, routing.probs, routing.logits, routing.expert_counts,
                                routing.experts_per_token)
        return routing, routing.logits

    def time_features(self, t: Tensor) -> Tensor:
        """``[B] -> [B, d]``: the flow time's embedding through its MLP."""
        return self.time(timestep_embedding(t, self.config.d_model))

    def velocity(self, x_t: Tensor, t: Tensor, context: Tensor | None = None, *,
                 kv: list[tuple[Tensor, Tensor]] | None = None,
                 time_features: Tensor | None = None) -> tuple[Tensor, Tensor | None, RoutingResult | None]:
        """``v_theta(x_t, t)`` for ``x_t [B, W, 2]``, ``t [B]``; also the skill logits and routing.
        ``kv`` (per layer ``ActionLayer.context_kv(context)``) and ``time_features`` (``time_features(t)``)
        may be precomputed; they give the same result."""
        time = time_features if time_features is not None else self.time_features(t)
        x = self.action_in(x_t) + self.action_pos + time[:, None]
        routing = skill_logits = None
        for i, layer in enumerate(self.layers):
            x = layer.attend(x, context, kv[i] if kv is not None else None)
            if i == self.first_moe and self.config.action_moe:
                routing, skill_logits = self.skill_routing(layer.norm2(x))
            x = layer.feed_forward(x, routing)
        return self.action_out(x), skill_logits, routing

    def forward(self, batch: dict[str, Tensor], x_t: Tensor, t: Tensor, camera_mode: str = "argmax") -> DriveMoEOutput:
        """Training / analysis forward on a batch of reduced features (``data.FeatureSet.batch``)."""
        feats = batch["features"]                                     # [B, 6, P, pca_dim]
        if feats.dim() != 4 or feats.shape[1] != N_CAMERAS or feats.shape[-1] != self.config.pca_dim:
            raise InputError(f"DriveMoE: expected reduced camera features [B, {N_CAMERAS}, P, {self.config.pca_dim}], "
                             f"got {tuple(feats.shape)}")
        front, others = feats[:, 0], feats[:, 1:]
        camera_logits = choice = None
        if self.config.cameras == "moe":
            camera_logits = self.route_cameras(self.camera_tokens(front, 0), batch["command_point"])
            choice = select_camera(camera_logits, camera_mode, batch.get("camera"))
        elif self.config.cameras == "front":
            others = None
        context = self.encode_context(front, batch["front_prev"], others, choice, batch["command"],
                                      batch["command_point"], batch["history"])
        velocity, skill_logits, routing = self.velocity(x_t, t, context)
        return DriveMoEOutput(velocity, camera_logits, choice, skill_logits, routing)

    @torch.inference_mode()
    def sample(self, context: Tensor, steps: int = 10, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
        """Euler integration of ``dx/dt = v_theta(x, t)`` from ``x_0 ~ N(0, I)`` at t=0 to t=1 in
        ``steps`` steps; returns normalised waypoints clipped to [-1, 1] and the skill routing probs.

        What does not change over the steps is computed once: every layer's context keys / values and
        the time features of the step grid ``t_k = k / steps``."""
        b = context.shape[0]
        x = torch.randn(b, self.config.n_waypoints, 2, generator=generator, device=context.device)
        kv = [layer.context_kv(context) for layer in self.layers]
        grid = torch.tensor([k * (1.0 / steps) for k in range(steps)], device=context.device, dtype=x.dtype)
        table = iter(self.time_features(grid)[:, None].expand(-1, b, -1))   # step k's row, consumed in order

        def field(x_: Tensor, t_: Tensor):
            return self.velocity(x_, t_, kv=kv, time_features=next(table))

        *_, (x, probs) = euler_steps(field, x, steps)
        return x.clamp(-1, 1), probs


def euler_steps(field, x: Tensor, steps: int):
    """Yield ``(x_{k+1}, skill_probs)`` for ``x_{k+1} = x_k + dt v(x_k, t_k)``, ``t_k = k dt``, ``dt = 1/steps``."""
    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    dt = 1.0 / steps
    for k in range(steps):
        t = torch.full((x.shape[0],), k * dt, device=x.device, dtype=x.dtype)
        v, _, routing = field(x, t)
        x = x + dt * v
        yield x, (routing.probs if routing is not None else None)


@dataclass(frozen=True)
class BCConfig(Config):
    """Behaviour-cloning MLP on kinematic observations -> 10 waypoints (the issue's kinematic baseline)."""

    n_agents: int = 8
    agent_dim: int = 7
    history: int = 5
    proprio_dim: int = 10
    n_commands: int = 8
    n_waypoints: int = 10
    hidden: int = 256


class BCMLP(nn.Module):
    """``MLP([agents; proprio; command point; one-hot command]) -> waypoints`` (MSE on normalised waypoints)."""

    def __init__(self, config: BCConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or BCConfig()
        d_in = cfg.n_agents * cfg.agent_dim + cfg.history * cfg.proprio_dim + 2 + cfg.n_commands
        self.net = nn.Sequential(nn.Linear(d_in, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(),
                                 nn.Linear(cfg.hidden, cfg.n_waypoints * 2))
        self.register_buffer("in_scale", torch.ones(d_in))
        self.register_buffer("waypoint_lo", -torch.ones(cfg.n_waypoints, 2))
        self.register_buffer("waypoint_hi", torch.ones(cfg.n_waypoints, 2))

    def inputs(self, batch: dict[str, Tensor]) -> Tensor:
        cfg = self.config
        x = torch.cat([batch["kinematics"].flatten(1), batch["history"].flatten(1), batch["command_point"],
                       F.one_hot(batch["command"].long(), cfg.n_commands).float()], dim=1)
        return x / self.in_scale

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.net(self.inputs(batch)).view(-1, self.config.n_waypoints, 2)

    denormalise_waypoints = DriveMoE.denormalise_waypoints
    normalise_waypoints = DriveMoE.normalise_waypoints


VARIANTS = {
    "drivemoe": (DriveMoEConfig(), "DriveMoE: camera router (1 of 5 views) + action MoE (1 shared + 7 skills, top-3)"),
    "drive-pi0-lite-front": (DriveMoEConfig(cameras="front", action_moe=False),
                             "dense Drive-pi0-lite: front camera only, dense action expert"),
    "drive-pi0-lite-all": (DriveMoEConfig(cameras="all", action_moe=False),
                           "dense Drive-pi0-lite: all six cameras, dense action expert"),
    "drivemoe-no-vision-moe": (DriveMoEConfig(cameras="front"), "DriveMoE without the vision MoE (front camera only)"),
    "drivemoe-no-action-moe": (DriveMoEConfig(action_moe=False), "DriveMoE without the action MoE (dense FFN)"),
}
for _name, (_config, _summary) in VARIANTS.items():
    register_model(_name, config=_config, weights=WEIGHTS if _name == "drivemoe" else None, summary=_summary)(DriveMoE)
register_model("driving-bc-mlp", config=BCConfig(), summary="behaviour-cloning MLP on kinematic observations")(BCMLP)
