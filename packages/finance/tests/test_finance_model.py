"""MIGA: shapes, routing, inner group attention, gradients, losses, learning a known signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from moe_zoo.core import (
    InputError,
    create_model,
    list_models,
    load_balancing_loss,
    load_model,
    save_checkpoint,
)
from moe_zoo.finance.dataset import DataConfig, FeaturePanel, Split, cs_rank_norm
from moe_zoo.finance.encoders import ConvEncoder
from moe_zoo.finance.losses import daily_ic, forecast_loss, ic_loss
from moe_zoo.finance.model import MIGA, Forecaster, ForecasterConfig, MIGAConfig
from moe_zoo.finance.train import TrainConfig, fit

DATA = DataConfig(feature_set="alpha158-20", step_len=5)
SMALL = MIGAConfig(data=DATA, hidden=16, encoder_layers=2, n_groups=3, experts_per_group=4, top_k=3, expert_dim=8,
                   expert_hidden=8, n_heads=2)


def small_miga(**overrides) -> MIGA:
    torch.manual_seed(0)
    return MIGA(SMALL.replace(**overrides))


def test_shapes_and_topk_routing():
    model = small_miga().eval()
    out = model(torch.randn(37, 5, 20))
    assert out.score.shape == (37,)
    assert out.routing.indices.shape == (37, 3) and out.routing.probs.shape == (37, 12)
    torch.testing.assert_close(out.routing.weights.sum(-1), torch.ones(37))
    assert (out.routing.indices.sort(-1).values.diff(dim=-1) > 0).all()       # k distinct experts per stock
    assert int(out.routing.expert_counts.sum()) == 37 * 3


@pytest.mark.parametrize("encoder", ["conv", "gru"])
def test_score_is_the_routed_mixture_of_expert_predictions(encoder):
    model = small_miga(encoder=encoder).eval()
    x = torch.randn(11, 5, 20)
    with torch.no_grad():
        out = model(x)
        y = model.expert_predictions(model.encoder(x))
    expected = (out.routing.dense_weights() * y).sum(-1)
    torch.testing.assert_close(out.score, expected)


@pytest.mark.parametrize("length", [20, 9, 1])
def test_conv_encoder_equals_the_full_causal_convolution(length):
    """The last-step-only computation against a plain full-sequence Conv1d stack (same weights)."""
    torch.manual_seed(0)
    encoder = ConvEncoder(7, 16, layers=3)
    x = torch.randn(9, length, 7, requires_grad=True)
    h = encoder.proj(x).transpose(1, 2)                                    # [N, H, T]
    for conv in encoder.convs:
        pad = (conv.kernel_size[0] - 1) * conv.dilation[0]
        h = h + torch.nn.functional.gelu(conv(torch.nn.functional.pad(h, (pad, 0))))
    expected = encoder.norm(h[:, :, -1])
    grad_expected = torch.autograd.grad(expected.square().sum(), x)[0]
    got = encoder(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.autograd.grad(got.square().sum(), x)[0], grad_expected, rtol=1e-4, atol=1e-5)
    if length == 20:                                                       # 3 layers, k = 3: days 5..19 only
        assert grad_expected[:, :5].abs().max() == 0 and grad_expected[:, 5].abs().max() > 0


def test_inner_group_attention_mixes_within_groups_only():
    model = small_miga().eval()
    attention = model.group_attention
    z = torch.randn(3, 4, 6, 8)                                  # [G, M, N, d]
    poked = z.clone()
    poked[1, 2] += 3.0 * torch.randn(6, 8)                       # change expert (group 1, member 2)
    with torch.no_grad():
        a, b = attention(z), attention(poked)
    torch.testing.assert_close(a[[0, 2]], b[[0, 2]])             # other groups untouched
    moved = (a[1] - b[1]).abs().amax(dim=(1, 2))
    assert (moved[[0, 1, 3]] > 1e-4).all()                       # the group's other experts saw it


@pytest.mark.parametrize("kind", ["ic", "mse"])
def test_gradients_reach_every_parameter(kind):
    model = small_miga().train()
    x, target = torch.randn(40, 5, 20), torch.randn(40)
    loss, parts = forecast_loss(model(x), target, kind=kind, balance_weight=SMALL.balance_weight)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        if kind == "ic" and name == "expert_head.bias":
            # s_i = sum_e g_ie (w^T z'_ie + b) = ... + b (the g_ie sum to 1): the bias shifts every
            # score of the day alike, and a Pearson IC is shift-invariant, so its gradient is 0.
            assert parameter.grad.abs().max() < 1e-6, name
        else:
            assert parameter.grad.abs().sum() > 0, name
    assert parts["balance"] >= SMALL.top_k - 1e-4                # E * sum f P >= k for top-k


def test_balance_term_is_moe_cores_switch_loss():
    model = small_miga().train()
    out = model(torch.randn(50, 5, 20))
    routing = out.routing
    f = routing.expert_counts.float() / 50
    torch.testing.assert_close(out.aux_loss, 12 * (f * routing.probs.mean(0)).sum())
    torch.testing.assert_close(out.aux_loss, load_balancing_loss(routing))


def test_bad_inputs_raise_clear_errors():
    model = small_miga().eval()
    with pytest.raises(InputError, match=r"\[stocks, days, 20\]"):
        model(torch.randn(4, 5, 19))
    bad = torch.randn(4, 5, 20)
    bad[0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        model(bad)
    with pytest.raises(InputError):
        MIGAConfig(top_k=64)


def test_daily_ic_matches_numpy_per_day():
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=30), rng.normal(size=30)
    days = np.repeat([0, 1, 2], [8, 12, 10])
    got = daily_ic(torch.tensor(pred), torch.tensor(target), torch.tensor(days), 3).numpy()
    expected = [np.corrcoef(pred[days == d], target[days == d])[0, 1] for d in range(3)]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert float(ic_loss(torch.tensor(target), torch.tensor(target))) == pytest.approx(-1.0, abs=1e-6)


def test_registry_configs_and_checkpoint_round_trip(tmp_path):
    names = list_models("miga-*") + list_models("finance-*")
    assert {"miga-conv", "miga-gru", "miga-conv-single", "finance-lstm", "finance-transformer"} <= set(names)
    default = create_model("miga-conv")
    assert default.config.n_experts == 63 and default.config.top_k == 8 and default.config.data.d_feat == 158
    assert MIGAConfig.from_json(SMALL.to_json()) == SMALL
    model = small_miga().eval()
    model.registry_name = "miga-conv"
    save_checkpoint(tmp_path / "m.safetensors", model)
    back = load_model(tmp_path / "m.safetensors").eval()
    x = torch.randn(9, 5, 20)
    torch.testing.assert_close(back(x).score, model(x).score)


def _style_panel(days: int = 50, stocks: int = 60, seed: int = 0) -> FeaturePanel:
    """Two styles: the next return follows factor 0 when factor 1 > 0 and its opposite otherwise."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(days, stocks, 20)).astype(np.float32)
    signal = np.where(features[..., 1] > 0, features[..., 0], -features[..., 0])
    label = signal + 0.5 * rng.normal(size=signal.shape)
    dates = pd.bdate_range("2020-01-01", periods=days)
    return FeaturePanel(dates=dates, instruments=pd.Index([f"S{i}" for i in range(stocks)]), features=features,
                        exists=np.ones((days, stocks), bool), label=label, target=cs_rank_norm(label),
                        close=np.ones((days, stocks)), config=DATA)


