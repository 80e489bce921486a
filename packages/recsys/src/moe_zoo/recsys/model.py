"""Multi-task models on one feature pipeline: shared-bottom, MMoE, PLE (CGC) and HoME.

Every model embeds the categorical fields and appends the numeric features,
``v = [emb(f_1); ...; emb(f_F); numeric]``, turns ``v`` into one representation per task, and sends
each through its own tower ``y_t = Tower_t(h_t)`` (an MLP, logit for binary tasks, value for
regression). They differ only in how ``h_t`` is made:

- Shared-bottom: ``h_t = MLP(v)`` for every task.
- MMoE (Ma et al. 2018): ``h_t = sum_i g_t(v)_i E_i(v)``, ``g_t = softmax(W_t v)``, every expert shared.
- PLE (Tang et al. 2020): CGC levels; task ``t``'s gate sees the shared experts and ``t``'s own,
  non-final levels also have a shared gate over all experts; level ``l+1`` reads level ``l``'s
  outputs (task experts read their task's, shared experts the shared one). One level = CGC.
- HoME (Wang et al. 2024): see :class:`HoME`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from moe_zoo.core import Config, InputError, register_model
from moe_zoo.recsys.experts import ExpertGroup, GateSpec, LevelOutput, MLPBank, MultiGateLevel
from moe_zoo.recsys.schema import FeatureSchema

TASK_KINDS = ("binary", "regression")


@dataclass(frozen=True)
class RecsysConfig(Config):
    """What every model shares: the tasks, the input fields and the expert/tower widths."""

    tasks: tuple[str, ...] = ("click", "like", "five_star")
    task_kinds: tuple[str, ...] = ("binary", "binary", "binary")
    task_groups: tuple[int, ...] = (0, 1, 1)
    cardinalities: tuple[int, ...] = (16, 16)
    n_numeric: int = 4
    embed_dim: int = 8
    expert_widths: tuple[int, ...] = (64, 32)
    tower_widths: tuple[int, ...] = (32,)
    schema: FeatureSchema | None = None  # raw-row encoding (set by training; needed by predict on rows)

    def __post_init__(self) -> None:
        n = len(self.tasks)
        if n == 0 or len(self.task_kinds) != n or len(self.task_groups) != n:
            raise InputError(f"tasks, task_kinds and task_groups must have the same non-zero length, got "
                             f"{len(self.tasks)}, {len(self.task_kinds)}, {len(self.task_groups)}")
        bad = [k for k in self.task_kinds if k not in TASK_KINDS]
        if bad:
            raise InputError(f"task_kinds must be in {TASK_KINDS}, got {bad}")
        if len(set(self.tasks)) != n or not all(t.isidentifier() for t in self.tasks):
            raise InputError(f"task names must be distinct identifiers, got {self.tasks}")
        if sorted(set(self.task_groups)) != list(range(max(self.task_groups) + 1)):
            raise InputError(f"task_groups must number the groups 0..C-1, got {self.task_groups}")
        if not self.cardinalities and self.n_numeric < 1:
            raise InputError("a model needs categorical fields (cardinalities) or numeric features")
        if any(c < 1 for c in self.cardinalities) or self.embed_dim < 1:
            raise InputError("cardinalities and embed_dim must be >= 1")
        if self.schema is not None and (self.schema.cardinalities != tuple(self.cardinalities)
                                        or len(self.schema.numeric) != self.n_numeric):
            raise InputError("schema does not match cardinalities / n_numeric")

    @property
    def input_dim(self) -> int:
        return len(self.cardinalities) * self.embed_dim + self.n_numeric


@dataclass
class ModelOutput:
    """Raw outputs ``[T, K]`` (logits for binary tasks, values for regression) and the levels' internals."""

    logits: Tensor
    levels: list[tuple[str, MultiGateLevel | None, LevelOutput]] = field(default_factory=list)


