"""The parts every multi-task model here is built from: a batched MLP bank and one multi-gate level.

:class:`MLPBank` runs ``E`` independent MLPs (experts, or the per-task towers) as batched matmuls.
Layer ``l`` of expert ``e`` computes ``h_{l+1} = act(norm(h_l W_l[e] + b_l[e]))`` where ``norm`` is
an optional per-expert batch normalisation (HoME's expert normalisation,
``BN(z) = gamma * (z - E[z]) / sqrt(Var[z] + eps) + beta`` over the batch, each expert and unit
with its own statistics) and ``act`` is ReLU (MMoE/PLE) or Swish ``z * sigmoid(z)`` (HoME).

:class:`MultiGateLevel` is one level of a multi-gate mixture: a bank whose experts read one of
several inputs, gates that each see a subset of the experts (MMoE: every task gate sees every
expert; PLE/CGC: shared + the task's own; HoME: the hierarchy mask), HoME's optional low-rank
feature-gate on every expert input and self-gate residual over a gate's own experts. Gates are
moe-core's :class:`~moe_zoo.core.SoftGate`; feature- and self-gates come from
:mod:`moe_zoo.core.gates`.

The bank is written here rather than taken from moe-core: ``ExpertBank.forward_all`` maps
``[T, d] -> [T, E, d]`` (one FFN, output width tied to the input width, one input for all
experts), while HoME's experts need per-expert inputs (feature-gated, or read from different
meta outputs), narrower outputs and a normalisation between the projection and the activation.
Gating itself is all moe-core's (SoftGate, LowRankFeatureGate, SelfGate, SoftGate.mix).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moe_zoo.core import InputError, SoftGate
from moe_zoo.core.gates import LowRankFeatureGate, SelfGate

ACTIVATIONS = ("relu", "swish", "none")


def activate(x: Tensor, name: str) -> Tensor:
    if name == "relu":
        return F.relu(x)
    if name == "swish":
        return F.silu(x)
    return x


class MLPBank(nn.Module):
    """``E`` MLPs with widths ``d_in -> widths[0] -> ... -> widths[-1]`` run as one batched matmul per layer.

    ``forward(x)``: ``x`` is ``[T, d_in]`` (every MLP reads the same rows) or ``[E, T, d_in]`` (one
    input per MLP, expert-major, as a batched matmul reads it); returns ``[T, E, widths[-1]]``.
    ``norm=True`` batch-normalises each MLP's output before its activation, per expert and unit
    (HoME: ``Expert(x) = Swish(BN(MLP(x)))``); ``last_activation=False`` leaves the last layer
    linear (towers).
    """

    def __init__(self, n: int, d_in: int, widths: Sequence[int], *, activation: str = "relu", norm: bool = False,
                 last_activation: bool = True) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if n < 1 or d_in < 1 or not widths or min(widths) < 1:
            raise InputError(f"MLPBank needs n >= 1, d_in >= 1 and positive widths, got n={n}, d_in={d_in}, "
                             f"widths={widths}")
        if activation not in ACTIVATIONS:
            raise InputError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.n, self.d_in, self.widths, self.activation = n, d_in, widths, activation
        dims = (d_in, *widths)
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(n, a, b)) for a, b in pairwise(dims))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(n, 1, b)) for b in widths)
        self.norm = nn.BatchNorm1d(n * widths[-1]) if norm else None
        self.last_activation = last_activation
        self.reset_parameters()

    @property
    def d_out(self) -> int:
        return self.widths[-1]

    def reset_parameters(self) -> None:
        """Each MLP initialised like ``nn.Linear`` (uniform weights and biases, bound ``1/sqrt(fan_in)``)."""
        for weight, bias in zip(self.weights, self.biases):
            bound = 1.0 / math.sqrt(weight.shape[1])
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if not ((x.dim() == 2 and x.shape[1] == self.d_in) or (x.dim() == 3 and x.shape[0] == self.n
                                                                and x.shape[2] == self.d_in)):
            raise InputError(f"MLPBank: expected [T, {self.d_in}] or [{self.n}, T, {self.d_in}], got {tuple(x.shape)}")
        rows = x.shape[0] if x.dim() == 2 else x.shape[1]
        last = len(self.weights) - 1
        h = x
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            if h.dim() == 2:  # shared input: one GEMM against all experts' weights, then expert-major
                h = (h @ weight.transpose(0, 1).reshape(self.d_in, -1)).view(rows, self.n, -1).transpose(0, 1)
                h = h + bias
            else:
                h = torch.baddbmm(bias, h, weight)
            if i == last and self.norm is not None:
                h = self.norm(h.transpose(0, 1).reshape(rows, -1)).view(rows, self.n, -1).transpose(0, 1)
            if i < last or self.last_activation:
                h = activate(h, self.activation)
        return h.transpose(0, 1)

    def extra_repr(self) -> str:
        return (f"n={self.n}, d_in={self.d_in}, widths={self.widths}, activation={self.activation}, "
                f"norm={self.norm is not None}")


@dataclass(frozen=True)
class GateSpec:
    """One gate of a level: it reads input ``source`` and mixes the experts in ``experts``.

    ``own`` lists the gate's own experts (a subset of ``experts``): with self-gates on, their
    self-gated mixture is added as a residual.
    """

    name: str
    source: int
    experts: tuple[int, ...]
    own: tuple[int, ...] = ()


@dataclass(frozen=True)
class ExpertGroup:
    """``size`` experts named ``name`` that all read input ``source`` (shared, a category, a task)."""

    name: str
    size: int
    source: int


@dataclass
class LevelOutput:
    """A level's gate outputs ``[T, d]`` (one per gate) and what the diagnostics look at."""

    outputs: list[Tensor]
    expert_outputs: Tensor          # [T, E, d]
    gate_weights: dict[str, Tensor]  # gate name -> [T, len(spec.experts)]


