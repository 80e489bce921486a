"""Bad input gets a clear error (or is read as missing), never a traceback or a silent change:
stream files (NaN spellings, strings in numeric columns, huge numbers, non-UTF-8, corrupt gzip),
the model's own boundary and every numeric CLI option."""

import gzip

import pytest

from moe_zoo.core import InputError
from moe_zoo.core.cli import main
from moe_zoo.streams import DriftMoEClassifier, iter_arff, iter_csv
from moe_zoo.streams.demo import run_demo

ARFF_HEADER = "@relation t\n@attribute a numeric\n@attribute b numeric\n@attribute class {x,y}\n@data\n"


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("token", ["nan", "NaN", "NA", "n/a", "null", "?", ""])
def test_csv_nan_spellings_are_missing_values(tmp_path, token):
    path = _write(tmp_path, "s.csv", f"a,b,label\n1.5,{token},up\n2.5,3.0,down\n")
    rows = list(iter_csv(path))
    assert rows[0] == ({"a": 1.5}, "up")  # the feature is left out, as river expects of a missing value
    assert rows[1] == ({"a": 2.5, "b": 3.0}, "down")


def test_csv_missing_label_and_strings_in_numeric_columns_raise(tmp_path):
    with pytest.raises(InputError, match=r"s\.csv:3: the label 'label' is missing"):
        list(iter_csv(_write(tmp_path, "s.csv", "a,label\n1,up\n2,NaN\n")))
    with pytest.raises(InputError, match=r"s\.csv:4: column 'a' is numeric \(from line 2\), got 'high'"):
        list(iter_csv(_write(tmp_path, "s.csv", "a,label\n1,up\n?,up\nhigh,down\n")))
    rows = list(iter_csv(_write(tmp_path, "n.csv", "colour,label\nred,up\n7,down\n")))  # a nominal column
    assert rows[1][0] == {"colour": "7"}


@pytest.mark.parametrize("value", ["1e308", "-1e200", "inf", "-Infinity", "1e400"])
def test_csv_and_arff_reject_numbers_the_trees_cannot_square(tmp_path, value):
    with pytest.raises(InputError, match=r"s\.csv:2: 'a' is .*expected a finite number of magnitude <= 1e\+150"):
        list(iter_csv(_write(tmp_path, "s.csv", f"a,label\n{value},up\n")))
    with pytest.raises(InputError, match=r"s\.arff:6: 'a' is .*finite number"):
        list(iter_arff(_write(tmp_path, "s.arff", ARFF_HEADER + f"{value},1,x\n")))


def test_arff_numeric_nan_is_missing(tmp_path):
    rows = list(iter_arff(_write(tmp_path, "s.arff", ARFF_HEADER + "nan,1,x\n2,?,y\n")))
    assert rows == [({"b": 1.0}, "x"), ({"a": 2.0}, "y")]


def test_non_utf8_and_corrupt_gzip_files_raise_clear_errors(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("city,label\nZürich,up\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin\.csv: not UTF-8 text"):
        list(iter_csv(latin))
    arff = tmp_path / "latin.arff"
    arff.write_bytes((ARFF_HEADER + "1,2,x\n% café\n").encode("latin-1"))
    with pytest.raises(InputError, match=r"latin\.arff: not UTF-8 text"):
        list(iter_arff(arff))
    broken = tmp_path / "s.csv.gz"
    broken.write_bytes(gzip.compress(b"a,label\n1,up\n")[:-12])
    with pytest.raises(InputError, match="corrupt gzip"):
        list(iter_csv(broken))


def test_the_model_rejects_huge_feature_values():
    model = DriftMoEClassifier(seed=0)
    model.learn_one({"a": 1.0, "b": "red"}, 1)
    for bad in (1e308, float("-inf")):
        with pytest.raises(InputError, match=r"x\['a'\] is .*magnitude <= 1e\+150"):
            model.learn_one({"a": bad, "b": "red"}, 1)
        with pytest.raises(InputError, match="magnitude"):
            model.predict_one({"a": bad, "b": "blue"})


@pytest.mark.parametrize("kwargs", [{"seed": -1}, {"seed": 1.5}, {"n_experts": 0}, {"batch_size": 0},
                                    {"grace_period": 0}, {"lam": -1.0}, {"delta": 0.0}, {"scaling": "minmax"},
                                    {"variant": "task", "detect": True}, {"variant": "plus", "combine": "router"},
                                    {"variant": "plus", "grace_unit": "seconds"}, {"variant": "data", "grace_unit": "instances"}])
def test_bad_model_parameters_raise_input_errors(kwargs):
    with pytest.raises(InputError, match="DriftMoEClassifier"):
        DriftMoEClassifier(**kwargs)


@pytest.mark.parametrize(("argv", "message"), [
    (["eval", "--stream", "sea_a", "--window", "0"], "expected an integer > 0, got '0'"),
    (["eval", "--stream", "sea_a", "--seed", "-1"], "expected an integer >= 0, got '-1'"),
    (["eval", "--stream", "sea_a", "--length", "0"], "expected an integer > 0, got '0'"),
    (["eval", "--stream", "sea_a", "--length", "ten"], "expected an integer > 0, got 'ten'"),
    (["bench", "--workers", "0"], "expected an integer > 0, got '0'"),
    (["demo", "--seed", "-1"], "expected an integer >= 0, got '-1'"),
    (["demo", "--length", "-5"], "expected an integer > 0, got '-5'"),
])
def test_numeric_cli_options_are_validated_at_the_boundary(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["streams", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_demo_too_short_to_show_a_drift_is_a_clear_error(capsys):
    assert main(["streams", "demo", "--length", "5"]) == 2
    assert "length must be an integer >= 100, got 5" in capsys.readouterr().err
    with pytest.raises(InputError, match="length"):
        run_demo(length=5)
