"""Optional I3D feature extractor (Inception-3D, Carreira & Zisserman 2017) with user-supplied weights.

The real benchmarks' features (UR-DMU's UCF-Crime / XD-Violence lists) are 1024-d I3D RGB
features of 16-frame snippets: the Mixed_5c output of Inception-I3D, average-pooled over time
and space. This module is the standard architecture in the module layout of the widely used
PyTorch port (piergiaj/pytorch-i3d: ``Conv3d_1a_7x7``, ..., ``Mixed_5c``, each unit a
``conv3d`` without bias + ``bn`` (eps 1e-3) + ReLU, TensorFlow "SAME" padding), so its
``rgb_imagenet.pt`` / ``rgb_charades.pt`` state dicts load once converted to safetensors
(``safetensors.torch.save_file(torch.load(p, weights_only=True), "i3d.safetensors")``). No
weights ship with moe-zoo and none are downloaded: pass the path. Frames are resized so the
shorter side is ``size``, centre-cropped to ``size x size`` and scaled to [-1, 1].

>>> extractor = I3DExtractor("i3d_rgb_imagenet.safetensors")
>>> vad.predict("clip.mp4", "ucf_model.safetensors", extractor=extractor)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from moe_zoo.core import InputError

I3D_DIM = 1024
# (in channels, [b0, b1a, b1b, b2a, b2b, b3b]) of each Inception module, in order
_MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)), "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)), "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)), "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)), "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


def _same_pad(x: Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> Tensor:
    """TensorFlow 'SAME' padding: per axis ``pad = max(k - s, 0)`` if ``n % s == 0`` else ``max(k - n % s, 0)``,
    ``pad // 2`` before and the rest after."""
    pads = []
    for n, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        pad = max(k - s, 0) if n % s == 0 else max(k - n % s, 0)
        pads += [pad // 2, pad - pad // 2]
    return F.pad(x, pads)


class Unit3D(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel=(1, 1, 1), stride=(1, 1, 1)) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv3d = nn.Conv3d(c_in, c_out, self.kernel, self.stride, padding=0, bias=False)
        self.bn = nn.BatchNorm3d(c_out, eps=0.001, momentum=0.01)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv3d(_same_pad(x, self.kernel, self.stride))))


class MaxPoolSame(nn.Module):
    def __init__(self, kernel, stride) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool3d(_same_pad(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    def __init__(self, c_in: int, c: tuple[int, ...]) -> None:
        super().__init__()
        self.b0 = Unit3D(c_in, c[0])
        self.b1a, self.b1b = Unit3D(c_in, c[1]), Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(c_in, c[3]), Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a, self.b3b = MaxPoolSame((3, 3, 3), (1, 1, 1)), Unit3D(c_in, c[5])

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


class InceptionI3d(nn.Module):
    """Inception-I3D up to ``Mixed_5c``; ``forward`` returns the pooled ``[B, 1024]`` feature."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b, self.Mixed_3c = (InceptionModule(*_MIXED[k]) for k in ("Mixed_3b", "Mixed_3c"))
        self.MaxPool3d_4a_3x3 = MaxPoolSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b, self.Mixed_4c, self.Mixed_4d, self.Mixed_4e, self.Mixed_4f = (
            InceptionModule(*_MIXED[k]) for k in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"))
        self.MaxPool3d_5a_2x2 = MaxPoolSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b, self.Mixed_5c = (InceptionModule(*_MIXED[k]) for k in ("Mixed_5b", "Mixed_5c"))

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``[B, 3, T, H, W]`` in [-1, 1] -> ``[B, 1024]`` (Mixed_5c averaged over T, H, W)."""
        for module in self.children():
            x = module(x)
        return x.mean((2, 3, 4))


def load_i3d(path: str | Path, device: torch.device | str = "cpu") -> InceptionI3d:
    """Inception-I3D with the safetensors state dict at ``path`` (the classifier ``logits.*`` is ignored)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise InputError(f"I3D weights not found: {path} (a safetensors state dict of Inception-I3D)")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(f"{path} is not a safetensors file ({err})") from None
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith(("logits.", "module.logits."))}
    model = InceptionI3d()
    expected = model.state_dict()
    for key in expected:  # ports saved before torch 0.4.1 have no BatchNorm step counters
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = expected[key]
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [k for k in set(expected) & set(state) if expected[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        raise InputError(f"{path} is not an Inception-I3D state dict: {len(missing)} missing (e.g. {missing[:2]}), "
                         f"{len(unexpected)} unexpected (e.g. {unexpected[:2]}), {len(wrong)} of another shape")
    model.load_state_dict(state)
    return model.eval().to(device).requires_grad_(False)


class I3DExtractor:
    """:class:`~moe_zoo.vad.features.SnippetExtractor` giving UR-DMU's 1024-d I3D RGB features per 16 frames."""

    name = "i3d-rgb"

    def __init__(self, weights: str | Path, *, snippet_len: int = 16, size: int = 224,
                 device: torch.device | str = "cpu") -> None:
        if snippet_len < 8 or size < 32:
            raise InputError(f"I3D needs snippet_len >= 8 and size >= 32, got {snippet_len}, {size}")
        self.model = load_i3d(weights, device)
        self.snippet_len, self.dim, self.size, self.device = snippet_len, I3D_DIM, size, torch.device(device)

    @torch.inference_mode()
    def extract(self, frames: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
        frames = np.ascontiguousarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise InputError(f"frames must be uint8 [N, H, W, 3], got {frames.dtype} {frames.shape}")
        if len(frames) == 0 or len(frames) % self.snippet_len:
            raise InputError(f"number of frames ({len(frames)}) must be a positive multiple of {self.snippet_len}")
        video = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2).float()
        height, width = video.shape[2:]
        scale = self.size / min(height, width)
        video = F.interpolate(video, size=(max(self.size, round(height * scale)), max(self.size, round(width * scale))),
                              mode="bilinear", antialias=True, align_corners=False)
        top, left = (video.shape[2] - self.size) // 2, (video.shape[3] - self.size) // 2
        video = video[:, :, top:top + self.size, left:left + self.size] / 127.5 - 1.0
        clips = video.view(-1, self.snippet_len, 3, self.size, self.size).transpose(1, 2)   # [S, 3, T, H, W]
        return torch.cat([self.model(c[None]) for c in clips]).float().cpu().numpy()