class MultiGateLevel(nn.Module):
    """One level of multi-gate experts: ``y_g = sum_{e in S_g} w_{g,e}(x_g) E_e(x_{src(e)}) [+ self-gate]``.

    ``w_g = softmax(W_g x_g + b_g)`` is a :class:`SoftGate` over the experts ``S_g`` that gate ``g``
    may see (the mask). With ``feature_gate_rank > 0`` expert ``e`` reads
    ``x_e * 2 sigmoid(x_e A_e B_e)`` (HoME's feature-gate); with ``self_gate`` the gate output gets
    ``+ sum_{e in own_g} s_{g,e}(x_g) E_e(x_{src(e)})`` (HoME's self-gate).
    """

    def __init__(self, d_in: int, groups: Sequence[ExpertGroup], gates: Sequence[GateSpec], widths: Sequence[int], *,
                 activation: str = "relu", norm: bool = False, feature_gate_rank: int = 0,
                 self_gate: bool = False) -> None:
        super().__init__()
        self.groups = tuple(groups)
        self.specs = tuple(gates)
        sources = [g.source for g in self.groups for _ in range(g.size)]
        n_experts = len(sources)
        if n_experts == 0:
            raise InputError("MultiGateLevel needs at least one expert")
        for spec in self.specs:
            if not spec.experts or min(spec.experts) < 0 or max(spec.experts) >= n_experts:
                raise InputError(f"gate {spec.name!r} sees experts {spec.experts}, level has {n_experts}")
            if not set(spec.own) <= set(spec.experts):
                raise InputError(f"gate {spec.name!r}: own experts {spec.own} are not among its experts")
        self.n_experts = n_experts
        self.register_buffer("sources", torch.tensor(sources), persistent=False)
        self.single_source = len(set(sources)) == 1
        self.bank = MLPBank(n_experts, d_in, widths, activation=activation, norm=norm)
        self.feature_gate = LowRankFeatureGate(d_in, n_experts, feature_gate_rank) if feature_gate_rank else None
        self.gates = nn.ModuleList(SoftGate(d_in, len(spec.experts)) for spec in self.specs)
        self.self_gates = nn.ModuleDict({spec.name: SelfGate(d_in, len(spec.own))
                                         for spec in self.specs if self_gate and spec.own})
        for spec in self.specs:
            visible = None if spec.experts == tuple(range(n_experts)) else torch.tensor(spec.experts)
            self.register_buffer(f"visible_{spec.name}", visible, persistent=False)
            own_at = torch.tensor([spec.experts.index(e) for e in spec.own], dtype=torch.long)
            self.register_buffer(f"own_at_{spec.name}", own_at, persistent=False)

    @property
    def d_out(self) -> int:
        return self.bank.d_out

    def expert_labels(self) -> list[str]:
        """``group/index`` for every expert, in bank order."""
        return [f"{g.name}/{i}" for g in self.groups for i in range(g.size)]

    def forward(self, inputs: Sequence[Tensor]) -> LevelOutput:
        if self.single_source:
            expert_in = inputs[int(self.sources[0])]
        else:  # expert-major [E, T, d]: expert e reads input sources[e]
            expert_in = torch.stack(list(inputs), 0).index_select(0, self.sources)
        if self.feature_gate is not None:
            expert_in = self.feature_gate.apply(expert_in)
        experts = self.bank(expert_in)
        outputs, weights = [], {}
        for spec, gate in zip(self.specs, self.gates):
            x = inputs[spec.source]
            w = gate(x).weights
            weights[spec.name] = w
            if spec.name in self.self_gates:  # the self-gate adds its weights on the gate's own experts
                w = w.index_add(1, getattr(self, f"own_at_{spec.name}"), self.self_gates[spec.name](x))
            visible = getattr(self, f"visible_{spec.name}")
            outputs.append(SoftGate.mix(experts if visible is None else experts.index_select(1, visible), w))
        return LevelOutput(outputs, experts, weights)
