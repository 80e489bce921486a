"""Load balancing: auxiliary losses computed from a :class:`RoutingResult`, and the
auxiliary-loss-free bias update. Everything is returned as values; nothing lives in globals."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from moe_zoo.core.routing import RoutingResult, TopKRouter


def load_balancing_loss(routing: RoutingResult, n_experts: int | None = None) -> Tensor:
    """Switch/GShard balance loss ``L = E * sum_e f_e * P_e``.

    ``f_e`` = fraction of tokens whose selection includes expert ``e`` (top-1 one-hot, or the
    multi-hot top-k mask), ``P_e`` = mean router probability of ``e``. Gradients flow through
    ``P`` only. With top-k the minimum (perfect balance) is ``k``; with top-1 it is 1.
    ``n_experts`` limits the sum to the first experts (e.g. to leave out null experts).

    Tokens whose router probabilities are not finite (a NaN or inf in the input) are left out of
    both statistics, so one bad token cannot turn the whole batch's loss into NaN (its own output
    and gradients are still NaN: fix the input); an empty batch, or one with no finite token,
    gives 0. No host synchronisation is needed for either.
    """
    n_experts = n_experts or routing.num_experts
    finite = _finite_tokens(routing.probs)
    probs = torch.where(finite[:, None], routing.probs.float(), 0.0)[:, :n_experts]
    slots = routing.indices.shape[1]
    ids = routing.indices.masked_fill(routing.indices < 0, routing.num_experts).reshape(-1)
    counts = probs.new_zeros(routing.num_experts + 1).index_add_(
        0, ids, finite.to(probs.dtype).repeat_interleave(slots))[:n_experts]
    tokens = finite.sum().clamp_min(1).to(probs.dtype)
    return n_experts * ((counts / tokens).detach() * (probs.sum(0) / tokens)).sum()


def router_z_loss(routing_or_logits: RoutingResult | Tensor) -> Tensor:
    """ST-MoE router z-loss ``L_z = mean_tokens (logsumexp_j x_j)^2`` over the tokens with finite
    logits (0 when there are none), as :func:`load_balancing_loss` does."""
    logits = routing_or_logits.logits if isinstance(routing_or_logits, RoutingResult) else routing_or_logits
    if logits is None:
        raise ValueError("router_z_loss needs router logits (this router has none)")
    z = torch.logsumexp(logits.float(), dim=-1).square()
    finite = torch.isfinite(z)
    return torch.where(finite, z, 0.0).sum() / finite.sum().clamp_min(1)


def _finite_tokens(values: Tensor) -> Tensor:
    """``[T]`` True where every entry of a token's row is finite."""
    return torch.isfinite(values).all(-1)


def gate_kl_to_uniform(weights: Tensor) -> Tensor:
    """Mean KL divergence of soft gate weights from the uniform mixture,
    ``L = mean_t KL(g_t || U) = mean_t sum_e g_te log(E g_te)`` (0 when uniform, ``log E`` one-hot).

    ``weights`` ``[..., E]`` (rows sum to 1). A penalty for dense soft gates whose loss barely
    constrains them (e.g. a gate over frozen experts that already fit the training data): the
    gate leaves the plain average of its experts only where the data pay for it.
    """
    n_experts = weights.shape[-1]
    return (weights * (weights.clamp_min(1e-12) * n_experts).log()).sum(-1).mean()


def load_imbalance(counts: Tensor) -> float:
    """``max_e load_e / mean_e load_e`` (1.0 is perfect balance)."""
    counts = counts.float()
    mean = counts.mean()
    return float(counts.max() / mean) if mean > 0 else float("nan")


def aux_free_routers(model: nn.Module) -> list[TopKRouter]:
    return [m for m in model.modules() if isinstance(m, TopKRouter) and m.expert_bias is not None]


def attach_bias_updates(optimizer: torch.optim.Optimizer, model: nn.Module, rate: float = 1e-3) -> Iterable:
    """DeepSeek-style auxiliary-loss-free balancing driven by the optimizer (as torchtitan does).

    Registers an optimizer step pre-hook that, before every ``optimizer.step()``, applies
    ``b_i += rate * sign(mean_load - load_i)`` to every :class:`TopKRouter` built with
    ``balance_bias=True``, using the loads its training forwards accumulated since the last
    step. Outside backprop, no gradient touches ``b``. Returns the hook handle.
    """
    routers = aux_free_routers(model)
    if not routers:
        raise ValueError("attach_bias_updates: the model has no TopKRouter with balance_bias=True")

    def hook(_optimizer, _args, _kwargs) -> None:
        for router in routers:
            router.update_bias(rate=rate)

    return optimizer.register_step_pre_hook(hook)
