"""Snippet-feature data sets: the on-disk formats of UCF-Crime and XD-Violence, and batching.

Layouts read here (all features are ``.npy``, one row per 16-frame snippet):

* **RTFM style** (UCF-Crime / XD-Violence I3D ResNet50): one file per video, ``[T, crops, 2048]``
  (10 crops on UCF, 5 on XD) or ``[T, 2048]``; a list file of paths (``ucf-i3d.list``,
  abnormal videos first); test ground truth ``gt-ucf.npy`` / ``gt.npy``: the frame labels of all
  test videos concatenated in list order, ``16 T`` frames per video.
* **UR-DMU style**: one file per crop, ``<Class>/<Video>_x264__<crop>.npy`` of shape
  ``[T, 1024]``; ``UCF_Train.list`` (crop files of 810 abnormal then 800 normal videos),
  ``UCF_Test.list``; XD: ``<video>__<crop>.npy`` with the class in the name
  (``..._label_B1-B2-0``; ``label_A`` = normal), ``XD_Annotation.txt``.
* **Frame annotations**: UCF ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``
  (``Abuse028_x264.mp4  Abuse  165  240  -1  -1``: up to two [start, end] frame intervals,
  -1 = none) and XD ``XD_Annotation.txt`` (``<video> s1 e1 s2 e2 ...``).

Consecutive crop files of one video (``__0`` ... ``__9``) are grouped into one
:class:`VideoFeatures` whose array is ``[T, crops, D]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from moe_zoo.core import InputError

if TYPE_CHECKING:
    from moe_zoo.vad.features import FeatureConfig

NORMAL = "Normal"
XD_CLASSES = {"A": NORMAL, "B1": "Fighting", "B2": "Shooting", "B4": "Riot", "B5": "Abuse",
              "B6": "Car accident", "G": "Explosion"}
UCF_SNIPPET = 16
_CROP = re.compile(r"^(?P<video>.+?)__(?P<crop>\d+)$")
_UCF_CLASS = re.compile(r"^(?P<cls>[A-Za-z]+?)(?:_?Videos?)?_?\d+")


@dataclass
class VideoFeatures:
    """One video: its snippet features (loaded lazily), weak label, classes and frame labels."""

    name: str
    paths: tuple[Path, ...] = ()
    label: int = 0                       # 1 = contains an anomaly (video-level, weak)
    classes: tuple[str, ...] = (NORMAL,)  # anomaly classes of the video (XD has multi-label)
    frame_labels: np.ndarray | None = None
    array: np.ndarray | None = field(default=None, repr=False)

    def load(self) -> np.ndarray:
        """``float32 [T, D]`` or ``[T, crops, D]`` (validated: finite, 2-D or 3-D, same T for every crop)."""
        if self.array is not None:
            return self.array
        parts = [_load_npy(p) for p in self.paths]
        if not parts:
            raise InputError(f"video {self.name!r} has no feature files")
        if len(parts) == 1:
            return parts[0]
        lengths = {p.shape[0] for p in parts}
        if len(lengths) > 1 or any(p.ndim != 2 for p in parts):
            raise InputError(f"crop files of {self.name!r} disagree: shapes {[p.shape for p in parts]}")
        return np.stack(parts, axis=1)

    @property
    def primary_class(self) -> str:
        return self.classes[0]


@dataclass
class FeatureSet:
    """A list of videos plus the number of frames per snippet of their features, and the
    :class:`~moe_zoo.vad.features.FeatureConfig` that made them when it is not the default
    (a model trained on them records it, so predict extracts the same features)."""

    videos: list[VideoFeatures]
    snippet_len: int = UCF_SNIPPET
    features: FeatureConfig | None = None

    def __len__(self) -> int:
        return len(self.videos)

    def __iter__(self) -> Iterator[VideoFeatures]:
        return iter(self.videos)

    @property
    def anomaly_classes(self) -> tuple[str, ...]:
        """Sorted anomaly classes present (the order of the class experts)."""
        return tuple(sorted({c for v in self.videos for c in v.classes if c != NORMAL}))

    def subset(self, keep: Sequence[int]) -> FeatureSet:
        return FeatureSet([self.videos[i] for i in keep], self.snippet_len, self.features)


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"feature file not found: {path}")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise InputError(f"cannot read feature file {path}: {err}") from None
    if array.ndim not in (2, 3) or array.shape[0] == 0:
        raise InputError(f"{path}: expected snippet features [T, D] or [T, crops, D], got shape {array.shape}")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise InputError(f"{path}: features contain NaN or infinite values")
    return array


def ucf_class(name: str) -> str:
    """UCF-Crime class from a video name: ``Abuse028_x264`` -> Abuse, ``Normal_Videos_003`` -> Normal."""
    if "normal" in name.lower():
        return NORMAL
    match = _UCF_CLASS.match(name)
    return match.group("cls") if match else name


def xd_classes(name: str) -> tuple[str, ...]:
    """XD-Violence classes from ``..._label_B1-B2-0``: ``('Fighting', 'Shooting')``; ``label_A`` -> Normal."""
    if "_label_" not in name:
        raise InputError(f"XD-Violence name without '_label_': {name!r}")
    codes = [c for c in name.rsplit("_label_", 1)[1].split("-") if c and c != "0"]
    unknown = [c for c in codes if c not in XD_CLASSES]
    if unknown or not codes:
        raise InputError(f"XD-Violence name {name!r} has unknown label codes {unknown or codes}")
    classes = tuple(XD_CLASSES[c] for c in codes)
    return (NORMAL,) if NORMAL in classes else classes


def _locate(path: Path, base: Path, rerooted: bool) -> Path:
    """A listed path: relative ones under ``base``; absolute ones as written, unless they do not
    exist and a ``root`` was given, then ``root/<class>/<file>`` or ``root/<file>`` (the published
    RTFM lists hold their authors' absolute paths)."""
    if not path.is_absolute():
        return base / path
    if path.exists() or not rerooted:
        return path
    for candidate in (base / path.parent.name / path.name, base / path.name):
        if candidate.exists():
            return candidate
    return path


def read_list(list_file: str | Path, root: str | Path | None = None) -> list[tuple[str, tuple[Path, ...]]]:
    """Parse a feature list: one ``.npy`` path per line (relative paths resolved against ``root``,
    default the list's folder; see :func:`_locate` for absolute ones). Per-crop files
    ``<video>__<k>.npy`` are grouped per video, in order."""
    list_file = Path(list_file)
    if not list_file.is_file():
        raise InputError(f"list file not found: {list_file}")
    base = Path(root) if root is not None else list_file.parent
    videos: list[tuple[str, list[Path]]] = []
    for line_no, line in enumerate(read_text_lines(list_file, "list file"), 1):
        entry = line.strip().split()[0] if line.strip() else ""
        if not entry:
            continue
        if not entry.endswith(".npy"):
            raise InputError(f"{list_file}:{line_no}: expected a .npy path, got {entry!r}")
        path = _locate(Path(entry.replace("\\", "/")), base, root is not None)
        stem = path.name[:-4]
        match = _CROP.match(stem)
        video = match.group("video") if match else stem.removesuffix("_i3d")
        if videos and videos[-1][0] == video and match:
            videos[-1][1].append(path)
        else:
            videos.append((video, [path]))
    if not videos:
        raise InputError(f"list file {list_file} lists no feature files")
    return [(name, tuple(paths)) for name, paths in videos]


def read_ucf_annotations(path: str | Path) -> dict[str, tuple[str, list[tuple[int, int]]]]:
    """``Temporal_Anomaly_Annotation*.txt`` -> ``{video: (class, [(start, end), ...])}`` (frame
    numbers as written, both ends inclusive; -1 pairs dropped). Keys drop the extension."""
    result = {}
    for line_no, line in enumerate(_lines(path), 1):
        parts = line.split()
        if len(parts) != 6:
            raise InputError(f"{path}:{line_no}: expected 6 columns 'video class s1 e1 s2 e2', got {line!r}")
        try:
            numbers = [int(v) for v in parts[2:]]
        except ValueError:
            raise InputError(f"{path}:{line_no}: frame numbers must be integers: {line!r}") from None
        pairs = [(s, e) for s, e in zip(numbers[::2], numbers[1::2]) if s >= 0 and e >= 0]
        result[Path(parts[0]).stem] = (parts[1], pairs)
    return result


def read_xd_annotations(path: str | Path) -> dict[str, list[tuple[int, int]]]:
    """``XD_Annotation.txt`` -> ``{video: [(start, end), ...]}`` (pairs of frame numbers)."""
    result = {}
    for line_no, line in enumerate(_lines(path), 1):
        name, *values = line.split()
        if len(values) % 2:
            raise InputError(f"{path}:{line_no}: odd number of frame numbers after {name!r}")
        try:
            numbers = [int(v) for v in values]
        except ValueError:
            raise InputError(f"{path}:{line_no}: frame numbers must be integers: {line!r}") from None
        result[name] = list(zip(numbers[::2], numbers[1::2]))
    return result


def read_text_lines(path: Path, what: str) -> list[str]:
    """Lines of a UTF-8 text file, with a clear error for a file in another encoding or binary."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise InputError(f"{what} {path} is not UTF-8 text (byte 0x{data[err.start]:02x} at line {line}, "
                         f"offset {err.start}); expected one path or annotation per line in UTF-8") from None
    if "\x00" in text:
        raise InputError(f"{what} {path} holds NUL bytes: a binary file, not a text list")
    return text.splitlines()


def _lines(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"annotation file not found: {path}")
    return [line.strip() for line in read_text_lines(path, "annotation file") if line.strip()]


def frame_labels_from_segments(n_frames: int, segments: Sequence[tuple[int, int]]) -> np.ndarray:
    """``uint8 [n_frames]`` with 1 on every frame inside an inclusive ``[start, end]`` segment."""
    labels = np.zeros(n_frames, dtype=np.uint8)
    for start, end in segments:
        labels[max(start, 0):min(end + 1, n_frames)] = 1
    return labels


def split_concatenated(gt: np.ndarray, lengths: Sequence[int], source: str = "ground truth") -> list[np.ndarray]:
    """Cut a concatenated frame-label array (``gt-ucf.npy``) into per-video pieces."""
    gt = np.asarray(gt).reshape(-1)
    if int(sum(lengths)) != len(gt):
        raise InputError(f"{source} has {len(gt)} frames but the listed videos need {int(sum(lengths))} "
                         f"(sum of 16 x snippets); is it the ground truth of this list, in this order?")
    bounds = np.cumsum([0, *lengths])
    return [gt[a:b].astype(np.uint8) for a, b in pairwise(bounds)]


def load_features_list(list_file: str | Path, *, dataset: str = "ucf", root: str | Path | None = None,
                       gt: str | Path | None = None, annotations: str | Path | None = None,
                       snippet_len: int = UCF_SNIPPET) -> FeatureSet:
    """Read a UCF-Crime (``dataset="ucf"``) or XD-Violence (``"xd"``) feature list.

    Test frame labels come from a concatenated ``gt`` array or from an ``annotations`` file
    (then each video's frame count is ``snippet_len * T``); both are optional for training lists.
    """
    if dataset not in ("ucf", "xd"):
        raise InputError(f"dataset must be 'ucf' or 'xd', got {dataset!r}")
    videos = []
    for name, paths in read_list(list_file, root):
        classes = (ucf_class(name),) if dataset == "ucf" else xd_classes(name)
        label = int(classes != (NORMAL,))
        videos.append(VideoFeatures(name, paths, label, classes))
    result = FeatureSet(videos, snippet_len)
    if gt is not None or annotations is not None:
        attach_frame_labels(result, gt=gt, annotations=annotations, dataset=dataset)
    return result


def attach_frame_labels(features: FeatureSet, *, gt: str | Path | np.ndarray | None = None,
                        annotations: str | Path | None = None, dataset: str = "ucf") -> FeatureSet:
    """Fill ``frame_labels`` of every video from a concatenated array or an annotation file."""
    lengths = [v.load().shape[0] * features.snippet_len for v in features]
    if gt is not None:
        array = np.load(gt, allow_pickle=False) if isinstance(gt, str | Path) else np.asarray(gt)
        for video, labels in zip(features, split_concatenated(array, lengths, str(gt) if not
                                                              isinstance(gt, np.ndarray) else "ground truth")):
            video.frame_labels = labels
        return features
    if dataset == "ucf":
        table = {k: v[1] for k, v in read_ucf_annotations(annotations).items()}
    else:
        table = read_xd_annotations(annotations)
    for video, n_frames in zip(features, lengths):
        segments = table.get(video.name, table.get(video.name.removesuffix("_x264"), []))
        if video.label and video.name not in table and video.name.removesuffix("_x264") not in table:
            raise InputError(f"anomalous test video {video.name!r} has no line in {annotations}")
        video.frame_labels = frame_labels_from_segments(n_frames, segments)
    return features


def pool_segments(features: np.ndarray, n_segments: int) -> np.ndarray:
    """UR-DMU/RTFM training resampling of ``[T, ...]`` to ``[n_segments, ...]``: split ``0..T`` into
    ``n_segments`` equal bins (``linspace``) and average each; an empty bin takes its snippet."""
    bounds = np.linspace(0, len(features), n_segments + 1).astype(int)
    out = np.empty((n_segments, *features.shape[1:]), dtype=np.float32)
    for i, (lo, hi) in enumerate(pairwise(bounds)):
        out[i] = features[lo:hi].mean(0) if hi > lo else features[min(lo, len(features) - 1)]
    return out


def expand_to_frames(snippet_scores: np.ndarray, snippet_len: int, n_frames: int | None = None) -> np.ndarray:
    """Repeat each snippet score ``snippet_len`` times (the UCF/XD protocol), cut or edge-pad to ``n_frames``."""
    frames = np.repeat(np.asarray(snippet_scores, dtype=np.float32), snippet_len)
    if n_frames is None or n_frames == len(frames):
        return frames
    if n_frames < len(frames):
        return frames[:n_frames]
    return np.pad(frames, (0, n_frames - len(frames)), mode="edge")