class FeatureEmbedding(nn.Module):
    """``v = [emb_1(c_1); ...; emb_F(c_F); numeric]`` with one table for all fields (offset ids)."""

    def __init__(self, cardinalities: Sequence[int], embed_dim: int, n_numeric: int) -> None:
        super().__init__()
        self.n_fields, self.n_numeric = len(cardinalities), n_numeric
        offsets = torch.tensor([0, *cardinalities[:-1]], dtype=torch.long).cumsum(0) if cardinalities else None
        self.register_buffer("offsets", offsets, persistent=False)
        self.register_buffer("cardinalities", torch.tensor(list(cardinalities), dtype=torch.long), persistent=False)
        self.table = nn.Embedding(sum(cardinalities), embed_dim) if cardinalities else None
        if self.table is not None:
            nn.init.normal_(self.table.weight, std=0.05)

    def forward(self, categorical: Tensor, numeric: Tensor) -> Tensor:
        if categorical.dim() != 2 or categorical.shape[1] != self.n_fields:
            raise InputError(f"categorical: expected [T, {self.n_fields}] ids, got {tuple(categorical.shape)}")
        if numeric.dim() != 2 or numeric.shape[1] != self.n_numeric or numeric.shape[0] != categorical.shape[0]:
            raise InputError(f"numeric: expected [{categorical.shape[0]}, {self.n_numeric}], got {tuple(numeric.shape)}")
        if self.table is None:
            return numeric
        if categorical.numel() and (categorical.min() < 0 or (categorical >= self.cardinalities).any()):
            raise InputError("categorical: an id is outside its field's vocabulary")
        emb = self.table(categorical + self.offsets).flatten(1)
        return torch.cat([emb, numeric], 1) if self.n_numeric else emb


