"""Episode videos: MP4 through moe-core's PyAV writer, or an animated GIF (Pillow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moe_zoo.core import InputError
from moe_zoo.driving.scenarios import POLICY_HZ


def write_episode_video(path: str | Path, frames: list[np.ndarray], fps: float = POLICY_HZ,
                        max_width: int | None = None) -> Path:
    """Write ``frames`` (uint8 ``[H, W, 3]``) as ``.mp4`` or ``.gif`` (chosen by the suffix)."""
    from PIL import Image

    path = Path(path)
    if not frames:
        raise InputError("write_episode_video: no frames to write")
    if max_width is not None and frames[0].shape[1] > max_width:
        scale = max_width / frames[0].shape[1]
        size = (max_width, round(frames[0].shape[0] * scale / 2) * 2)
        frames = [np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        images = [Image.fromarray(f).convert("P", palette=Image.ADAPTIVE, colors=64) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0,
                       optimize=True)
        return path
    if path.suffix.lower() != ".mp4":
        raise InputError(f"write_episode_video: {path} must end in .mp4 or .gif")
    from moe_zoo.core.video import write_video

    return write_video(path, np.stack(frames), fps)
