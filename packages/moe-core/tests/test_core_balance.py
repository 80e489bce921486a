"""Balance losses equal their formulas; auxiliary-loss-free balancing evens out a skewed router."""

import pytest
import torch

from moe_zoo.core import (
    RoutingResult,
    TopKRouter,
    attach_bias_updates,
    gate_kl_to_uniform,
    load_balancing_loss,
    load_imbalance,
    router_z_loss,
)


def test_load_balancing_loss_equals_formula_on_hand_made_routing():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    routing = RoutingResult.build(torch.tensor([[0], [0], [1], [2]]), torch.ones(4, 1), probs, None)
    # f = (2/4, 1/4, 1/4); P = column means = (0.4, 0.275, 0.325); L = 3 * sum f P
    expected = 3 * (0.5 * 0.4 + 0.25 * 0.275 + 0.25 * 0.325)
    assert torch.isclose(load_balancing_loss(routing), torch.tensor(expected))
    two_hot = RoutingResult.build(torch.tensor([[0, 1], [0, 2], [1, 2], [2, 0]]), torch.ones(4, 2), probs, None)
    expected_k2 = 3 * (0.75 * 0.4 + 0.5 * 0.275 + 0.75 * 0.325)  # multi-hot fractions
    assert torch.isclose(load_balancing_loss(two_hot), torch.tensor(expected_k2))


def test_z_loss_formula_and_gradient_path():
    logits = torch.tensor([[1.0, 2.0], [0.0, -1.0]], requires_grad=True)
    expected = torch.logsumexp(logits, -1).square().mean()
    loss = router_z_loss(logits)
    assert torch.isclose(loss, expected)
    loss.backward()
    assert logits.grad.abs().sum() > 0


def _skewed_router(score: str = "sigmoid", seed: int = 0) -> tuple[TopKRouter, torch.Tensor]:
    """Experts 0 and 1 win most tokens whose inputs share a common direction ``mean``."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the router's initial weights: independent of the tests that ran before
    router = TopKRouter(16, 8, top_k=2, balance_bias=True, score=score)
    mean = torch.randn(16, generator=generator)
    mean = 2.0 * mean / mean.norm()
    with torch.no_grad():
        router.weight[0] += mean
        router.weight[1] += 0.75 * mean
    return router, mean


# softmax scores sit near 1/E, so the sign step must be finer than for sigmoid scores: at rate 0.01
# the softmax bias oscillates by whole blocks of tokens and stalls near 0.7x the initial imbalance
@pytest.mark.parametrize("score,rate,steps,target", [("sigmoid", 0.01, 300, 0.5), ("softmax", 0.003, 600, 0.6)])
def test_aux_loss_free_bias_brings_max_over_mean_load_down(score, rate, steps, target):
    router, mean = _skewed_router(score)
    weight_before = router.weight.detach().clone()
    generator = torch.Generator().manual_seed(1)
    imbalances = []
    for _ in range(steps):
        routing = router(mean + torch.randn(256, 16, generator=generator))
        imbalances.append(load_imbalance(routing.expert_counts))
        router.update_bias(rate=rate)
    assert imbalances[0] > 3.0
    assert sum(imbalances[-20:]) / 20 < target * imbalances[0]
    assert torch.equal(router.weight, weight_before)  # only the selection bias moved
    assert router.expert_bias.grad is None


def test_bias_updates_run_from_the_optimizer_hook():
    router, mean = _skewed_router()
    optimizer = torch.optim.SGD(router.parameters(), lr=0.0)
    attach_bias_updates(optimizer, router, rate=0.05)
    x = mean + torch.randn(128, 16)
    before = load_imbalance(router(x).expert_counts)
    for _ in range(100):
        out = router(x)
        out.weights.sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    assert load_imbalance(router(x).expert_counts) < before
    assert router.load_accumulator.sum() > 0  # the last forward's loads wait for the next step


def test_gate_kl_to_uniform_equals_its_formula():
    uniform = torch.full((3, 4), 0.25)
    one_hot = torch.eye(4)[:3]
    assert gate_kl_to_uniform(uniform).abs() < 1e-7
    assert torch.isclose(gate_kl_to_uniform(one_hot), torch.log(torch.tensor(4.0)))
    mixed = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.7, 0.1, 0.1, 0.1]])
    expected = (torch.log(torch.tensor(2.0)) + (0.7 * torch.log(torch.tensor(2.8)) + 0.3 * torch.log(torch.tensor(0.4)))) / 2
    assert torch.isclose(gate_kl_to_uniform(mixed), expected)
    logits = torch.randn(5, 4, requires_grad=True)
    gate_kl_to_uniform(logits.softmax(-1)).backward()
    assert logits.grad.abs().sum() > 0
