"""Video input and output with PyAV (FFmpeg bundled in the wheel; packages that call this depend on `av`).

Reading is streaming: :func:`iter_frames` yields RGB frames (optionally downscaled by
FFmpeg's swscale, which is far cheaper than decoding to full size and resizing in numpy), so
a long video never has to sit in memory. Every failure a user can cause (missing, empty,
corrupt or unsupported file, a file without a video stream) raises :class:`VideoInputError`
naming the file and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from moe_zoo.core import InputError

DEFAULT_MAX_SIDE = 384  # frames are decoded so that the longer side is at most this many pixels


class VideoInputError(InputError):
    """A video file cannot be used (missing, empty, corrupt, unsupported or without video)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about its first video stream."""

    path: str
    width: int
    height: int
    fps: float
    n_frames: int  # as declared by the container; 0 when unknown
    codec: str


def check_file(path: str | Path, what: str, error: type[InputError] = InputError, hint: str = "") -> Path:
    """A clear ``error`` for a missing, non-file or empty ``path`` (no heavy imports: the CLI calls it first)."""
    path = Path(path)
    if not path.exists():
        raise error(f"{what} not found: {path}")
    if not path.is_file():
        raise error(f"{what} is not a file: {path}")
    if path.stat().st_size == 0:
        raise error(f"{what} {path} is empty (0 bytes){hint}")
    return path


def _open(path: str | Path):
    import av

    path = check_file(path, "video file", VideoInputError, "; expected a video such as .mp4 or .avi")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise VideoInputError(f"cannot read {path} as a video (corrupt or unsupported format: {err})") from None
    if not container.streams.video:
        found = describe_streams(container)
        container.close()
        raise VideoInputError(f"{path} has no video stream (expected a video file); it holds {found}")
    return container


def describe_streams(container) -> str:
    """``"2 streams: #0 audio (aac), #1 subtitle (mov_text)"`` or ``"no streams at all"``."""
    streams = list(container.streams)
    if not streams:
        return "no streams at all"
    names = []
    for s in streams:
        codec = getattr(getattr(s, "codec_context", None), "name", None) or "unknown codec"
        names.append(f"#{s.index} {s.type} ({codec})")
    return f"{len(streams)} stream{'s' if len(streams) > 1 else ''}: {', '.join(names)}"


@dataclass
class DecodeReport:
    """What :func:`iter_frames` managed to decode (filled in while it streams)."""

    declared: int = 0          # frames the container declares (0 when unknown)
    decoded: int = 0
    error: str | None = None   # the decoder error that ended a partly decoded file
    width: int = 0             # size of the stored frames, before any downscaling
    height: int = 0

    @property
    def partial(self) -> bool:
        """The file ended early: a decoder error after some frames, or far fewer frames than declared."""
        return self.error is not None or (self.declared > 0 and self.decoded < 0.9 * self.declared)


def probe(path: str | Path) -> VideoInfo:
    """Width, height, frame rate, declared frame count and codec of a video file."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        return VideoInfo(str(path), stream.codec_context.width, stream.codec_context.height, float(rate),
                         int(stream.frames or 0), stream.codec_context.name)
    finally:
        container.close()


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """``(w, h)`` with the longer side at most ``max_side`` (even sizes, aspect kept)."""
    if not max_side or max(width, height) <= max_side:
        return width - width % 2, height - height % 2
    scale = max_side / max(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def iter_frames(path: str | Path, *, max_side: int | None = DEFAULT_MAX_SIDE,
                report: DecodeReport | None = None) -> Iterator[np.ndarray]:
    """Yield ``uint8 [H, W, 3]`` RGB frames, downscaled so the longer side is <= ``max_side``.
    A file that breaks off after some frames yields what decoded (as players do); ``report``
    records how many frames decoded against the declared count and the error, if any."""
    import av

    report = report if report is not None else DecodeReport()
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        report.width, report.height = stream.codec_context.width, stream.codec_context.height
        report.declared = int(stream.frames or 0)
        width, height = scaled_size(stream.codec_context.width, stream.codec_context.height, max_side)
        decoded = 0
        try:
            for frame in container.decode(stream):
                decoded += 1
                report.decoded = decoded
                yield frame.to_ndarray(width=width, height=height, format="rgb24")
        except av.FFmpegError as err:
            if decoded == 0:
                raise VideoInputError(f"cannot decode {path}: {err} (corrupt or unsupported video)") from None
            report.error = str(err)  # a truncated tail: keep what decoded, reported as a warning
        if decoded == 0:
            raise VideoInputError(f"{path} contains no decodable video frames")
    finally:
        container.close()


def read_video(path: str | Path, *, max_side: int | None = DEFAULT_MAX_SIDE) -> tuple[np.ndarray, float]:
    """All frames as ``uint8 [N, H, W, 3]`` plus the frame rate (use for short clips)."""
    fps = probe(path).fps
    return np.stack(list(iter_frames(path, max_side=max_side))), fps


def write_video(path: str | Path, frames: np.ndarray, fps: float, *, crf: int = 23) -> Path:
    """Encode ``uint8 [N, H, W, 3]`` RGB frames as H.264 MP4 (even sizes required by yuv420p)."""
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise InputError(f"write_video expects non-empty uint8 frames [N, H, W, 3], got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1] - frames.shape[1] % 2, frames.shape[2] - frames.shape[2] % 2
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:height, :width]), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    tmp.replace(path)
    return path
