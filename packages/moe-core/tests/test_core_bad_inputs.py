"""Bad numbers get one clear error naming the input (issue 25), and non-finite tokens cannot poison
the auxiliary losses of a whole batch."""

import math

import pytest
import torch

from moe_zoo.core import (
    InputError,
    MoEConfig,
    MoELayer,
    TopKRouter,
    load_balancing_loss,
    router_z_loss,
)
from moe_zoo.core.argtypes import non_negative_int, positive_float, positive_int
from moe_zoo.core.cli import main
from moe_zoo.core.demo import run_demo

BASE = {"d_model": 8, "d_hidden": 8, "n_experts": 4}


@pytest.mark.parametrize("field,value", [
    ("d_model", 0), ("d_hidden", -3), ("n_experts", 0), ("top_k", 0), ("n_shared_experts", -1), ("n_zero", -1),
    ("n_experts", "8"), ("d_model", 8.0), ("top_k", True), ("jitter", -0.1), ("jitter", math.nan),
    ("jitter", math.inf), ("routed_scale", math.nan), ("routed_scale", 0.0), ("capacity_factor", math.nan),
    ("capacity_factor", math.inf), ("capacity_factor", 0), ("expert_capacity", math.nan), ("top_p", math.nan),
    ("top_p", 0.0), ("top_p", 1.5), ("max_k", 0), ("shared_hidden", 0), ("dts_anneal_steps", 0),
    ("score", "tanh"), ("activation", "swish2"), ("router", "random"), ("always_on", (7,)), ("n_groups", -2),
])
def test_bad_config_numbers_are_clear_errors(field, value):
    with pytest.raises(InputError, match=field):
        MoEConfig(**BASE | {field: value})


def test_routers_reject_bad_numbers_directly():
    for kwargs in ({"jitter": math.nan}, {"jitter": -1.0}, {"scale": math.nan}, {"scale": -2.0}):
        with pytest.raises(InputError):
            TopKRouter(8, 4, 2, **kwargs)
    with pytest.raises(InputError, match="d_model"):
        TopKRouter(0, 4, 2)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_input_is_a_clear_error(dtype):
    with pytest.raises(InputError, match="floating-point"):
        MoELayer(MoEConfig(**BASE))(torch.ones(3, 8, dtype=dtype))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_token_is_left_out_of_the_aux_losses(bad):
    """With one bad token the losses equal those of the batch without it (top-k routes each
    token on its own, so the other tokens' routing is the same)."""
    torch.manual_seed(0)
    layer = MoELayer(MoEConfig(**BASE, top_k=2))
    x = torch.randn(20, 8)
    x_bad = x.clone()
    x_bad[7, 3] = bad
    poisoned, clean = layer(x_bad), layer(torch.cat([x[:7], x[8:]]))
    for key in ("balance", "z"):
        assert torch.isfinite(poisoned.losses[key])
        torch.testing.assert_close(poisoned.losses[key], clean.losses[key], rtol=1e-6, atol=0)
    assert torch.isnan(poisoned.output[7]).any() and torch.isfinite(poisoned.output[torch.arange(20) != 7]).all()


def test_balance_loss_of_finite_batches_is_the_formula():
    """The masked statistics change nothing for finite tokens: E * sum_e f_e P_e from the counts."""
    torch.manual_seed(1)
    routing = MoELayer(MoEConfig(**BASE, top_k=2, capacity_factor=0.75)).route(torch.randn(32, 8))
    f = routing.expert_counts.float() / 32
    want = 4 * (f * routing.probs.mean(0)).sum()
    torch.testing.assert_close(load_balancing_loss(routing), want)


def test_empty_and_all_bad_batches_give_zero_aux_loss():
    layer = MoELayer(MoEConfig(**BASE))
    empty = layer(torch.randn(0, 8))
    assert empty.output.shape == (0, 8)
    assert empty.aux_loss(balance=1.0, z=1.0).item() == 0.0
    all_nan = layer(torch.full((5, 8), math.nan))
    assert load_balancing_loss(all_nan.routing).item() == 0.0 and router_z_loss(all_nan.routing).item() == 0.0


def test_huge_capacity_factor_is_dropless_without_overflow():
    torch.manual_seed(2)
    layer = MoELayer(MoEConfig(**BASE, top_k=2))
    huge = MoELayer(layer.config.replace(capacity_factor=1e308))
    huge.load_state_dict(layer.state_dict())
    x = torch.randn(16, 8)
    torch.testing.assert_close(huge(x).output, layer(x).output)
    assert (huge(x).routing.indices >= 0).all()


@pytest.mark.parametrize("argv,message", [
    (["--steps", "0"], "--steps"), (["--steps", "-5"], "--steps"), (["--seed", "-1"], "--seed"),
    (["--experts", "0"], "--experts"), (["--top-k", "0"], "--top-k"), (["--steps", "nan"], "--steps"),
])
def test_demo_options_are_validated_at_the_boundary(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["core", "demo", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_run_demo_refuses_zero_steps():
    with pytest.raises(InputError, match="steps"):
        run_demo(steps=0)
    with pytest.raises(InputError, match="seed"):
        run_demo(steps=1, seed=-1)


def test_argument_types():
    assert positive_int("3") == 3 and non_negative_int("0") == 0 and positive_float("0.5") == 0.5
    for parse, text in ((positive_int, "0"), (positive_int, "1.5"), (non_negative_int, "-1"),
                        (positive_float, "nan"), (positive_float, "inf"), (positive_float, "-0.1")):
        with pytest.raises(Exception, match="expected"):
            parse(text)
