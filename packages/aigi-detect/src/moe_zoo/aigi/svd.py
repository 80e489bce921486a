"""OmniAID's SVD-subspace experts: a pretrained linear map split into a frozen main subspace and
trainable low-rank experts living in its residual singular subspace.

For a pretrained ``W in R^{out x in}`` (a ``Linear``, or a 1x1 ``Conv2d`` read as one) with SVD
``W = U diag(S) V^T`` (singular values descending, ``R = min(out, in)``):

- the residual chunk is the ``r`` smallest singular triplets ``(U_c, S_c, V_c) = (U[:, R-r:],
  S[R-r:], V^T[R-r:, :])``; the frozen main part is ``W_main = W - U_c diag(S_c) V_c^T``
  (= the top ``R - r`` triplets; computed as the difference, in float64, so that
  ``W_main + U_c diag(S_c) V_c^T`` gives back ``W`` to float32 rounding);
- every expert ``e`` owns trainable ``(U_e, S_e, V_e)`` initialised to that chunk (the official
  code gives all experts the same residual chunk);
- ``y = x W_main^T + sum_{k in sel(x)} g_k ((x V_k^T) * S_k) U_k^T + b`` with the per-image gates
  ``g`` set by the model (one routing decision per image, shared by every adapted layer).

When one gate row is shared by the whole batch (``gates`` of shape ``[1, E]``: stage 1's hard
sampling, or a group of images the router sent to the same experts) the same map is computed with
the merged weight ``W_eff = W_main + sum_k g_k U_k diag(S_k) V_k^T`` (exact algebra, equal up to
float rounding) and one plain matmul / 1x1 convolution.

So at initialisation the layer equals the pretrained one exactly whenever the applied gates sum to
1 (stage 1: one expert with gate 1; a router's softmax over its top-k). With a semantic expert and
the always-on artifact expert the gates sum to ``G = 2`` and the official formula counts the
residual chunk twice at initialisation: ``W_main + 2 U_c diag(S_c) V_c^T``. On CLIP ViT-L/14 (rank
4 of 1024) that chunk is negligible; on MobileNetV2's narrow pointwise maps it is not (pooled
features move by ~4x their norm, ``benchmarks/diagnose.py``). With ``chunk_once=True`` (the
package's default) the layer subtracts the excess, ``- (G - 1) x V_c^T diag(S_c) U_c^T``, i.e.
``W_eff = W + sum_k g_k (U_k diag(S_k) V_k^T - U_c diag(S_c) V_c^T)`` once the gates sum to 1 +
(G - 1): every expert adds its learned change to the pretrained map. Whenever ``G = 1`` both
forms are the same formula. ``chunk_once=False`` is the official formula. ``U_main = U[:, :R-r]`` and
``V_main = V^T[:R-r]`` are kept for the orthogonality loss. The bias stays frozen, as in the
official code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moe_zoo.core import InputError


def _pair(a: Tensor, b: Tensor) -> Tensor:
    """``||A^T B||_F`` for two bases stored column-wise."""
    return torch.linalg.matrix_norm(a.transpose(0, 1) @ b)


class SVDExpertLinear(nn.Module):
    """A pretrained ``nn.Linear`` or 1x1 ``nn.Conv2d`` with ``n_experts`` SVD-subspace experts of
    rank ``rank`` (formula in the module docstring). Set :attr:`gates` (``[B, n_experts]``, one row
    per image) before each forward."""

    def __init__(self, layer: nn.Linear | nn.Conv2d, n_experts: int, rank: int, chunk_once: bool = True) -> None:
        super().__init__()
        self.is_conv = isinstance(layer, nn.Conv2d)
        if self.is_conv and (layer.kernel_size != (1, 1) or layer.groups != 1 or layer.stride != (1, 1)):
            raise InputError(f"SVD experts need a pointwise (1x1, groups=1, stride 1) convolution, got {layer}")
        weight = layer.weight.detach().reshape(layer.weight.shape[0], -1).double()
        out_features, in_features = weight.shape
        full_rank = min(out_features, in_features)
        if not 1 <= rank < full_rank:
            raise InputError(f"expert rank must be in [1, {full_rank - 1}] for a {out_features}x{in_features} map, "
                             f"got {rank}")
        if n_experts < 1:
            raise InputError(f"n_experts must be >= 1, got {n_experts}")
        u, s, vh = torch.linalg.svd(weight, full_matrices=False)
        main = full_rank - rank
        chunk = (u[:, main:] * s[main:]) @ vh[main:]
        dtype = layer.weight.dtype
        self.n_experts, self.rank, self.chunk_once = n_experts, rank, chunk_once
        # the initial residual chunk (U_c, S_c, V_c): subtracted once per unit of gate mass above 1
        self.register_buffer("U_chunk", u[:, main:].to(dtype), persistent=False)
        self.register_buffer("S_chunk", s[main:].to(dtype), persistent=False)
        self.register_buffer("V_chunk", vh[main:].to(dtype), persistent=False)
        self.register_buffer("weight_main", (weight - chunk).to(dtype), persistent=False)
        self.register_buffer("U_main", u[:, :main].to(dtype), persistent=False)
        self.register_buffer("V_main", vh[:main].to(dtype), persistent=False)
        bias = layer.bias.detach().clone() if layer.bias is not None else None
        self.register_buffer("bias", bias, persistent=False)
        # one parameter per expert (stage 1 trains one expert while the others stay untouched)
        self.U_experts = nn.ParameterList(nn.Parameter(u[:, main:].to(dtype).clone()) for _ in range(n_experts))
        self.S_experts = nn.ParameterList(nn.Parameter(s[main:].to(dtype).clone()) for _ in range(n_experts))
        self.V_experts = nn.ParameterList(nn.Parameter(vh[main:].to(dtype).clone()) for _ in range(n_experts))
        self.gates: Tensor | None = None

    def extra_repr(self) -> str:
        out_features, in_features = self.weight_main.shape
        kind = "conv1x1" if self.is_conv else "linear"
        return f"{kind} {in_features}->{out_features}, experts={self.n_experts}, rank={self.rank}"

    def forward(self, x: Tensor) -> Tensor:
        gates = self.gates
        if gates is None:
            raise RuntimeError("SVDExpertLinear: gates not set (the OmniAID model sets them per forward)")
        if gates.shape[0] == 1:                      # one gate row for the whole batch: merged weight
            weight = self.effective_weight(gates[0])
            if self.is_conv:
                return F.conv2d(x, weight[:, :, None, None], self.bias)
            return F.linear(x, weight, self.bias)
        batch = x.shape[0]
        u_cat, scale, v_cat = self._factors(gates)                                # [out, K], [B, K], [K, in]
        if self.is_conv:
            y = F.conv2d(x, self.weight_main[:, :, None, None], self.bias)
            low = F.conv2d(x, v_cat[:, :, None, None]) * scale[:, :, None, None]
            return y + F.conv2d(low, u_cat[:, :, None, None])
        y = F.linear(x, self.weight_main, self.bias)
        shape = (batch,) + (1,) * (x.dim() - 2) + (-1,)
        return y + F.linear(F.linear(x, v_cat) * scale.reshape(shape), u_cat)

    def _factors(self, gates: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(U_cat [out, K], scale [B, K], V_cat [K, in])`` with ``sum_j scale_bj U_j V_j^T`` the
        low-rank part for gate rows ``[B, E]``: every expert's ``g_k S_k``, and with ``chunk_once``
        the initial chunk with ``-(G_b - 1) S_c`` (``G_b`` the row's gate sum)."""
        u, v = list(self.U_experts), list(self.V_experts)
        scale = (gates[:, :, None] * torch.stack(list(self.S_experts))[None]).flatten(1)
        if self.chunk_once:
            u, v = [*u, self.U_chunk], [*v, self.V_chunk]
            scale = torch.cat([scale, (1.0 - gates.sum(1, keepdim=True)) * self.S_chunk], dim=1)
        return torch.cat(u, dim=1), scale, torch.cat(v, dim=0)

    def effective_weight(self, gates: Tensor) -> Tensor:
        """``W_eff = W_main + sum_e g_e U_e diag(S_e) V_e^T`` (with ``chunk_once``: ``- (G - 1) U_c
        diag(S_c) V_c^T``) for one gate vector ``[E]``."""
        u_cat, scale, v_cat = self._factors(gates[None])
        return torch.addmm(self.weight_main, u_cat * scale, v_cat)

    @torch.no_grad()
    def fold_output_affine(self, scale: Tensor, shift: Tensor) -> None:
        """Fold a per-output-channel affine map ``z -> scale * z + shift`` (an inference batch norm)
        into the layer, exactly: ``diag(a) (W_main + sum_k g_k U_k diag(S_k) V_k^T) = diag(a) W_main
        + sum_k g_k (diag(a) U_k) diag(S_k) V_k^T`` and ``b' = a b + c``. For inference copies only
        (``U_k`` is no longer orthonormal afterwards)."""
        self.weight_main.mul_(scale[:, None])
        self.U_chunk.mul_(scale[:, None])
        for u in self.U_experts:
            u.mul_(scale[:, None])
        bias = self.bias if self.bias is not None else torch.zeros_like(shift)
        self.bias = bias * scale + shift

    def expert_parameters(self, expert: int) -> list[nn.Parameter]:
        return [self.U_experts[expert], self.S_experts[expert], self.V_experts[expert]]

    def _bases(self, expert: int, detach: bool = False) -> tuple[Tensor, Tensor]:
        u, v = self.U_experts[expert], self.V_experts[expert]
        if detach:
            u, v = u.detach(), v.detach()
        return F.normalize(u, dim=0), F.normalize(v, dim=1).transpose(0, 1)

    def targeted_orthogonal_loss(self, active: int, artifact: int | None) -> Tensor:
        """Stage 1 (official ``compute_targeted_orthogonal_loss``): the mean over pairs of
        ``||U_a^T U_b||_F + ||V_a V_b^T||_F`` (columns / rows normalised) between the active expert
        and the main subspace, and, for a semantic expert, each earlier semantic expert (detached)."""
        u_a, v_a = self._bases(active)
        loss = _pair(self.U_main, u_a) + _pair(self.V_main.transpose(0, 1), v_a)
        pairs = 1
        if active != artifact:
            for other in range(active):
                if other == artifact:
                    continue
                u_b, v_b = self._bases(other, detach=True)
                loss = loss + _pair(u_b, u_a) + _pair(v_b, v_a)
                pairs += 1
        return loss / pairs

    def full_orthogonal_loss(self) -> Tensor:
        """End-to-end variant (official ``compute_full_orthogonal_loss``): the same pair term averaged
        over every pair of {main subspace, expert 0, ..., expert E-1}."""
        bases = [(self.U_main, self.V_main.transpose(0, 1))] + [self._bases(e) for e in range(self.n_experts)]
        terms = [_pair(bases[i][0], bases[j][0]) + _pair(bases[i][1], bases[j][1])
                 for i in range(len(bases)) for j in range(i + 1, len(bases))]
        return torch.stack(terms).mean()


def replace_layers(module: nn.Module, select, n_experts: int, rank: int, chunk_once: bool = True
                   ) -> list[SVDExpertLinear]:
    """Swap every submodule ``m`` of ``module`` with ``select(name, m)`` true for an
    :class:`SVDExpertLinear` built from it; returns the new layers in module order."""
    targets = [(name, child) for name, child in module.named_modules() if name and select(name, child)]
    if not targets:
        raise InputError(f"no layer of {type(module).__name__} was selected for SVD experts")
    layers = []
    for name, child in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        layer = SVDExpertLinear(child, n_experts, rank, chunk_once)
        setattr(parent, attr, layer)
        layers.append(layer)
    return layers
