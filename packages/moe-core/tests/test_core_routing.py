"""Routers follow their rules on hand-checkable cases."""

import math

import pytest
import torch

from moe_zoo.core import (
    DenseToSparseRouter,
    ExpertChoiceRouter,
    HashRouter,
    InputError,
    RoutingResult,
    SoftGate,
    TopKRouter,
    TopPRouter,
    limit_capacity,
)


def _router_with_logits(cls, logits, **kwargs):
    """A router whose logits are exactly ``logits`` for one-hot inputs."""
    n_tokens, n_experts = logits.shape
    router = cls(n_tokens, n_experts, **kwargs)
    with torch.no_grad():
        router.weight.copy_(logits.t())
    return router, torch.eye(n_tokens)


def test_topk_softmax_then_topk_renormalised():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.0, 3.0, 1.0, 2.0]])
    router, x = _router_with_logits(TopKRouter, logits, top_k=2)
    result = router(x)
    probs = logits.softmax(-1)
    assert result.indices.tolist() == [[0, 1], [1, 3]]
    expected = probs.gather(1, result.indices)
    assert torch.allclose(result.weights, expected / expected.sum(-1, keepdim=True))
    assert torch.allclose(result.probs, probs)
    assert result.expert_counts.tolist() == [1, 2, 0, 1]
    assert result.experts_per_token.tolist() == [2, 2]


def test_topk_variants_softmax_after_topk_and_sigmoid():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    router, x = _router_with_logits(TopKRouter, logits, top_k=2, softmax_after_topk=True)
    assert torch.allclose(router(x).weights, torch.tensor([[2.0, 1.0]]).softmax(-1))
    router, x = _router_with_logits(TopKRouter, logits, top_k=2, score="sigmoid", renormalize=False)
    assert torch.allclose(router(x).weights, torch.tensor([[2.0, 1.0]]).sigmoid())


def test_topk_bias_changes_selection_but_not_weights():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    router, x = _router_with_logits(TopKRouter, logits, top_k=1, balance_bias=True, renormalize=False)
    with torch.no_grad():
        router.expert_bias.copy_(torch.tensor([0.0, 0.0, 0.0, 5.0]))
    result = router(x)
    assert result.indices.tolist() == [[3]]
    assert torch.allclose(result.weights, logits.softmax(-1)[:, 3:])


def test_top_p_counts_follow_p_and_cap():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.9, 0.05, 0.03, 0.02], [0.25, 0.25, 0.25, 0.25]]))
    for p, cap, expected in [(0.7, None, [2, 1, 3]), (0.4, None, [1, 1, 2]), (0.96, 2, [2, 2, 2]),
                             (1.0, None, [4, 4, 4])]:
        router, x = _router_with_logits(TopPRouter, logits, top_p=p, max_k=cap)
        result = router(x)
        assert result.experts_per_token.tolist() == expected, (p, cap)
        assert torch.allclose(result.weights.sum(-1), torch.ones(3))
        # the kept set is a prefix of the probability order that first reaches p
        probs = logits.softmax(-1)
        for t in range(3):
            kept = result.indices[t][result.indices[t] >= 0]
            assert set(kept.tolist()) == set(probs[t].argsort(descending=True)[: len(kept)].tolist())


def test_top_p_always_on_experts_join_every_token():
    router = TopPRouter(8, 6, 0.5, always_on=(4, 5))
    result = router(torch.randn(10, 8))
    assert ((result.indices == 4).any(-1) & (result.indices == 5).any(-1)).all()
    assert (result.experts_per_token >= 3).all()


def test_expert_choice_respects_capacity():
    router = ExpertChoiceRouter(8, 4, capacity_factor=1.0)
    result = router(torch.randn(12, 8))
    assert result.expert_counts.tolist() == [3, 3, 3, 3]
    dense = result.dense_weights()
    chosen = dense > 0
    assert torch.allclose(dense[chosen], result.probs[chosen])


def test_hash_router_is_balanced_and_fixed():
    router = HashRouter(4, mode="token_id", vocab_size=100, seed=1)
    ids = torch.arange(100)
    result = router(torch.zeros(100, 3), ids)
    assert result.expert_counts.tolist() == [25, 25, 25, 25]
    assert torch.equal(router(torch.zeros(100, 3), ids).indices, result.indices)
    feature = HashRouter(4, mode="feature", d_model=6)
    x = torch.randn(50, 6)
    assert torch.equal(feature(x).indices, feature(x * 3.0).indices)  # sign hash: scale invariant
    with pytest.raises(InputError):
        router(torch.zeros(2, 3), torch.tensor([0, 100]))


def test_dense_to_sparse_goes_from_dense_to_sparse():
    torch.manual_seed(0)
    router = DenseToSparseRouter(8, 6, tau_max=5.0, tau_min=0.05, threshold=0.05, anneal_steps=10)
    x = torch.randn(200, 8)
    dense = router(x).experts_per_token.float().mean()
    router.step(10)
    assert math.isclose(router.temperature, 0.05)
    sparse = router(x).experts_per_token.float().mean()
    assert dense > 4.0 and sparse < 2.0
    router.eval()
    assert (router(x).experts_per_token == 1).all()


def test_soft_gate_and_mix():
    gate = SoftGate(5, 3, hidden=(8,))
    result = gate(torch.randn(4, 5))
    assert torch.allclose(result.weights.sum(-1), torch.ones(4))
    outputs = torch.randn(4, 3, 2)
    mixed = SoftGate.mix(outputs, result.weights)
    assert torch.allclose(mixed, (outputs * result.weights[..., None]).sum(1))


def test_limit_capacity_drops_least_confident():
    indices = torch.tensor([[0], [0], [0], [1]])
    weights = torch.tensor([[0.9], [0.2], [0.6], [0.5]])
    routing = RoutingResult.build(indices, weights, torch.full((4, 2), 0.5), None)
    limited = limit_capacity(routing, capacity_factor=1.0)  # C = 1 * int(1.0 * ceil(4/2)) = 2
    assert limited.indices.view(-1).tolist() == [0, -1, 0, 1]
    assert limited.expert_counts.tolist() == [2, 1]


def test_bad_router_arguments():
    with pytest.raises(InputError):
        TopKRouter(4, 3, top_k=4)
    with pytest.raises(InputError):
        TopPRouter(4, 3, top_p=0.0)
    with pytest.raises(InputError):
        TopKRouter(4, 6, 2, n_groups=4, topk_groups=1)
    with pytest.raises(InputError, match="last dimension"):
        TopKRouter(4, 3, 1)(torch.randn(2, 5))
