"""PyAV decoding and the clear errors for missing, empty, corrupt and unsupported files."""

from __future__ import annotations

import wave
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from moe_zoo.core.video import (
    VideoInputError,
    iter_frames,
    probe,
    read_video,
    scaled_size,
    write_video,
)

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")   # Debian opencv-doc (vad's apt.txt)


@pytest.fixture(scope="module")
def vtest_frames() -> tuple[np.ndarray, float]:
    """The first 48 frames of opencv-doc's vtest.avi at full size (768x576, 10 fps): real footage."""
    return np.stack(list(islice(iter_frames(VTEST, max_side=None), 48))), probe(VTEST).fps


@pytest.fixture(scope="module")
def short_clip(vtest_frames, tmp_path_factory) -> str:
    """The 48 real frames written as an H.264 .mp4 (4.8 s at 10 fps, 768x576)."""
    frames, fps = vtest_frames
    return str(write_video(tmp_path_factory.mktemp("clips") / "vtest48.mp4", frames, fps))



def test_write_then_read_round_trip(tmp_path, vtest_frames):
    frames, fps = vtest_frames
    path = write_video(tmp_path / "clip.mp4", frames[:16], fps)
    info = probe(path)
    assert (info.width, info.height, info.fps, info.codec) == (768, 576, 10.0, "h264")
    decoded, rate = read_video(path, max_side=None)
    assert decoded.shape == (16, 576, 768, 3) and rate == 10.0
    assert np.abs(decoded.astype(int) - frames[:16]).mean() < 6       # lossy H.264, same pictures
    small = next(iter_frames(path, max_side=384))
    assert small.shape == (288, 384, 3)                                 # swscale keeps the aspect


def test_scaled_size():
    assert scaled_size(768, 576, 384) == (384, 288)
    assert scaled_size(641, 273, None) == (640, 272)                    # even sizes for yuv420p


def _file(path, data: bytes):
    path.write_bytes(data)
    return path


def _wav(path):
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes(np.zeros(800, dtype=np.int16).tobytes())
    return path


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p / "missing.mp4", "not found"),
    (lambda p: p, "not a file"),
    (lambda p: _file(p / "empty.mp4", b""), "is empty"),
    (lambda p: _file(p / "noise.mp4", np.random.default_rng(0).bytes(4096)), "corrupt or unsupported"),
    (lambda p: _file(p / "notes.avi", b"not a video\n" * 50), "corrupt or unsupported"),
    (lambda p: _wav(p / "sound.wav"), "has no video stream"),
])
def test_bad_files_raise_video_input_error(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(VideoInputError, match=message):
        list(iter_frames(path))


def test_truncated_file_keeps_what_decodes_or_fails_clearly(tmp_path, short_clip):
    data = Path(short_clip).read_bytes()
    head = tmp_path / "head.mp4"
    head.write_bytes(data[: len(data) // 2])                           # moov atom at the end is lost
    with pytest.raises(VideoInputError):
        list(iter_frames(head))


def test_write_video_rejects_bad_frames(tmp_path):
    from moe_zoo.core import InputError

    with pytest.raises(InputError, match="non-empty uint8 frames"):
        write_video(tmp_path / "x.mp4", np.zeros((2, 8, 8), dtype=np.uint8), 10)
