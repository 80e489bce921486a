"""The router's training signal follows its formulas on hand-made cases."""

import math

import numpy as np
import pytest
import torch

from moe_zoo.core import InputError
from moe_zoo.streams.losses import correctness_mask, router_loss, task_mask


def test_correctness_mask_marks_every_expert_whose_argmax_is_the_label():
    probs = np.array([[0.7, 0.2, 0.1],   # says 0: right
                      [0.1, 0.8, 0.1],   # says 1: wrong
                      [0.5, 0.4, 0.1],   # says 0: right
                      [0.2, 0.2, 0.6]])  # says 2: wrong
    np.testing.assert_array_equal(correctness_mask(probs, 0), [1, 0, 1, 0])


def test_correctness_mask_falls_back_to_the_expert_closest_to_right():
    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.5, 0.45, 0.05]])
    # nobody says 1; P_e(1) = 0.3, 0.2, 0.45 -> expert 2
    np.testing.assert_array_equal(correctness_mask(probs, 1), [0, 0, 1])


def test_abstaining_experts_are_never_marked_by_the_argmax_rule():
    probs = np.array([[1 / 3, 1 / 3, 1 / 3], [0.2, 0.7, 0.1]])  # expert 0 abstains (uniform, argmax 0)
    np.testing.assert_array_equal(correctness_mask(probs, 0, abstain=np.array([True, False])), [1, 0])
    # the fallback still picks the best P_e(y): with the abstainer at 1/3 > 0.2
    np.testing.assert_array_equal(correctness_mask(probs, 0, abstain=np.array([True, False])).sum(), 1)
    np.testing.assert_array_equal(correctness_mask(probs, 1, abstain=np.array([True, False])), [0, 1])


def test_task_mask_is_the_labels_expert():
    np.testing.assert_array_equal(task_mask(4, 2), [0, 0, 1, 0])
    with pytest.raises(InputError):
        task_mask(3, 3)


def test_router_loss_is_mean_bce_by_hand():
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    mask = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    by_hand = -(math.log(sig(2.0)) + math.log(1 - sig(-1.0)) + math.log(1 - sig(0.0)) + math.log(sig(3.0))) / 4
    assert router_loss(logits, mask).item() == pytest.approx(by_hand, rel=1e-6)
    # with an active set: only the three active entries count
    active = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    masked = -(math.log(sig(2.0)) + math.log(1 - sig(-1.0)) + math.log(1 - sig(0.0))) / 3
    assert router_loss(logits, mask, active).item() == pytest.approx(masked, rel=1e-6)


def test_bad_inputs_raise_input_errors():
    with pytest.raises(InputError):
        correctness_mask(np.zeros((0, 3)), 0)
    with pytest.raises(InputError):
        correctness_mask(np.ones((2, 3)) / 3, 3)
    with pytest.raises(InputError):
        router_loss(torch.zeros(2, 3), torch.zeros(2, 2))
