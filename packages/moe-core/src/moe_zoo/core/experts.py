"""Expert modules: a batched FFN bank, shared experts, zero-computation experts, and
heterogeneous experts (any list of modules)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from moe_zoo.core.activations import activate, check_activation, is_glu
from moe_zoo.core.errors import InputError


class ExpertBank(nn.Module):
    """``E`` identical FFN experts stored as one tensor per projection.

    ``w_in``: ``[E, d_model, d_in]`` with ``d_in = 2 * d_hidden`` for GLU activations (gate and up
    fused, gate first); ``w_out``: ``[E, d_hidden, d_model]``. Expert ``e`` computes
    ``FFN_e(x) = act(x W_in[e] + b_in[e]) W_out[e] + b_out[e]``, e.g. SwiGLU
    ``(silu(x W_g) * (x W_u)) W_d``.
    """

    def __init__(self, n_experts: int, d_model: int, d_hidden: int, *, activation: str = "swiglu",
                 bias: bool = False) -> None:
        super().__init__()
        if min(n_experts, d_model, d_hidden) < 1:
            raise InputError(f"ExpertBank sizes must be >= 1, got E={n_experts}, d={d_model}, f={d_hidden}")
        self.n_experts, self.d_model, self.d_hidden = n_experts, d_model, d_hidden
        self.activation = check_activation(activation)
        d_in = 2 * d_hidden if is_glu(activation) else d_hidden
        self.w_in = nn.Parameter(torch.empty(n_experts, d_model, d_in))
        self.w_out = nn.Parameter(torch.empty(n_experts, d_hidden, d_model))
        self.b_in = nn.Parameter(torch.zeros(n_experts, d_in)) if bias else None
        self.b_out = nn.Parameter(torch.zeros(n_experts, d_model)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Each expert initialised like ``nn.Linear`` (uniform, bound ``1/sqrt(fan_in)``)."""
        for weight, fan_in in ((self.w_in, self.d_model), (self.w_out, self.d_hidden)):
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(weight, -bound, bound)

    def weights_as(self, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """``(w_in, w_out, b_in, b_out)`` cast to ``dtype`` (no copy when it already matches)."""
        return tuple(None if t is None else t.to(dtype) for t in (self.w_in, self.w_out, self.b_in, self.b_out))

    def expert_forward(self, e: int, x: Tensor) -> Tensor:
        """Reference forward of a single expert on rows ``x`` ``[n, d_model]``."""
        h = x @ self.w_in[e]
        if self.b_in is not None:
            h = h + self.b_in[e]
        y = activate(h, self.activation) @ self.w_out[e]
        return y + self.b_out[e] if self.b_out is not None else y

    def forward_all(self, x: Tensor) -> Tensor:
        """Every expert on every row (dense mixtures, MMoE-style): ``[T, d] -> [T, E, d]``."""
        w_in, w_out, b_in, b_out = self.weights_as(x.dtype)
        h = torch.einsum("td,edf->etf", x, w_in)
        if b_in is not None:
            h = h + b_in[:, None]
        y = torch.bmm(activate(h, self.activation), w_out)
        if b_out is not None:
            y = y + b_out[:, None]
        return y.transpose(0, 1)

    def extra_repr(self) -> str:
        return (f"n_experts={self.n_experts}, d_model={self.d_model}, d_hidden={self.d_hidden}, "
                f"activation={self.activation}, bias={self.b_in is not None}")


class FeedForward(nn.Module):
    """A dense FFN with the bank's layout (one expert): used for shared experts and dense baselines."""

    def __init__(self, d_model: int, d_hidden: int, *, activation: str = "swiglu", bias: bool = False) -> None:
        super().__init__()
        self.activation = check_activation(activation)
        d_in = 2 * d_hidden if is_glu(activation) else d_hidden
        self.proj_in = nn.Linear(d_model, d_in, bias=bias)
        self.proj_out = nn.Linear(d_hidden, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj_out(activate(self.proj_in(x), self.activation))


class SharedExperts(nn.Module):
    """Always-on experts (DeepSeek-MoE / Qwen2-MoE), merged into one FFN of width ``n * d_hidden``.

    Output ``s(x) = FFN_shared(x)``, or ``sigmoid(x w_g) * FFN_shared(x)`` with ``gated=True``
    (Qwen2-MoE's ``shared_expert_gate``).
    """

    def __init__(self, d_model: int, d_hidden: int, n_shared: int = 1, *, activation: str = "swiglu",
                 gated: bool = False, bias: bool = False) -> None:
        super().__init__()
        self.ffn = FeedForward(d_model, d_hidden * n_shared, activation=activation, bias=bias)
        self.gate = nn.Linear(d_model, 1, bias=False) if gated else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.ffn(x)
        return out * torch.sigmoid(self.gate(x)) if self.gate is not None else out


class ZeroComputeExperts(nn.Module):
    """MoE++ zero-computation experts, addressed by ids after the FFN experts.

    Order of ids: ``n_zero`` zero/null experts (``E(x) = 0``; UniMoE-Audio's null expert), then
    ``n_copy`` copy experts (``E(x) = x``), then ``n_constant`` constant experts
    (``[a1, a2] = softmax(W_c x)``, ``E(x) = a1 x + a2 v``, ``v`` learnable). None of them
    touches the FFN bank, so a token routed only to them skips the FFN compute entirely.
    """

    def __init__(self, d_model: int, *, n_zero: int = 0, n_copy: int = 0, n_constant: int = 0) -> None:
        super().__init__()
        if min(n_zero, n_copy, n_constant) < 0:
            raise InputError("numbers of zero/copy/constant experts must be >= 0")
        self.n_zero, self.n_copy, self.n_constant = n_zero, n_copy, n_constant
        self.const_gate = nn.Linear(d_model, 2 * n_constant, bias=False) if n_constant else None
        self.const_value = nn.Parameter(torch.randn(n_constant, d_model) * d_model**-0.5) if n_constant else None

    @property
    def n_experts(self) -> int:
        return self.n_zero + self.n_copy + self.n_constant

    def forward(self, x: Tensor, local_ids: Tensor, weights: Tensor) -> Tensor:
        """``sum_slots w * E_id(x)`` for slots whose ``local_ids`` (``[T, K]``, -1 = other) hit these experts."""
        copy_lo, const_lo = self.n_zero, self.n_zero + self.n_copy
        is_copy = (local_ids >= copy_lo) & (local_ids < const_lo)
        out = x * (weights * is_copy).sum(-1, keepdim=True)
        if self.n_constant:
            is_const = local_ids >= const_lo
            const_id = (local_ids - const_lo).clamp(0, self.n_constant - 1)
            mix = self.const_gate(x).view(-1, self.n_constant, 2).softmax(-1)  # [T, C, 2]
            slot_mix = mix.gather(1, const_id[..., None].expand(-1, -1, 2))   # [T, K, 2]
            slot_w = weights * is_const                                        # [T, K]
            out = out + x * (slot_w * slot_mix[..., 0]).sum(-1, keepdim=True)
            out = out + torch.einsum("tk,tkd->td", slot_w * slot_mix[..., 1], self.const_value[const_id])
        return out


class HeterogeneousExperts(nn.Module):
    """Experts of different shapes or kinds (any ``nn.Module`` mapping ``[n, d_in] -> [n, d_out]``).

    Routed with the same :class:`RoutingResult` and combined the same way as the bank
    (``y_t = sum_slots w * E_slot(x_t)``); the tokens are sorted by expert once and each expert
    runs on its contiguous block, so every expert sees one batched call.
    """

    def __init__(self, experts: list[nn.Module] | nn.ModuleList, d_out: int | None = None) -> None:
        super().__init__()
        if len(experts) == 0:
            raise InputError("HeterogeneousExperts needs at least one expert")
        self.experts = nn.ModuleList(experts)
        self.d_out = d_out

    @property
    def n_experts(self) -> int:
        return len(self.experts)

    def forward(self, x: Tensor, token_idx: Tensor, expert_idx: Tensor, weight: Tensor) -> Tensor:
        """Combine over flat assignments ``(token_idx, expert_idx, weight)`` of valid slots."""
        order = torch.argsort(expert_idx, stable=True)
        tokens, experts, w = token_idx[order], expert_idx[order], weight[order]
        counts = torch.bincount(experts, minlength=self.n_experts).tolist()
        d_out = self.d_out or x.shape[-1]
        out = x.new_zeros(x.shape[0], d_out)
        start = 0
        for expert, count in zip(self.experts, counts):
            if count:
                rows = tokens[start:start + count]
                y = expert(x.index_select(0, rows))
                out = out.index_add(0, rows, y * w[start:start + count, None].to(y.dtype))
            start += count
        return out


def dense_ffn_flops(tokens: int, d_model: int, d_hidden: int, activation: str = "swiglu") -> int:
    """Multiply-add FLOPs of a dense FFN (2 per MAC): the yardstick for 'active FLOPs'."""
    mats = 3 if is_glu(activation) else 2
    return 2 * tokens * d_model * d_hidden * mats


