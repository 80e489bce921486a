"""ARFF and CSV stream readers on small fixture files in the real benchmarks' layouts."""

import gzip
import shutil

import pytest

from moe_zoo.core import InputError
from moe_zoo.streams import iter_arff, iter_csv
from moe_zoo.streams.readers import iter_file, read_arff_header


def test_electricity_arff(fixtures):
    rows = list(iter_arff(fixtures / "elec_small.arff"))
    assert len(rows) == 5  # the comment line inside @data is skipped
    x, y = rows[0]
    assert y == "UP" and rows[2][1] == "DOWN"
    assert x["day"] == "2" and isinstance(x["day"], str)  # nominal stays nominal
    assert x["nswprice"] == pytest.approx(0.056443) and isinstance(x["period"], float)
    assert "vicprice" not in rows[3][0] and len(rows[3][0]) == 7  # '?' is missing
    header = read_arff_header(fixtures / "elec_small.arff")
    assert [a.name for a in header][-1] == "class" and header[-1].nominal == ("UP", "DOWN")


def test_airlines_arff_with_quoted_nominals_and_a_named_target(fixtures):
    rows = list(iter_arff(fixtures / "airlines_small.arff"))
    assert rows[2][0]["Airline"] == "WN" and rows[2][0]["AirportTo"] == "LAX" and rows[2][1] == "0"
    by_day = list(iter_arff(fixtures / "airlines_small.arff", target="DayOfWeek"))
    assert by_day[0][1] == "3" and "Delay" in by_day[0][0]


def test_sparse_arff_fills_absent_values(fixtures):
    rows = list(iter_arff(fixtures / "covtype_sparse.arff"))
    assert rows[0] == ({"elevation": 0.36, "slope": 0.14, "soil_1": "0", "soil_2": "1"}, "5")
    assert rows[2] == ({"elevation": 0.0, "slope": 0.0, "soil_1": "0", "soil_2": "0"}, "1")


def test_csv_reader_types_missing_values_and_gzip(fixtures, tmp_path):
    rows = list(iter_csv(fixtures / "elec_small.csv"))
    assert len(rows) == 3 and rows[0][1] == "UP"
    assert rows[0][0]["day"] == 2.0 and "vicprice" not in rows[2][0]
    zipped = tmp_path / "elec_small.csv.gz"
    with open(fixtures / "elec_small.csv", "rb") as src, gzip.open(zipped, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert list(iter_file(zipped)) == rows
    dropped = list(iter_csv(fixtures / "elec_small.csv", target="day", drop=("date",)))
    assert dropped[0][1] == 2 and "date" not in dropped[0][0] and dropped[0][0]["class"] == "UP"


@pytest.mark.parametrize("body, message", [
    ("@attribute a numeric\n@attribute c {x,y}\n@data\n1,z\n", "not a declared value"),
    ("@attribute a numeric\n@attribute c {x,y}\n@data\n1,x,3\n", "expected 2 values"),
    ("@attribute a numeric\n@attribute c {x,y}\n@data\nfoo,x\n", "is numeric"),
    ("@attribute a date\n@data\n", "supported"),
    ("@attribute a numeric\n", "no @data"),
])
def test_malformed_arff_names_file_and_line(tmp_path, body, message):
    path = tmp_path / "bad.arff"
    path.write_text(body)
    with pytest.raises(InputError, match=message):
        list(iter_arff(path))


def test_bad_paths_and_columns(tmp_path, fixtures):
    with pytest.raises(InputError, match="does not exist"):
        list(iter_csv(tmp_path / "missing.csv"))
    with pytest.raises(InputError, match="no column"):
        list(iter_csv(fixtures / "elec_small.csv", target="nope"))
    with pytest.raises(InputError, match="unknown stream file type"):
        iter_file(tmp_path / "data.parquet")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3\n")
    with pytest.raises(InputError, match=":3: expected 2 values"):
        list(iter_csv(ragged))