def test_miga_learns_style_dependent_signal_a_linear_model_cannot():
    fp = _style_panel()
    split = Split(train=("2020-01-01", "2020-02-11"), valid=("2020-02-14", "2020-03-06"), test=("2020-03-10", "2020-03-10"))
    config = TrainConfig(epochs=8, lr=5e-3, days_per_batch=6, patience=8)
    miga = fit(small_miga(), fp, split, config, seed=0)
    linear = fit(Forecaster(ForecasterConfig(data=DATA, encoder="linear")), fp, split, config, seed=0)
    assert miga.best_valid_ic > 0.4, miga.history
    assert linear.best_valid_ic < 0.1
    assert len(miga.history) >= 1 and miga.history[-1]["balance"] >= SMALL.top_k - 1e-3


def test_training_resumes_from_its_state_file(tmp_path):
    fp = _style_panel(days=40, stocks=20)
    split = Split(train=("2020-01-01", "2020-02-04"), valid=("2020-02-07", "2020-02-25"), test=("2020-02-26", "2020-02-26"))
    state = tmp_path / "state.safetensors"
    first = fit(small_miga(), fp, split, TrainConfig(epochs=2, patience=10), seed=1, state_path=state)
    resumed = fit(small_miga(), fp, split, TrainConfig(epochs=3, patience=10), seed=1, state_path=state)
    straight = fit(small_miga(), fp, split, TrainConfig(epochs=3, patience=10), seed=1)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2] and len(first.history) == 2
    assert resumed.history[-1]["valid_ic"] == pytest.approx(straight.history[-1]["valid_ic"], abs=1e-5)
