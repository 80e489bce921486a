"""Anomalies injected into real footage, with exact frame-level ground truth.

Five classes, each rendered into real frames (the sprites are cut from real photographs in
Debian's ``opencv-doc``):

=================  ==============================================================================
``running``        a person-sized patch (a footballer cut from ``messi5.jpg``) crossing the
                   frame at running speed (whole width in 1.5-2.5 s)
``wrong_way``      a vehicle-sized patch (the car of ``licenseplate_motion.jpg``) driving slowly
                   across the pedestrian area, against the walking flow (width in 4-6 s)
``abandoned_object`` a box (``box.png``) that appears on the ground and stays for 3-6 s
``camera_shake``   the whole frame jitters by 4-10 % of its width for 2-4 s
``flash``          strobe-like exposure bursts (gain up to x2.2) for 1.5-3 s
=================  ==============================================================================

Camera tampering (:data:`TAMPER_CLASSES`, used by the multi-camera data of :mod:`~moe_zoo.vad.cameras`):

=================  ==============================================================================
``freeze``         the feed repeats one frame for 2-5 s (a frozen or replayed camera)
``occlusion``      something covers 35-80 % of the view (a dark textured patch) and stays
``defocus``        the image blurs (Gaussian, sigma ramping up to 2-5 % of the width) and stays
``repoint``        the camera is turned: the view jumps by 20-40 % of the width (and zooms
                   x1.1-1.4) and stays there
=================  ==============================================================================

The ground truth of an event is exactly the set of frames it changes (a sprite partly in view
counts). Everything is drawn from a ``numpy.random.Generator``, so a clip is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from moe_zoo.core import InputError

ANOMALY_CLASSES = ("running", "wrong_way", "abandoned_object", "camera_shake", "flash")
TAMPER_CLASSES = ("freeze", "occlusion", "defocus", "repoint")
ALL_CLASSES = ANOMALY_CLASSES + TAMPER_CLASSES
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
# (file, crop box left, top, right, bottom) of each sprite's source photograph
_SPRITES = {
    "person": ("messi5.jpg", (150, 55, 390, 335)),
    "vehicle": ("licenseplate_motion.jpg", (0, 20, 600, 460)),
    "object": ("box.png", (0, 0, 324, 223)),
}
# event duration range in seconds
_DURATION_S = {"running": (1.5, 2.5), "wrong_way": (4.0, 6.0), "abandoned_object": (3.0, 6.0),
               "camera_shake": (2.0, 4.0), "flash": (1.5, 3.0), "freeze": (2.0, 5.0), "occlusion": (2.0, 5.0),
               "defocus": (2.0, 5.0), "repoint": (2.0, 5.0)}


@dataclass(frozen=True)
class AnomalyEvent:
    """One injected anomaly: class, first frame, end frame (exclusive), and its random seed."""

    kind: str
    start: int
    end: int
    seed: int
    params: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ALL_CLASSES:
            raise InputError(f"unknown anomaly class {self.kind!r}; expected one of {ALL_CLASSES}")
        if not 0 <= self.start < self.end:
            raise InputError(f"anomaly event needs 0 <= start < end, got {self.start}, {self.end}")


def opencv_data_path(name: str) -> Path:
    path = OPENCV_DATA / name
    if not path.is_file():
        raise InputError(f"{path} not found: install the Debian package opencv-doc "
                         "(listed in packages/vad/apt.txt; `bash scripts/install-system-packages.sh`)")
    return path


@lru_cache(maxsize=8)
def _sprite_source(kind: str) -> np.ndarray:
    from PIL import Image

    name, box = _SPRITES[kind]
    with Image.open(opencv_data_path(name)) as image:
        return np.asarray(image.convert("RGB").crop(box))


def make_sprite(kind: str, height: int, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb [h, w, 3] float32, alpha [h, w] float32)`` of a sprite resized to ``height`` pixels,
    with a soft elliptical alpha (rounded-box for vehicles and objects)."""
    from PIL import Image

    source = _sprite_source(kind)
    aspect = source.shape[1] / source.shape[0]
    width = width or max(2, round(height * aspect))
    rgb = np.asarray(Image.fromarray(source).resize((width, height), Image.BILINEAR), dtype=np.float32)
    yy, xx = np.mgrid[0:height, 0:width]
    u, v = (xx + 0.5) / width * 2 - 1, (yy + 0.5) / height * 2 - 1
    if kind == "person":
        radius = np.sqrt(u**2 + v**2)
    else:
        radius = np.maximum(np.abs(u), np.abs(v)) ** 4 * 0.6 + (u**2 + v**2) * 0.4
    alpha = np.clip((1.0 - radius) / 0.15, 0.0, 1.0).astype(np.float32)
    return rgb, alpha


