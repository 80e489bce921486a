import math

import pytest
import torch

from moe_zoo.core.dynamic_balance import LinearAnneal, dynamic_balancing_loss
from moe_zoo.core.errors import InputError
from moe_zoo.core.routing import RoutingResult


def test_linear_anneal_endpoints_midpoint_and_hold():
    w = LinearAnneal(0.025, 0.001, 100)
    assert w(0) == pytest.approx(0.025)
    assert w(50) == pytest.approx(0.013)
    assert w(100) == pytest.approx(0.001)
    assert w(10_000) == pytest.approx(0.001)
    with pytest.raises(InputError):
        LinearAnneal(0.1, 0.0, 0)
    with pytest.raises(InputError):
        w(-1)


def test_dynamic_balancing_loss_hand_worked():
    # 4 experts: 0, 1 dynamic (routed), 2 dynamic (null), 3 always-on (shared).
    logits = torch.log(torch.tensor([[0.4, 0.2, 0.2, 0.2], [0.1, 0.1, 0.6, 0.2]]))
    indices = torch.tensor([[0, 3], [2, 3]])
    routing = RoutingResult.build(indices, torch.ones(2, 2), logits.softmax(-1), logits)
    # masked softmax over {0,1,2}: row0 [.5,.25,.25], row1 [.125,.125,.75]; P = [.3125, .1875, .5]
    # f = [.5, 0, .5]; L = 3 * (.5*.3125 + .5*.5) = 1.21875
    loss = dynamic_balancing_loss(routing, (0, 1, 2))
    assert loss.item() == pytest.approx(1.21875)


def test_dynamic_balancing_loss_gradient_flows_to_logits_and_uniform_minimum():
    logits = torch.zeros(8, 5, requires_grad=True)
    indices = torch.tensor([[i % 4, 4] for i in range(8)])
    routing = RoutingResult.build(indices, torch.ones(8, 2), logits.softmax(-1), logits)
    loss = dynamic_balancing_loss(routing, range(4))
    assert loss.item() == pytest.approx(1.0)  # uniform: N * sum (1/N)(1/N) * ... = 1 expert per token
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert math.isclose(float(logits.grad[:, 4].abs().sum()), 0.0, abs_tol=1e-12)  # shared expert untouched


def test_dynamic_balancing_loss_bad_ids():
    routing = RoutingResult.build(torch.zeros(1, 1, dtype=torch.long), torch.ones(1, 1), torch.ones(1, 2) / 2, None)
    with pytest.raises(InputError):
        dynamic_balancing_loss(routing, (0, 5))
