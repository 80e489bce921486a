"""Public API and CLI: README example (doctest), predict/eval/train/demo, model-level no look-ahead."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from moe_zoo.core import UnknownModelError, create_model, load_checkpoint
from moe_zoo.core.cli import main
from moe_zoo.finance import predict
from moe_zoo.finance.dataset import DataConfig

PACKAGE = Path(__file__).resolve().parents[1]


def test_readme_example_runs():
    failures, attempted = doctest.testfile(str(PACKAGE / "README.md"), module_relative=False,
                                           optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0 and failures == 0


def test_scores_at_t_do_not_move_when_later_prices_change(panel):
    model = create_model("miga-conv", data=DataConfig(feature_set="alpha158-20", step_len=5).to_dict()).eval()
    days = panel.index.get_level_values("datetime").unique()
    later = panel.index.get_level_values("datetime") > days[60]
    changed = panel.copy()
    changed.loc[later] = changed.loc[later] * 1.3
    a, b = predict(model, panel), predict(model, changed)
    np.testing.assert_array_equal(a[:days[60]].to_numpy(), b[:days[60]].to_numpy())
    assert not np.allclose(a[days[61]:].to_numpy(), b[days[61]:].to_numpy())


def test_cli_predict_with_shipped_weights_ranks_the_api_scores(tmp_path, sp500, capsys):
    out_csv = tmp_path / "scores.csv"
    assert main(["-q", "finance", "predict", "--top", "3", "--out", str(out_csv)]) == 0
    printed = capsys.readouterr().out.splitlines()
    written = pd.read_csv(out_csv, parse_dates=["datetime"]).set_index(["datetime", "instrument"])["score"]
    expected = predict("miga-conv", sp500, start="2010-08-20", end="2010-08-20")
    pd.testing.assert_series_equal(written, expected, check_exact=False, rtol=1e-6)
    best = expected.droplevel("datetime").sort_values(ascending=False).head(3)
    assert [line.split()[0] for line in printed[-3:]] == list(best.index)
    assert [float(line.split()[1]) for line in printed[-3:]] == pytest.approx(best.to_numpy(), abs=5e-5)


def test_cli_train_then_predict_on_a_csv(tmp_path, panel_factory, capsys):
    panel = panel_factory(n_days=200, n_stocks=6)
    csv = tmp_path / "prices.csv"
    panel.reset_index().to_csv(csv, index=False)
    ckpt = tmp_path / "linear.safetensors"
    assert main(["-q", "finance", "train", "--model", "finance-linear", "--data", str(csv), "--epochs", "2",
                 "--out", str(ckpt)]) == 0
    assert "best valid IC" in capsys.readouterr().out and ckpt.exists()
    again = tmp_path / "again.safetensors"                  # same seed: the same initial weights and batches
    assert main(["-q", "finance", "train", "--model", "finance-linear", "--data", str(csv), "--epochs", "2",
                 "--out", str(again)]) == 0
    for key, value in load_checkpoint(ckpt).state_dict.items():
        torch.testing.assert_close(load_checkpoint(again).state_dict[key], value, rtol=0, atol=0)
    assert main(["-q", "finance", "predict", "--model", str(ckpt), "--data", str(csv), "--top", "2"]) == 0
    assert "top 2 of 6 stocks" in capsys.readouterr().out


def test_cli_errors_are_one_line(capsys):
    assert main(["-q", "finance", "predict", "--data", "no-such-file.csv"]) == 2
    assert "error:" in capsys.readouterr().err
    with pytest.raises(UnknownModelError):
        create_model("miga-convv")


def test_demo_explains_the_shipped_model(capsys):
    assert main(["-q", "finance", "demo", "--top", "5"]) == 0
    out = capsys.readouterr().out
    for text in ("IC", "annualised excess return", "Top 5 of", "expert group"):
        assert text in out


def test_evaluate_on_the_test_months(sp500_features):
    from moe_zoo.finance import evaluate

    result = evaluate("miga-conv", sp500_features)
    assert 40 <= result.signal.days <= 70 and -1 < result.signal.ic < 1
    assert result.backtest.config.topk == 30
    assert isinstance(result.scores, pd.Series) and result.scores.index.nlevels == 2


def test_benchmark_summary_is_written_between_the_readme_markers(tmp_path):
    from moe_zoo.finance.benchmark import README_END, README_START, _verdict, write_readme_summary

    runs = [{"model": m, "ic": ic, "rank_ic": ic, "annualized_return_with_cost": ret}
            for m, ic, ret in (("miga-conv", 0.03, -0.1), ("miga-conv", 0.05, -0.2), ("miga-conv-single", 0.01, 0.1),
                               ("miga-conv-single", 0.01, 0.3))]
    verdict = _verdict(runs, ["miga-conv", "miga-conv-single"])
    assert "IC 1 of 2" in verdict and "excess return 2 of 2" in verdict and "+0.0300" in verdict
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold numbers\n{README_END}\nrest\n")
    assert write_readme_summary(readme, "new numbers")
    assert readme.read_text() == f"intro\n{README_START}\nnew numbers\n{README_END}\nrest\n"
    readme.write_text("no markers")
    assert not write_readme_summary(readme, "x")
