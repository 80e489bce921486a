"""The built-in offline data set: real surveillance footage with injected anomalies.

Source: ``vtest.avi`` from Debian's ``opencv-doc`` (a fixed camera over a campus road, 795
frames, 768x576, 10 fps). Frames ``[0, 560)`` give the training clips and ``[560, 795)`` the test
clips, so no test frame is ever seen in training. A clip is ``clip_len`` consecutive frames
(mirrored at random); an anomalous clip carries one event of one class of
:data:`~moe_zoo.vad.synthesis.ANOMALY_CLASSES` with its exact frame labels.

Everything is generated reproducibly from :class:`BuiltinConfig` and cached as features in the
UCF-Crime layout (``<split>/<class>/<clip>.npy``, ``<split>.list`` with anomalous clips first,
``gt-<split>.npy`` frame labels concatenated in list order) under the user cache folder
(``$MOE_ZOO_CACHE`` or ``~/.cache/moe-zoo``), never in the repository.

Features are computed per snippet from the snippet's frames and the frame before it, so a clip's
features equal the footage's features except on the snippets its event touches: the footage is
encoded once per orientation and only touched snippets are re-extracted from rendered frames.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from moe_zoo.core import Config, InputError, get_logger
from moe_zoo.core.video import iter_frames, probe
from moe_zoo.vad.data import NORMAL, FeatureSet, VideoFeatures, read_list, split_concatenated
from moe_zoo.vad.features import FeatureConfig, SnippetExtractor, extract_stream, make_extractor
from moe_zoo.vad.synthesis import (
    ANOMALY_CLASSES,
    AnomalyEvent,
    opencv_data_path,
    render,
    sample_event,
)

_log = get_logger(__name__)
FOOTAGE = "vtest.avi"
SPLITS = ("train", "test")


@dataclass(frozen=True)
class BuiltinConfig(Config):
    """What the built-in data set is made of (its hash names the cache folder)."""

    version: int = 1
    clip_len: int = 128
    train_normal: int = 120
    train_per_class: int = 24
    test_normal: int = 40
    test_per_class: int = 12
    train_frames: tuple[int, int] = (0, 560)
    test_frames: tuple[int, int] = (560, 795)
    seed: int = 0
    features: FeatureConfig = field(default_factory=FeatureConfig)

    def key(self) -> str:
        return hashlib.sha256(self.to_json(None).encode()).hexdigest()[:10]


SECOND_SPLIT = BuiltinConfig(train_frames=(235, 795), test_frames=(0, 235))
"""The footage cut the other way round (test clips from its first 23.5 s): a check on other footage."""


@dataclass(frozen=True)
class ClipSpec:
    """One clip: footage frames ``[start, start + clip_len)``, mirrored or not, with or without an event."""

    name: str
    split: str
    start: int
    flip: bool
    event: AnomalyEvent | None = None

    @property
    def kind(self) -> str:
        return self.event.kind if self.event else NORMAL

    def to_dict(self) -> dict:
        return {**asdict(self), "event": asdict(self.event) if self.event else None}

    @classmethod
    def from_dict(cls, data: dict) -> ClipSpec:
        event = data.get("event")
        return cls(data["name"], data["split"], data["start"], data["flip"],
                   AnomalyEvent(**event) if event else None)


def cache_root() -> Path:
    """``$MOE_ZOO_CACHE`` or ``$XDG_CACHE_HOME/moe-zoo`` or ``~/.cache/moe-zoo``, plus ``/vad``."""
    base = os.environ.get("MOE_ZOO_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "moe-zoo"
    return Path(base) / "vad"


def plan_clips(config: BuiltinConfig, fps: float = 10.0) -> list[ClipSpec]:
    """The clips of both splits (anomalous first within a split), drawn from ``config.seed``."""
    rng = np.random.default_rng(config.seed)
    length = config.features.snippet_len
    if config.clip_len % length:
        raise InputError(f"clip_len={config.clip_len} must be a multiple of snippet_len={length}")
    specs = []
    for split, (lo, hi), n_normal, per_class in (
            ("train", config.train_frames, config.train_normal, config.train_per_class),
            ("test", config.test_frames, config.test_normal, config.test_per_class)):
        starts = np.arange(lo + (-lo) % length, hi - config.clip_len + 1, length)
        if len(starts) == 0:
            raise InputError(f"{split} frames {lo}..{hi} are too few for clips of {config.clip_len} frames")
        kinds = [k for k in ANOMALY_CLASSES for _ in range(per_class)] + [NORMAL] * n_normal
        counters: dict[str, int] = {}
        for kind in kinds:
            counters[kind] = counters.get(kind, 0) + 1
            start, flip = int(rng.choice(starts)), bool(rng.random() < 0.5)
            event = None if kind == NORMAL else sample_event(kind, config.clip_len, fps, rng)
            specs.append(ClipSpec(f"{split}_{kind}_{counters[kind]:03d}", split, start, flip, event))
    return specs


class _Footage:
    """The decoded footage (both orientations) and its per-snippet features."""

    def __init__(self, config: BuiltinConfig, extractor: SnippetExtractor) -> None:
        frames, self.fps = footage_frames()
        self.frames = {False: frames, True: np.ascontiguousarray(frames[:, :, ::-1])}
        self.extractor = extractor
        usable = len(frames) - len(frames) % extractor.snippet_len
        self.features = {flip: extract_stream(self.frames[flip][:usable], extractor)[0] for flip in (False, True)}

    def clip(self, spec: ClipSpec, clip_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(frames, features, frame_labels)`` of a clip (only event snippets are re-extracted)."""
        length = self.extractor.snippet_len
        frames = self.frames[spec.flip][spec.start:spec.start + clip_len]
        first = spec.start // length
        features = self.features[spec.flip][first:first + clip_len // length].copy()
        if spec.event is None:
            return frames, features, np.zeros(clip_len, dtype=np.uint8)
        frames, labels = render(frames, spec.event)
        lo, hi = spec.event.start // length, min(spec.event.end // length, clip_len // length - 1)
        if lo > 0:
            previous = frames[lo * length - 1]
        else:
            previous = self.frames[spec.flip][spec.start - 1] if spec.start > 0 else None
        features[lo:hi + 1] = self.extractor.extract(frames[lo * length:(hi + 1) * length], previous)
        return frames, features, labels


@contextmanager
def building(root: Path) -> Iterator[Path]:
    """A fresh temporary folder next to ``root`` that replaces ``root`` when the block succeeds and
    is removed when it fails, so a cache folder is either complete or absent."""
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        yield tmp
        if root.exists():
            shutil.rmtree(root)
        tmp.rename(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def build(config: BuiltinConfig | None = None, *, root: Path | None = None, device: str = "cpu",
          progress: bool = True) -> Path:
    """Generate the data set into ``root`` (default: the cache folder for ``config``); returns it."""
    from tqdm.auto import tqdm

    config = config or BuiltinConfig()
    root = root or cache_root() / f"builtin-v{config.version}-{config.key()}"
    if (root / "DONE").exists():
        return root
    started = time.perf_counter()
    footage = _Footage(config, make_extractor(config.features, device=device))
    specs = plan_clips(config, footage.fps)
    with building(root) as tmp:
        labels: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
        lists: dict[str, list[str]] = {s: [] for s in SPLITS}
        for spec in tqdm(specs, desc="built-in clips", disable=not progress, leave=False):
            _, features, frame_labels = footage.clip(spec, config.clip_len)
            relative = Path(spec.split) / spec.kind / f"{spec.name}.npy"
            (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
            np.save(tmp / relative, features.astype(np.float32))
            lists[spec.split].append(str(relative))
            labels[spec.split].append(frame_labels)
        for split in SPLITS:
            (tmp / f"{split}.list").write_text("\n".join(lists[split]) + "\n")
            np.save(tmp / f"gt-{split}.npy", np.concatenate(labels[split]))
        meta = {"config": config.to_dict(), "fps": footage.fps, "source": FOOTAGE,
                "clips": [s.to_dict() for s in specs]}
        (tmp / "clips.json").write_text(json.dumps(meta, indent=1))
        (tmp / "DONE").write_text(f"built in {time.perf_counter() - started:.1f} s\n")
    _log.info("built-in data: %d clips in %.1f s at %s", len(specs), time.perf_counter() - started, root)
    return root


def load_builtin(split: str = "train", config: BuiltinConfig | None = None, *, root: Path | None = None,
                 device: str = "cpu", progress: bool = True) -> FeatureSet:
    """The built-in ``split`` as a :class:`FeatureSet` (built and cached on first use)."""
    if split not in SPLITS:
        raise InputError(f"split must be one of {SPLITS}, got {split!r}")
    config = config or BuiltinConfig()
    root = build(config, root=root, device=device, progress=progress)
    clips = {c["name"]: ClipSpec.from_dict(c) for c in json.loads((root / "clips.json").read_text())["clips"]}
    videos = []
    for name, paths in read_list(root / f"{split}.list"):
        spec = clips[name]
        videos.append(VideoFeatures(name, paths, int(spec.event is not None), (spec.kind,)))
    lengths = [config.clip_len] * len(videos)
    for video, labels in zip(videos, split_concatenated(np.load(root / f"gt-{split}.npy"), lengths)):
        video.frame_labels = labels
    return FeatureSet(videos, config.features.snippet_len)


def clip_specs(config: BuiltinConfig | None = None, *, root: Path | None = None) -> dict[str, ClipSpec]:
    """The clip plan of a built data set, by name."""
    config = config or BuiltinConfig()
    root = build(config, root=root)
    return {c["name"]: ClipSpec.from_dict(c) for c in json.loads((root / "clips.json").read_text())["clips"]}


def footage_frames(stop: int | None = None) -> tuple[np.ndarray, float]:
    """Frames ``[0, stop)`` of the footage as decoded for the data set (all when ``stop`` is None)."""
    path = opencv_data_path(FOOTAGE)
    frames = []
    for frame in iter_frames(path):
        if stop is not None and len(frames) == stop:
            break
        frames.append(frame)
    return np.stack(frames), probe(path).fps


def render_clip(spec: ClipSpec, config: BuiltinConfig | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Frames ``uint8 [clip_len, H, W, 3]``, frame labels and fps of one built-in clip."""
    config = config or BuiltinConfig()
    frames, fps = footage_frames(spec.start + config.clip_len)
    frames = frames[spec.start:]
    frames = np.ascontiguousarray(frames[:, :, ::-1]) if spec.flip else frames
    if spec.event is None:
        return frames, np.zeros(len(frames), dtype=np.uint8), fps
    out, labels = render(frames, spec.event)
    return out, labels, fps
