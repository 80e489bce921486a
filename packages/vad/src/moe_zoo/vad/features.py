"""Snippet features from raw frames: a real ImageNet CNN (MobileNetV2) plus motion statistics.

The paper's pipeline cuts a video into non-overlapping 16-frame snippets and runs I3D on each
(one ``[2048]`` or ``[1024]`` vector per snippet and crop). Here a snippet is ``snippet_len``
frames (8 by default: 0.8 s at 10 fps, close in seconds to the paper's 16 frames at 25-30 fps)
and its feature is

* appearance: MobileNetV2 (torchvision layout and ImageNet weights, shipped by moe-core as
  safetensors: :mod:`moe_zoo.core.backbones`) global-average-pooled ``[1280]``, on
  ``frames_per_snippet`` frames sampled evenly inside the snippet and averaged, and
* motion ``[34]`` on all frames of the snippet at 96x72 grey: frame-difference energy (global,
  per cell of a 4x6 grid, moving-area fraction), global translation between consecutive frames
  by phase correlation (camera shake), brightness level and jumps (flash), and the persistent
  change between the frame before the snippet and its last frame (objects that appear and stay);
  with ``FeatureConfig.repeat_feature`` (the camera data's features, ours) one more column: the
  share of repeated frames inside the snippet (a frozen feed).

Any other extractor (I3D, CLIP, ...) plugs in by implementing :class:`SnippetExtractor`:
``extract(frames, previous) -> [snippets, dim]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from moe_zoo.core import Config, InputError, get_logger
from moe_zoo.core.backbones import imagenet_normalize, load_mobilenet_v2

_log = get_logger(__name__)

MOTION_GRID = (4, 6)
MOTION_DIM = 10 + MOTION_GRID[0] * MOTION_GRID[1]   # without the repeated-frame column
REPEAT_TOLERANCE = 1e-4   # mean grey difference (in [0, 1]) under which a frame counts as repeated
CNN_DIM = 1280


@dataclass(frozen=True)
class FeatureConfig(Config):
    """How frames become snippet features (stored in every checkpoint so predict matches train)."""

    snippet_len: int = 8
    frames_per_snippet: int = 1
    cnn_long_side: int = 224
    motion_size: tuple[int, int] = (96, 72)  # (width, height) of the grey motion frames
    use_cnn: bool = True
    fps: float = 10.0  # frame rate the model was trained at; predict resamples faster clips to it
    repeat_feature: bool = False  # motion gets the share of repeated frames (frozen feed; ours)

    def __post_init__(self) -> None:
        import math

        if not (isinstance(self.fps, int | float) and math.isfinite(self.fps) and self.fps > 0):
            raise InputError(f"FeatureConfig.fps must be a positive frame rate, got {self.fps!r}")

    @property
    def snippet_seconds(self) -> float:
        return self.snippet_len / self.fps

    @property
    def motion_dim(self) -> int:
        return MOTION_DIM + int(self.repeat_feature)

    @property
    def dim(self) -> int:
        return (CNN_DIM if self.use_cnn else 0) + self.motion_dim


class SnippetExtractor(Protocol):
    """Anything that maps frames to one feature vector per snippet."""

    snippet_len: int
    dim: int

    def extract(self, frames: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
        """``uint8 [N, H, W, 3]`` (N a multiple of ``snippet_len``) -> ``float32 [N / snippet_len, dim]``;
        ``previous`` is the frame just before ``frames`` (None at the start of a video)."""
        ...


def _phase_shift(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Magnitude (pixels) of the global translation between image stacks ``a`` and ``b`` ``[n, h, w]``
    by phase correlation: peak of ``IFFT(F_a conj(F_b) / |F_a conj(F_b)|)``."""
    n, h, w = a.shape
    window = torch.outer(torch.hann_window(h, periodic=False), torch.hann_window(w, periodic=False))
    fa = torch.fft.rfft2((a - a.mean((1, 2), keepdim=True)) * window)
    fb = torch.fft.rfft2((b - b.mean((1, 2), keepdim=True)) * window)
    cross = fa * fb.conj()
    corr = torch.fft.irfft2(cross / (cross.abs() + 1e-9), s=(h, w))
    peak = corr.reshape(n, -1).argmax(-1)
    dy, dx = peak // w, peak % w
    dy = torch.where(dy > h // 2, dy - h, dy).float()
    dx = torch.where(dx > w // 2, dx - w, dx).float()
    return torch.sqrt(dx * dx + dy * dy)


def motion_features(grey: torch.Tensor, previous: torch.Tensor, snippet_len: int,
                    repeats: bool = False) -> torch.Tensor:
    """Motion statistics per snippet from grey frames ``[N, h, w]`` in [0, 1] and the frame before.

    With ``d_i = |f_i - f_{i-1}|`` over the snippet's frames (``f_{-1}`` = frame before it):
    ``[10 * mean d, 10 * max_i mean d_i, moving fraction mean(d > 0.08), shift mean/max / 4,
    brightness mean, 10 * mean signed brightness step, 10 * max |brightness step|,
    10 * mean |f_last - f_{-1}|, 10 * max_cell |f_last - f_{-1}|, 10 * grid mean d (4x6)]``.
    With ``repeats``, last: the share of repeated frames ``(1 / (L - 1)) sum_{i=1}^{L-1} 1[mean d_i < 1e-4]``
    over the pairs inside the snippet (a frozen feed repeats frames exactly; live footage never
    does: sensor noise alone moves the mean grey difference above 1e-4). The pair with the frame
    before the snippet is left out: at the start of a video that frame is the first frame itself.
    """
    n, h, w = grey.shape
    s = n // snippet_len
    sequence = torch.cat([previous[None], grey])
    diff = (sequence[1:] - sequence[:-1]).abs()                     # [N, h, w]
    shift = _phase_shift(sequence[1:], sequence[:-1]).view(s, snippet_len)
    level = sequence.mean((1, 2))
    step = (level[1:] - level[:-1]).view(s, snippet_len)
    diff = diff.view(s, snippet_len, h, w)
    per_frame = diff.mean((2, 3))
    grid = F.adaptive_avg_pool2d(diff.mean(1)[:, None], MOTION_GRID).flatten(1)   # [s, 24]
    before = sequence[:-1].view(s, snippet_len, h, w)[:, 0]
    persistent = (grey.view(s, snippet_len, h, w)[:, -1] - before).abs()
    persistent_cells = F.adaptive_avg_pool2d(persistent[:, None], MOTION_GRID).flatten(1)
    columns = [
        10 * per_frame.mean(1), 10 * per_frame.amax(1), (diff > 0.08).float().mean((1, 2, 3)),
        shift.mean(1) / 4, shift.amax(1) / 4,
        level[1:].view(s, snippet_len).mean(1), 10 * step.mean(1), 10 * step.abs().amax(1),
        10 * persistent.mean((1, 2)), 10 * persistent_cells.amax(1),
    ]
    parts = [torch.stack(columns, 1), 10 * grid]
    if repeats:
        parts.append((per_frame[:, 1:] < REPEAT_TOLERANCE).float().mean(1, keepdim=True))
    return torch.cat(parts, 1)


class MobileNetMotionExtractor:
    """The default :class:`SnippetExtractor`: MobileNetV2 appearance + motion statistics."""

    name = "mobilenet-motion"

    def __init__(self, config: FeatureConfig | None = None, *, device: torch.device | str = "cpu") -> None:
        self.config = config or FeatureConfig()
        if self.config.snippet_len < 2 or not 1 <= self.config.frames_per_snippet <= self.config.snippet_len:
            raise InputError(f"need snippet_len >= 2 and 1 <= frames_per_snippet <= snippet_len, got {self.config}")
        self.device = torch.device(device)
        self.snippet_len = self.config.snippet_len
        self.dim = self.config.dim
        self._cnn = load_mobilenet_v2(self.device) if self.config.use_cnn else None

    def _sample_offsets(self) -> np.ndarray:
        """Frame offsets inside a snippet: evenly spaced centres of ``frames_per_snippet`` equal parts."""
        k, length = self.config.frames_per_snippet, self.config.snippet_len
        return ((np.arange(k) + 0.5) * length / k).astype(int)

    @torch.inference_mode()
    def extract(self, frames: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
        frames = np.ascontiguousarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise InputError(f"frames must be uint8 [N, H, W, 3], got {frames.dtype} {frames.shape}")
        length = self.snippet_len
        if len(frames) == 0 or len(frames) % length:
            raise InputError(f"number of frames ({len(frames)}) must be a positive multiple of snippet_len={length}")
        video = torch.from_numpy(frames).to(self.device)
        n, height, width, _ = video.shape
        s = n // length
        mw, mh = self.config.motion_size
        if previous is not None:
            video_with_context = torch.cat([torch.from_numpy(np.ascontiguousarray(previous))[None].to(self.device), video])
        else:
            video_with_context = torch.cat([video[:1], video])  # the first frame is its own predecessor
        grey = video_with_context.permute(0, 3, 1, 2).float().mean(1, keepdim=True) / 255.0
        grey = F.interpolate(grey, size=(mh, mw), mode="area")[:, 0]
        parts = [motion_features(grey[1:], grey[0], length, self.config.repeat_feature)]
        if self._cnn is not None:
            offsets = self._sample_offsets()
            index = (np.arange(s)[:, None] * length + offsets[None]).reshape(-1)
            scale = self.config.cnn_long_side / max(height, width)
            size = (max(32, round(height * scale)), max(32, round(width * scale)))
            images = video[torch.from_numpy(index).to(self.device)].permute(0, 3, 1, 2).float() / 255.0
            images = F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)
            pooled = self._cnn(imagenet_normalize(images)).mean((2, 3))
            parts.insert(0, pooled.view(s, len(offsets), -1).mean(1))
        return torch.cat(parts, 1).float().cpu().numpy()


def make_extractor(config: FeatureConfig | None = None, *, device: torch.device | str = "cpu") -> MobileNetMotionExtractor:
    """The default extractor for ``config`` (cached per config and device: the CNN loads once)."""
    key = ((config or FeatureConfig()).to_json(None), str(device))
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = MobileNetMotionExtractor(config, device=device)
    return _EXTRACTORS[key]


_EXTRACTORS: dict[tuple[str, str], MobileNetMotionExtractor] = {}


def pad_to_snippets(frames: np.ndarray, snippet_len: int) -> np.ndarray:
    """Pad to a multiple of ``snippet_len`` frames by mirroring the last ones (``..., f_{n-2}, f_{n-1},
    f_{n-2}, f_{n-3}, ...``): repeating the last frame would look like a frozen feed."""
    extra = (-len(frames)) % snippet_len
    if extra == 0:
        return frames
    mode = "reflect" if len(frames) > 1 else "edge"   # a single frame can only be repeated
    return np.pad(frames, ((0, extra),) + ((0, 0),) * (frames.ndim - 1), mode=mode)


def extract_stream(frames, extractor: SnippetExtractor, *, chunk_snippets: int = 16) -> tuple[np.ndarray, int]:
    """Features ``[S, dim]`` of a frame stream (any iterable of ``uint8 [H, W, 3]``), extracted
    ``chunk_snippets`` snippets at a time so memory stays bounded; returns ``(features, n_frames)``.
    The last partial snippet is padded by :func:`pad_to_snippets`."""
    length = extractor.snippet_len
    chunk, parts, previous, n_frames = [], [], None, 0
    for frame in frames:
        chunk.append(frame)
        n_frames += 1
        if len(chunk) == chunk_snippets * length:
            block = np.stack(chunk)
            parts.append(extractor.extract(block, previous))
            previous, chunk = block[-1], []
    if chunk:
        parts.append(extractor.extract(pad_to_snippets(np.stack(chunk), length), previous))
    if not parts:
        raise InputError("no frames to extract features from")
    return np.concatenate(parts), n_frames