class MultiTaskModel(nn.Module):
    """Embedding + a task-representation body (subclass) + one tower per task."""

    config: RecsysConfig

    def __init__(self, config: RecsysConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = FeatureEmbedding(config.cardinalities, config.embed_dim, config.n_numeric)
        self.towers = MLPBank(len(config.tasks), config.expert_widths[-1], (*config.tower_widths, 1),
                              activation="relu", last_activation=False)

    def task_representations(self, v: Tensor) -> tuple[Tensor, list[tuple[str, MultiGateLevel | None, LevelOutput]]]:
        """``[T, K, d]`` task inputs of the towers, plus the levels for diagnostics."""
        raise NotImplementedError

    def forward(self, categorical: Tensor, numeric: Tensor) -> ModelOutput:
        v = self.embedding(categorical, numeric)
        reps, levels = self.task_representations(v)
        return ModelOutput(self.towers(reps.transpose(0, 1)).squeeze(-1), levels)

    @torch.no_grad()
    def init_output_bias(self, prior: Sequence[float]) -> None:
        """Start every tower at its task's prior: ``b_t = logit(base rate)`` (binary) or the label mean."""
        bias = self.towers.biases[-1]
        bias.copy_(torch.as_tensor(list(prior), dtype=bias.dtype).view_as(bias))


@dataclass(frozen=True)
class SharedBottomConfig(RecsysConfig):
    """Shared-bottom: one MLP of ``expert_widths`` for all tasks."""


class SharedBottom(MultiTaskModel):
    """Shared-bottom multi-task baseline: ``y_t = Tower_t(MLP(v))`` (Caruana 1997)."""

    def __init__(self, config: SharedBottomConfig | None = None) -> None:
        config = config or SharedBottomConfig()
        super().__init__(config)
        self.bottom = MLPBank(1, config.input_dim, config.expert_widths)

    def task_representations(self, v):
        bottom = self.bottom(v)
        levels = [("bottom", None, LevelOutput([], bottom, {}))]
        return bottom.expand(-1, len(self.config.tasks), -1), levels


@dataclass(frozen=True)
class MMoEConfig(RecsysConfig):
    n_experts: int = 8


class MMoE(MultiTaskModel):
    """Multi-gate mixture of experts: ``h_t = sum_i softmax(W_t v)_i ReLU(MLP_i(v))`` (Ma et al. 2018)."""

    def __init__(self, config: MMoEConfig | None = None) -> None:
        config = config or MMoEConfig()
        super().__init__(config)
        experts = tuple(range(config.n_experts))
        self.level = MultiGateLevel(config.input_dim, [ExpertGroup("shared", config.n_experts, 0)],
                                    [GateSpec(t, 0, experts) for t in config.tasks], config.expert_widths)

    def task_representations(self, v):
        out = self.level([v])
        return torch.stack(out.outputs, 1), [("experts", self.level, out)]


@dataclass(frozen=True)
class PLEConfig(RecsysConfig):
    n_shared_experts: int = 2
    n_task_experts: int = 2
    n_levels: int = 1


def _ranges(sizes: Sequence[int]) -> list[tuple[int, ...]]:
    """Consecutive index ranges for groups of the given sizes."""
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return [tuple(range(s, s + n)) for s, n in zip(starts, sizes)]


class PLE(MultiTaskModel):
    """Progressive layered extraction: stacked CGC levels (Tang et al. 2020); ``n_levels=1`` is CGC.

    CGC: ``h_t = sum_{e in shared + own_t} softmax(W_t x_t)_e E_e(x_{src(e)})``; a shared gate
    over all experts feeds the shared experts of the next level.
    """

    def __init__(self, config: PLEConfig | None = None) -> None:
        config = config or PLEConfig()
        super().__init__(config)
        k = len(config.tasks)
        groups = [ExpertGroup("shared", config.n_shared_experts, k)]
        groups += [ExpertGroup(t, config.n_task_experts, i) for i, t in enumerate(config.tasks)]
        ranges = _ranges([g.size for g in groups])
        levels = []
        for level in range(config.n_levels):
            specs = [GateSpec(t, i, ranges[0] + ranges[i + 1]) for i, t in enumerate(config.tasks)]
            if level < config.n_levels - 1:
                specs.append(GateSpec("shared", k, tuple(range(sum(g.size for g in groups)))))
            d_in = config.input_dim if level == 0 else config.expert_widths[-1]
            levels.append(MultiGateLevel(d_in, groups, specs, config.expert_widths))
        self.levels = nn.ModuleList(levels)

    def task_representations(self, v):
        inputs = [v] * (len(self.config.tasks) + 1)
        record = []
        for i, level in enumerate(self.levels):
            out = level(inputs)
            record.append((f"level{i}", level, out))
            inputs = out.outputs
        return torch.stack(inputs[: len(self.config.tasks)], 1), record


@dataclass(frozen=True)
class HoMEConfig(RecsysConfig):
    """HoME sizes and the switches of its three fixes (each can be turned off for the ablation)."""

    n_shared_meta_experts: int = 2
    n_category_meta_experts: int = 1
    n_shared_experts: int = 1
    n_category_experts: int = 1
    n_task_experts: int = 1
    expert_norm: bool = True        # fix 1: per-expert BatchNorm ...
    swish: bool = True              # ... and Swish instead of ReLU
    hierarchy: bool = True          # fix 2: meta-category level + hierarchy mask
    feature_gate: bool = True       # fix 3a: low-rank feature-gate on every expert input
    feature_gate_rank: int = 8
    self_gate: bool = True          # fix 3b: self-gate residual over a task's own experts


class HoME(MultiTaskModel):
    """Hierarchy of multi-gate experts (Wang et al. 2024, arXiv 2408.05430).

    Tasks are grouped into meta-categories ``c`` (``config.task_groups``; Kuaishou: watch-time vs
    interaction tasks). Experts are ``Expert(x) = Swish(BN(MLP(x)))`` (fix 1).

    Level 1 (meta, fix 2) on ``v``: global shared meta experts ``S`` and per-category meta experts
    ``M_c``. ``m_c = sum_{e in S + M_c} Gate_c(v)_e E_e(v) [+ SelfGate_c(v) . M_c(v)]`` for each
    category and ``m_shared = sum_{e in S + all M} Gate_shared(v)_e E_e(v)``.

    Level 2 (tasks): shared experts read ``m_shared``; category-``c`` experts and the experts of
    every task ``t`` in ``c`` read ``m_c``. Task ``t``'s gate reads ``m_c`` and sees only the shared,
    its category's and its own experts (the hierarchy mask):
    ``h_t = sum_{e in S2 + C2_c + T_t} Gate_t(m_c)_e E_e [+ SelfGate_t(m_c) . T_t(m_c)]``.

    Fix 3: every expert reads ``x_e * 2 sigmoid(x_e A_e B_e)`` (feature-gate) and each gate adds the
    self-gated mixture of its own experts (self-gate).

    ``hierarchy=False`` (ablation of fix 2) drops the meta level and the mask: one level on ``v``
    whose shared pool also takes the category experts (``n_shared + C * n_category`` shared
    experts, every task gate sees all of them plus its own), i.e. CGC with HoME's other fixes.
    """

    def __init__(self, config: HoMEConfig | None = None) -> None:
        config = config or HoMEConfig()
        super().__init__(config)
        n_cat = max(config.task_groups) + 1
        self.n_categories = n_cat
        expert = {"norm": config.expert_norm,
                  "activation": "swish" if config.swish else "relu",
                  "feature_gate_rank": config.feature_gate_rank if config.feature_gate else 0,
                  "self_gate": config.self_gate}
        self.meta = self._meta_level(config, n_cat, expert) if config.hierarchy else None
        self.task_level = self._task_level(config, n_cat, expert)

    @staticmethod
    def _meta_level(config: HoMEConfig, n_cat: int, expert: dict) -> MultiGateLevel:
        groups = [ExpertGroup("shared_meta", config.n_shared_meta_experts, 0)]
        groups += [ExpertGroup(f"category{c}_meta", config.n_category_meta_experts, 0) for c in range(n_cat)]
        ranges = _ranges([g.size for g in groups])
        specs = [GateSpec(f"category{c}", 0, ranges[0] + ranges[c + 1], ranges[c + 1]) for c in range(n_cat)]
        specs.append(GateSpec("shared", 0, tuple(range(sum(g.size for g in groups)))))
        return MultiGateLevel(config.input_dim, groups, specs, config.expert_widths, **expert)

    @staticmethod
    def _task_level(config: HoMEConfig, n_cat: int, expert: dict) -> MultiGateLevel:
        # inputs: [m_category0, ..., m_category{C-1}, m_shared] (or v for all of them without the hierarchy)
        n_category = config.n_category_experts if config.hierarchy else 0
        n_shared = config.n_shared_experts + (0 if config.hierarchy else n_cat * config.n_category_experts)
        groups = [ExpertGroup("shared", n_shared, n_cat)]
        groups += [ExpertGroup(f"category{c}", n_category, c) for c in range(n_cat) if n_category]
        groups += [ExpertGroup(t, config.n_task_experts, c) for t, c in zip(config.tasks, config.task_groups)]
        ranges = _ranges([g.size for g in groups])
        shared = ranges[0]
        categories = ranges[1:1 + n_cat] if n_category else [()] * n_cat
        tasks = ranges[1 + n_cat:] if n_category else ranges[1:]
        specs = [GateSpec(t, c, shared + categories[c] + tasks[i], tasks[i])
                 for i, (t, c) in enumerate(zip(config.tasks, config.task_groups))]
        d_in = config.expert_widths[-1] if config.hierarchy else config.input_dim
        return MultiGateLevel(d_in, groups, specs, config.expert_widths, **expert)

    def task_representations(self, v):
        record = []
        if self.meta is not None:
            meta = self.meta([v])
            record.append(("meta", self.meta, meta))
            inputs = meta.outputs
        else:
            inputs = [v] * (self.n_categories + 1)
        out = self.task_level(inputs)
        record.append(("tasks", self.task_level, out))
        return torch.stack(out.outputs, 1), record


MODELS: dict[str, tuple[type[MultiTaskModel], type[RecsysConfig]]] = {
    "shared-bottom": (SharedBottom, SharedBottomConfig),
    "mmoe": (MMoE, MMoEConfig),
    "ple": (PLE, PLEConfig),
    "home": (HoME, HoMEConfig),
}


def build_model(kind: str, **config_fields) -> MultiTaskModel:
    """``build_model("home", tasks=..., cardinalities=..., ...)``: a model of ``kind`` from config fields."""
    if kind not in MODELS:
        raise InputError(f"model must be one of {sorted(MODELS)}, got {kind!r}")
    cls, config_cls = MODELS[kind]
    model = cls(config_cls(**config_fields))
    model.registry_name = f"recsys-{kind}"  # type: ignore[assignment]
    return model


WEIGHTS = "moe_zoo.recsys:weights/home_movielens.safetensors"
register_model("recsys-home", config=HoMEConfig(), weights=WEIGHTS,
               summary="HoME hierarchy of multi-gate experts (MovieLens-100K click/like/five-star weights)")(HoME)
register_model("recsys-mmoe", config=MMoEConfig(), summary="MMoE multi-gate mixture of experts")(MMoE)
register_model("recsys-ple", config=PLEConfig(), summary="PLE / CGC progressive layered extraction")(PLE)
register_model("recsys-shared-bottom", config=SharedBottomConfig(), summary="shared-bottom multi-task MLP")(
    SharedBottom)
