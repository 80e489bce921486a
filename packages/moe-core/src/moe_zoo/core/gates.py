"""Gates that scale expert inputs or expert outputs (HoME, Wang et al. 2024, arXiv 2408.05430).

- :class:`LowRankFeatureGate` (HoME's *feature-gate*): every expert ``e`` gets its own view of the
  input, ``x_e = x * Fea_Gate_e(x)`` with ``Fea_Gate_e(x) = 2 * sigmoid(x A_e B_e)``, a LoRA-style
  low-rank map (``A_e: [d, r]``, ``B_e: [r, d]``). The factor 2 keeps the mean scale at 1 and lets
  a feature be amplified as well as damped. ``B`` starts at zero, so every gate starts at exactly 1.
- :class:`SelfGate` (HoME's *self-gate*): a residual path over a task's (or a category's) own
  experts, ``r(x) = sum_e s_e(x) E_e(x)`` with ``s(x) = sigmoid(x w + b)`` for one own expert and
  ``s(x) = softmax(x W + b)`` (a :class:`~moe_zoo.core.routing.SoftGate`) for several; the result is
  added to the task's multi-gate mixture, so sparse tasks keep a gradient path into their own
  experts.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from moe_zoo.core.errors import InputError
from moe_zoo.core.routing import SoftGate


class LowRankFeatureGate(nn.Module):
    """``n_gates`` low-rank feature gates ``g_e(x) = 2 * sigmoid(x A_e B_e)`` computed in two batched matmuls.

    ``forward(x)`` takes one input for every gate (``[T, d]``) or one input per gate, gate-major
    (``[G, T, d]``, the layout a batched expert matmul reads), and returns the gate values
    ``[G, T, d]``; :meth:`apply` returns the gated inputs ``x_e * g_e(x_e)`` (``[G, T, d]``), i.e. one
    privatised input per expert.
    """

    def __init__(self, d_in: int, n_gates: int, rank: int = 8, *, init_std: float = 0.02) -> None:
        super().__init__()
        if min(d_in, n_gates, rank) < 1:
            raise InputError(f"LowRankFeatureGate sizes must be >= 1, got d_in={d_in}, n_gates={n_gates}, rank={rank}")
        self.d_in, self.n_gates, self.rank = d_in, n_gates, rank
        self.a = nn.Parameter(torch.randn(n_gates, d_in, rank) * init_std)
        self.b = nn.Parameter(torch.zeros(n_gates, rank, d_in))

    def _check(self, x: Tensor) -> None:
        ok = (x.dim() == 2 and x.shape[1] == self.d_in) or (
            x.dim() == 3 and x.shape[0] == self.n_gates and x.shape[2] == self.d_in)
        if not ok:
            raise InputError(f"LowRankFeatureGate: expected x of shape [T, {self.d_in}] or "
                             f"[{self.n_gates}, T, {self.d_in}], got {tuple(x.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        """``2 * sigmoid((x A_e) B_e)`` for every gate ``e``: ``[G, T, d]``."""
        self._check(x)
        a, b = self.a.to(x.dtype), self.b.to(x.dtype)
        if x.dim() == 2:  # one GEMM for all gates' down-projections, then [G, T, r]
            low = (x @ a.transpose(0, 1).reshape(self.d_in, -1)).view(x.shape[0], self.n_gates, -1).transpose(0, 1)
        else:
            low = torch.bmm(x, a)
        return 2.0 * torch.sigmoid(torch.bmm(low, b))

    def apply(self, x: Tensor) -> Tensor:
        """The privatised inputs ``x_e * g_e(x_e)``: ``[G, T, d]``."""
        return x * self(x)

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, n_gates={self.n_gates}, rank={self.rank}"


class SelfGate(nn.Module):
    """Weights over a group's own experts: ``sigmoid(x w + b)`` for one expert, ``softmax(x W + b)`` for several.

    ``forward(x)`` returns ``[T, n_experts]``; combine with :meth:`mix` (``sum_e s_e * E_e(x)``), the
    same rule as :meth:`SoftGate.mix`. The softmax case is a :class:`SoftGate`.
    """

    def __init__(self, d_in: int, n_experts: int) -> None:
        super().__init__()
        if min(d_in, n_experts) < 1:
            raise InputError(f"SelfGate sizes must be >= 1, got d_in={d_in}, n_experts={n_experts}")
        self.d_in, self.n_experts = d_in, n_experts
        self.proj = nn.Linear(d_in, 1) if n_experts == 1 else SoftGate(d_in, n_experts)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.d_in:
            raise InputError(f"SelfGate: expected x of shape [T, {self.d_in}], got {tuple(x.shape)}")
        if self.n_experts == 1:
            return torch.sigmoid(self.proj(x))
        return self.proj(x).weights

    mix = staticmethod(SoftGate.mix)

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, n_experts={self.n_experts}, rule={'sigmoid' if self.n_experts == 1 else 'softmax'}"
