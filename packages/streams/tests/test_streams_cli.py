"""``moe-zoo streams eval|demo|bench`` through the zoo's CLI."""

import json

from moe_zoo.core.cli import main


def test_eval_on_an_arff_file_writes_json_and_plot(fixtures, tmp_path, capsys):
    out, plot = tmp_path / "r.json", tmp_path / "curve.png"
    code = main(["streams", "eval", "--stream", str(fixtures / "airlines_small.arff"), "--model", "driftmoe-data", "ht",
                 "--window", "2", "--quiet", "--json", str(out), "--plot", str(plot)])
    assert code == 0
    text = capsys.readouterr().out
    assert "driftmoe-data" in text and "4 instances" in text
    saved = json.loads(out.read_text())
    assert set(saved["results"]) == {"driftmoe-data", "ht"} and saved["results"]["ht"]["n"] == 4
    assert plot.stat().st_size > 1000


def test_eval_on_a_builtin_stream_and_clear_errors(capsys):
    assert main(["streams", "eval", "--stream", "bananas", "--length", "300", "--model", "driftmoe-task", "--quiet"]) == 0
    assert "300 instances" in capsys.readouterr().out
    assert main(["streams", "eval", "--stream", "sea-a", "--quiet"]) == 2
    assert "did you mean sea_a" in capsys.readouterr().err
    assert main(["streams", "eval", "--stream", "sea_a", "--model", "xgb", "--quiet"]) == 2


def test_demo_reports_every_model_and_the_drifts(capsys):
    assert main(["streams", "demo", "--length", "600"]) == 0
    text = capsys.readouterr().out
    for name in ("driftmoe-plus", "driftmoe-data", "driftmoe-task", "arf", "ht"):
        assert name in text
    assert "just before -> just after each drift" in text