def paste(frame: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x: int, y: int) -> bool:
    """Alpha-blend a sprite with its top-left corner at ``(x, y)`` into ``frame`` in place.
    Returns whether any pixel of the sprite landed inside the frame."""
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + rgb.shape[1], width), min(y + rgb.shape[0], height)
    if x0 >= x1 or y0 >= y1:
        return False
    a = alpha[y0 - y:y1 - y, x0 - x:x1 - x, None]
    region = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(region * (1 - a) + rgb[y0 - y:y1 - y, x0 - x:x1 - x] * a, 0, 255).astype(np.uint8)
    return True


def sample_event(kind: str, n_frames: int, fps: float, rng: np.random.Generator, margin: int = 8) -> AnomalyEvent:
    """A random event of class ``kind`` placed inside a clip of ``n_frames`` frames."""
    low, high = _DURATION_S[kind]
    duration = max(2, round(rng.uniform(low, high) * fps))
    duration = min(duration, n_frames - 2 * margin)
    start = int(rng.integers(margin, max(margin + 1, n_frames - duration - margin)))
    return AnomalyEvent(kind, start, start + duration, int(rng.integers(2**31)))


def render(frames: np.ndarray, event: AnomalyEvent) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``event`` into a copy of ``frames`` ``uint8 [N, H, W, 3]``; returns ``(frames, labels)``
    where ``labels[i]`` is 1 exactly for the frames the event changed."""
    if event.end > len(frames):
        raise InputError(f"event ends at frame {event.end} but the clip has {len(frames)} frames")
    out = frames.copy()
    labels = np.zeros(len(frames), dtype=np.uint8)
    rng = np.random.default_rng(event.seed)
    _RENDERERS[event.kind](out, labels, event, rng)
    return out, labels


def _crossing(out, labels, event, rng, kind: str, height_frac: tuple[float, float], y_frac: tuple[float, float],
              bob: float) -> None:
    height, width = out.shape[1:3]
    sprite_h = round(rng.uniform(*height_frac) * height)
    rgb, alpha = make_sprite(kind, sprite_h)
    if rng.random() < 0.5:
        rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
    sprite_w = rgb.shape[1]
    duration = event.end - event.start
    leftwards = rng.random() < 0.5
    # the sprite enters on the first frame of the event and leaves after the last one
    xs = np.linspace(-sprite_w + 1, width - 1, duration).round().astype(int)
    xs = xs[::-1] if leftwards else xs
    base_y = rng.uniform(*y_frac) * height - sprite_h
    phase = rng.uniform(0, 2 * np.pi)
    for i, x in enumerate(xs):
        y = int(base_y + bob * sprite_h * np.sin(phase + i * 2.2))
        t = event.start + i
        labels[t] = paste(out[t], rgb, alpha, int(x), y)


def _running(out, labels, event, rng) -> None:
    _crossing(out, labels, event, rng, "person", (0.2, 0.3), (0.45, 0.95), bob=0.04)


def _wrong_way(out, labels, event, rng) -> None:
    _crossing(out, labels, event, rng, "vehicle", (0.18, 0.26), (0.55, 0.95), bob=0.0)


def _abandoned_object(out, labels, event, rng) -> None:
    height, width = out.shape[1:3]
    rgb, alpha = make_sprite("object", round(rng.uniform(0.07, 0.11) * height))
    x = int(rng.uniform(0.05, 0.9) * width)
    y = int(rng.uniform(0.5, 0.9) * height)
    for t in range(event.start, event.end):
        labels[t] = paste(out[t], rgb, alpha, x, y)


def _camera_shake(out, labels, event, rng) -> None:
    width = out.shape[2]
    amplitude = rng.uniform(0.04, 0.10) * width
    offset = np.zeros(2)
    for t in range(event.start, event.end):
        offset = 0.3 * offset + rng.normal(0, amplitude, 2)
        dx, dy = (np.clip(offset, -1.5 * amplitude, 1.5 * amplitude)).round().astype(int)
        if dx == 0 and dy == 0:
            dx = 1
        shifted = np.roll(out[t], (dy, dx), axis=(0, 1))
        # replicate the edge instead of wrapping around
        if dy > 0:
            shifted[:dy] = shifted[dy:dy + 1]
        elif dy < 0:
            shifted[dy:] = shifted[dy - 1:dy]
        if dx > 0:
            shifted[:, :dx] = shifted[:, dx:dx + 1]
        elif dx < 0:
            shifted[:, dx:] = shifted[:, dx - 1:dx]
        out[t] = shifted
        labels[t] = 1


def _flash(out, labels, event, rng) -> None:
    gain = np.ones(event.end - event.start)
    t = 0
    while t < len(gain):
        peak = rng.uniform(1.6, 2.2)
        for k in range(min(3, len(gain) - t)):
            gain[t + k] = max(gain[t + k], 1 + (peak - 1) * 0.5**k)
        t += int(rng.integers(2, 4))  # pulses abut: every frame of the event is brightened
    gain[0] = max(gain[0], 1.6)
    for i, g in enumerate(gain):
        frame = out[event.start + i].astype(np.float32)
        out[event.start + i] = np.clip(frame * g + 25 * (g - 1), 0, 255).astype(np.uint8)
        labels[event.start + i] = 1


def _changed(out: np.ndarray, before: np.ndarray, labels: np.ndarray) -> None:
    """Ground truth of a tampering event: the frames it changed (the three arrays cover the event's frames)."""
    for t in range(len(labels)):
        labels[t] = not np.array_equal(out[t], before[t])


def _freeze(out, labels, event, rng) -> None:
    before = out[event.start:event.end].copy()
    out[event.start:event.end] = out[event.start]
    _changed(out[event.start:event.end], before, labels[event.start:event.end])


def _occlusion(out, labels, event, rng) -> None:
    height, width = out.shape[1:3]
    h, w = round(rng.uniform(0.45, 0.9) * height), round(rng.uniform(0.45, 0.9) * width)
    y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
    base = rng.uniform(10, 70, 3)
    texture = rng.normal(0, 12, (h // 8 + 1, w // 8 + 1, 1)).repeat(8, 0).repeat(8, 1)[:h, :w]
    patch = np.clip(base + texture, 0, 255).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = np.clip(np.minimum.reduce([yy, xx, h - 1 - yy, w - 1 - xx]) / 6.0, 0, 1).astype(np.float32)
    for t in range(event.start, event.end):
        labels[t] = paste(out[t], patch, alpha, x, y)


def _blur(frame: np.ndarray, sigma: float) -> np.ndarray:
    from PIL import Image, ImageFilter

    return np.asarray(Image.fromarray(frame).filter(ImageFilter.GaussianBlur(radius=sigma)))


def _defocus(out, labels, event, rng) -> None:
    width = out.shape[2]
    sigma = rng.uniform(0.02, 0.05) * width
    ramp = max(1, min(int(rng.integers(1, 6)), event.end - event.start))
    before = out[event.start:event.end].copy()
    for i, t in enumerate(range(event.start, event.end)):
        out[t] = _blur(out[t], max(1.0, sigma * min(1.0, (i + 1) / ramp)))
    _changed(out[event.start:event.end], before, labels[event.start:event.end])


def _repoint(out, labels, event, rng) -> None:
    from PIL import Image

    height, width = out.shape[1:3]
    zoom = rng.uniform(1.1, 1.4)
    cw, ch = round(width / zoom), round(height / zoom)
    shift = rng.uniform(0.2, 0.4) * width * rng.choice([-1, 1])
    x = int(np.clip((width - cw) / 2 + shift, 0, width - cw))
    y = int(rng.integers(0, height - ch + 1))
    for t in range(event.start, event.end):
        view = np.asarray(Image.fromarray(out[t][y:y + ch, x:x + cw]).resize((width, height), Image.BILINEAR))
        out[t] = view
        labels[t] = 1


_RENDERERS = {"freeze": _freeze, "occlusion": _occlusion, "defocus": _defocus, "repoint": _repoint,
              "running": _running, "wrong_way": _wrong_way, "abandoned_object": _abandoned_object,
              "camera_shake": _camera_shake, "flash": _flash}
