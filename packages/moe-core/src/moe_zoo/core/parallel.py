"""Expert parallelism over ``torch.distributed``: experts sharded across ranks, tokens exchanged
with all-to-all (counts first, then tokens), results sent back and combined where they came from.

Each rank holds the full router (and shared / zero-computation experts) and ``E / world``
experts of the bank. Forward on every rank, for its own tokens:

1. route locally; sort assignments by global expert (so they are grouped by owner rank);
2. ``all_to_all`` the per-expert counts, then the token rows (differentiable all-to-all);
3. run the local experts on what arrived (any dispatch backend), weight 1;
4. ``all_to_all`` the results back; combine ``out_t = sum w * y`` on the source rank.

Replicated parameters (router, shared experts) receive only this rank's gradient; average them
across ranks as data parallelism does (e.g. wrap the model in DDP, or call
:func:`all_reduce_replicated_grads`).

Routing decisions that depend on the whole batch are taken over every rank's tokens at once, so
the layer computes exactly what the single-process layer computes on the ranks' tokens
concatenated in rank order: expert-choice selection (each expert's top ``C`` of all tokens, ``C``
from the global token count) and capacity dropping (``capacity_factor``: capacity and the
most-confident-first ranking over the global batch) gather the routers' detached scores /
assignments from every rank (``all_gather``) and keep this rank's rows of the decision; the
auxiliary-loss-free bias counts every rank's loads. Token-by-token routers (top-k, top-p, hash,
dense-to-sparse) need nothing extra. Router noise in training (``jitter``, the dense-to-sparse
Gumbel noise) is drawn per rank, so there the layers agree in distribution, not sample by sample.
The balance and z losses in ``MoEOutput.losses`` are each rank's own (over its tokens).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol
import torch.nn.functional as F
from torch import Tensor, nn

from moe_zoo.core.dispatch import expert_ffn, make_plan
from moe_zoo.core.errors import InputError
from moe_zoo.core.layer import MoEConfig, MoELayer, MoEOutput
from moe_zoo.core.routing import (
    ExpertChoiceRouter,
    RoutingResult,
    TopKRouter,
    capacity_drop,
    drop_assignments,
    routing_from_mask,
)


class ExpertParallelMoE(MoELayer):
    """An :class:`MoELayer` whose expert bank is sharded over the ranks of ``group``."""

    def __init__(self, config: MoEConfig, group: dist.ProcessGroup | None = None) -> None:
        if not dist.is_initialized():
            raise InputError("ExpertParallelMoE needs torch.distributed to be initialised")
        group = group or dist.group.WORLD
        world = dist.get_world_size(group)
        if config.n_experts % world:
            raise InputError(f"n_experts={config.n_experts} must be divisible by the world size {world}")
        super().__init__(config, n_local_experts=config.n_experts // world)
        self.group, self.world, self.rank = group, world, dist.get_rank(group)
        self.local_experts = config.n_experts // world

    @classmethod
    def from_layer(cls, layer: MoELayer, group: dist.ProcessGroup | None = None) -> ExpertParallelMoE:
        """Shard a single-process layer: same router and shared weights, this rank's experts."""
        sharded = cls(layer.config, group)
        state = layer.state_dict()
        lo = sharded.rank * sharded.local_experts
        for name in ("w_in", "w_out", "b_in", "b_out"):
            key = f"experts.{name}"
            if key in state:
                state[key] = state[key][lo: lo + sharded.local_experts].clone()
        sharded.load_state_dict(state)
        return sharded.train(layer.training)

    def route(self, x: Tensor, token_ids: Tensor | None = None) -> RoutingResult:
        """This rank's routing, with batch-wide decisions taken over every rank's tokens (module docstring)."""
        if isinstance(self.router, ExpertChoiceRouter):
            logits = self.router.compute_logits(x)
            probs = logits.softmax(-1)
            (everyone,), start = self._gather_rows(probs.detach())
            routing = routing_from_mask(self.router.select(everyone)[start:start + x.shape[0]], probs, logits)
        else:
            routing = self.router_decision(x, token_ids)
            self._count_every_ranks_load(routing)
        if self.config.capacity_factor is not None:
            slots = torch.tensor([routing.indices.shape[1]], device=x.device)
            dist.all_reduce(slots, op=dist.ReduceOp.MAX, group=self.group)
            pad = int(slots) - routing.indices.shape[1]
            (indices, weights), start = self._gather_rows(F.pad(routing.indices, (0, pad), value=-1),
                                                          F.pad(routing.weights.detach(), (0, pad)))
            drop = capacity_drop(indices, weights, self.config.capacity_factor, self.config.n_experts)
            routing = drop_assignments(routing, drop[start:start + x.shape[0], :routing.indices.shape[1]])
        return routing

    def _gather_rows(self, *tensors: Tensor) -> tuple[list[Tensor], int]:
        """For each of ``tensors`` (one row per token of this rank), every rank's rows concatenated in
        rank order; and where this rank's rows start. The row counts are exchanged once for all."""
        count = torch.tensor([tensors[0].shape[0]], device=tensors[0].device)
        counts = [torch.empty_like(count) for _ in range(self.world)]
        dist.all_gather(counts, count, group=self.group)
        sizes = [int(c) for c in counts]
        gathered = []
        for rows in tensors:
            padded = rows.new_zeros((max(sizes), *rows.shape[1:]))
            padded[:rows.shape[0]] = rows
            parts = [torch.empty_like(padded) for _ in sizes]
            dist.all_gather(parts, padded, group=self.group)
            gathered.append(torch.cat([part[:n] for part, n in zip(parts, sizes)]))
        return gathered, sum(sizes[:self.rank])

    def _count_every_ranks_load(self, routing: RoutingResult) -> None:
        """Auxiliary-loss-free balancing: add the other ranks' loads to the router's accumulator."""
        router = self.router
        if isinstance(router, TopKRouter) and router.load_accumulator is not None and self.training:
            local = routing.expert_counts.to(router.load_accumulator.dtype)
            total = local.clone()
            dist.all_reduce(total, group=self.group)
            router.load_accumulator += total - local

    def forward(self, x: Tensor, token_ids: Tensor | None = None, routing: RoutingResult | None = None) -> MoEOutput:
        self.check_input(x)
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        routing = routing if routing is not None else self.route(flat, token_ids)
        plan = make_plan(routing.indices, routing.weights, self.config.n_experts, all_valid=self._all_valid)
        # 1) counts: how many rows this rank sends to each expert, grouped by owner rank
        send_counts = plan.counts.view(self.world, self.local_experts)
        recv_counts = torch.empty_like(send_counts)
        dist.all_to_all_single(recv_counts, send_counts, group=self.group)
        send_split = send_counts.sum(1).tolist()
        recv_split = recv_counts.sum(1).tolist()
        # 2) tokens (sorted by global expert = grouped by destination)
        sent = flat.index_select(0, plan.token_idx)
        received = funcol.all_to_all_single_autograd(sent, recv_split, send_split, self.group)
        # 3) local experts: arrivals are grouped by source rank, then by local expert
        local_ids = torch.arange(self.local_experts, device=x.device).repeat(self.world)
        local_expert = torch.repeat_interleave(local_ids, recv_counts.reshape(-1), output_size=received.shape[0])
        local_plan = make_plan(local_expert[:, None], received.new_ones(received.shape[0], 1),
                               self.local_experts, all_valid=True)
        computed = expert_ffn(received, self.experts, local_plan, self.config.backend)
        # 4) back to the source rank, in the order the rows were sent
        returned = funcol.all_to_all_single_autograd(computed, send_split, recv_split, self.group)
        out = flat.new_zeros(flat.shape).index_add(0, plan.token_idx, returned * plan.weight[:, None].to(flat.dtype))
        out = self._add_unsharded_experts(flat, routing, out)
        return MoEOutput(out.reshape(shape), routing)


def all_reduce_replicated_grads(module: nn.Module, group: dist.ProcessGroup | None = None) -> None:
    """Average the gradients of every parameter that is not an expert shard across ranks."""
    world = dist.get_world_size(group)
    for name, param in module.named_parameters():
        if param.grad is not None and ".experts." not in f".{name}":
            dist.all_reduce(param.grad, group=group)
            param.grad /= world
