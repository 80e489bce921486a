"""Posed image sets: the Mega-NeRF / Mill19 layout, the nerfstudio / Blender ``transforms.json`` layout.

Every reader returns a :class:`Scene`: images ``[N, H, W, 3]`` in ``[0, 1]``, camera-to-world
``c2w [N, 3, 4]`` in the OpenGL camera convention (x right, y up, looking down -z), intrinsics
``[N, 4]`` = ``(fx, fy, cx, cy)`` in pixels, the train / held-out split and a :class:`SceneBox`.

Mega-NeRF layout (``<scene>/coordinates.pt`` with ``origin_drb`` and ``pose_scale_factor``;
``{train,val}/rgbs/<stem>.{jpg,png}``; ``{train,val}/metadata/<stem>.pt`` with ``W``, ``H``,
``intrinsics`` ``[fx, fy, cx, cy]`` and ``c2w`` 3x4 whose columns are the camera's down / right /
back axes, positions already centred by ``origin_drb`` and divided by ``pose_scale_factor``).
Every ``.pt`` is read with ``torch.load(weights_only=True)``: no pickle code runs. The camera axes
are reordered to (right, up, back) = ``[c_1, -c_0, c_2]``; the world frame stays Mega-NeRF's
(down, right, back), so "up" is ``-x``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from moe_zoo.core import InputError
from moe_zoo.nerf.model import SceneBox

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".PNG")


@dataclass
class Scene:
    """A posed image set (module docstring for the conventions)."""

    name: str
    images: Tensor                 # [N, H, W, 3] float32 in [0, 1]
    c2w: Tensor                    # [N, 3, 4] float32, OpenGL camera axes
    intrinsics: Tensor             # [N, 4] fx, fy, cx, cy (pixels)
    train: list[int]
    val: list[int]
    box: SceneBox
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)

    @property
    def height(self) -> int:
        return self.images.shape[1]

    @property
    def width(self) -> int:
        return self.images.shape[2]

    def __len__(self) -> int:
        return self.images.shape[0]


def check_cameras(c2w: Tensor, intrinsics: Tensor, names: list[str], width: int, height: int) -> None:
    """Finite intrinsics with positive focal lengths and finite, rigid (orthonormal) poses."""
    for i, name in enumerate(names):
        k = intrinsics[i]
        if not torch.isfinite(k).all() or k[0] <= 0 or k[1] <= 0:
            raise InputError(f"camera {name}: intrinsics (fx, fy, cx, cy) must be finite with fx, fy > 0, "
                             f"got {k.tolist()}")
        pose = c2w[i]
        if pose.shape != (3, 4) or not torch.isfinite(pose).all():
            raise InputError(f"camera {name}: c2w must be a finite 3x4 matrix, got {pose.tolist()}")
        rot = pose[:, :3].double()
        err = (rot.T @ rot - torch.eye(3, dtype=torch.float64)).abs().max()
        if err > 1e-3:
            raise InputError(f"camera {name}: the rotation part of c2w is not orthonormal "
                             f"(max |R^T R - I| = {float(err):.3g}); poses are inconsistent")
    if width < 1 or height < 1:
        raise InputError(f"image size must be positive, got {width}x{height}")


def box_from_cameras(c2w: Tensor, background: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> SceneBox:
    """Detailed region = the cameras' bounding cube (at least a unit), everything else contracted."""
    pos = c2w[:, :, 3].double()
    center = pos.mean(0)
    radius = max(float((pos - center).abs().max()) * 1.1, 1e-3) if len(pos) > 1 else 1.0
    return SceneBox(center=tuple(float(v) for v in center), radius=radius, near=0.01 * radius, far=4.0 * radius,
                    background=background)


def load_image(path: Path, downscale: int, white_background: bool) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"image {path} is missing")
    try:
        with Image.open(path) as img:
            img.load()
            if downscale > 1:
                img = img.resize((img.width // downscale, img.height // downscale), Image.Resampling.BOX)
            rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
    except OSError as err:
        raise InputError(f"image {path} cannot be read: {err}") from None
    alpha = rgba[..., 3:]
    back = 1.0 if white_background else 0.0
    return rgba[..., :3] * alpha + back * (1 - alpha)


def _stack_images(images: list[np.ndarray], names: list[str]) -> Tensor:
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise InputError(f"all images of a scene must have one size, got {sorted(shapes)} ({names[0]} ...)")
    return torch.from_numpy(np.stack(images))


def _load_pt(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"{path} is missing")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise InputError(f"{path} cannot be read with torch.load(weights_only=True): {err}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} must hold a dict, got {type(data).__name__}")
    return data


def _field(data: dict, key: str, path: Path) -> Tensor:
    if key not in data:
        raise InputError(f"{path} has no {key!r} (keys: {sorted(data)})")
    return torch.as_tensor(data[key], dtype=torch.float64)


def read_mega_nerf(root: str | Path, *, downscale: int = 1, max_images: int | None = None) -> Scene:
    """Read a Mega-NeRF / Mill19 scene folder (module docstring)."""
    root = Path(root)
    coords = _load_pt(root / "coordinates.pt")
    for key in ("origin_drb", "pose_scale_factor"):
        if not torch.isfinite(_field(coords, key, root / "coordinates.pt")).all():
            raise InputError(f"{root / 'coordinates.pt'}: {key} must be finite")
    images, poses, intr, names, split = [], [], [], [], []
    for part in ("train", "val"):
        meta_dir = root / part / "metadata"
        stems = sorted(p.stem for p in meta_dir.glob("*.pt")) if meta_dir.is_dir() else []
        if not stems:
            raise InputError(f"{meta_dir} holds no metadata .pt files")
        for stem in stems[:max_images]:
            meta = _load_pt(meta_dir / f"{stem}.pt")
            width, height = int(_field(meta, "W", meta_dir)), int(_field(meta, "H", meta_dir))
            c2w = _field(meta, "c2w", meta_dir / f"{stem}.pt")
            if c2w.shape != (3, 4):
                raise InputError(f"{meta_dir / stem}.pt: c2w must be 3x4, got {tuple(c2w.shape)}")
            rgb = next((root / part / "rgbs" / f"{stem}{s}" for s in IMAGE_SUFFIXES
                        if (root / part / "rgbs" / f"{stem}{s}").is_file()), root / part / "rgbs" / f"{stem}.jpg")
            image = load_image(rgb, downscale, white_background=False)
            if image.shape[:2] != (height // downscale, width // downscale):
                raise InputError(f"{rgb}: image is {image.shape[1]}x{image.shape[0]}, metadata says "
                                 f"{width}x{height} (downscale {downscale})")
            images.append(image)
            poses.append(torch.cat([c2w[:, 1:2], -c2w[:, 0:1], c2w[:, 2:4]], 1))  # down/right/back -> right/up/back
            intr.append(_field(meta, "intrinsics", meta_dir / f"{stem}.pt") / downscale)
            names.append(f"{part}/{stem}")
            split.append(part)
    c2w, intrinsics = torch.stack(poses).float(), torch.stack(intr).float()
    stacked = _stack_images(images, names)
    check_cameras(c2w, intrinsics, names, stacked.shape[2], stacked.shape[1])
    train = [i for i, s in enumerate(split) if s == "train"]
    val = [i for i, s in enumerate(split) if s == "val"]
    return Scene(root.name, stacked, c2w, intrinsics, train, val, box_from_cameras(c2w), up=(-1.0, 0.0, 0.0))


def _intrinsics(meta: dict, width: int, height: int, where: str) -> list[float]:
    if "fl_x" in meta:
        fx = float(meta["fl_x"])
        fy = float(meta.get("fl_y", fx))
    elif "camera_angle_x" in meta:
        fx = fy = 0.5 * width / math.tan(0.5 * float(meta["camera_angle_x"]))
    else:
        raise InputError(f"{where}: no focal length (fl_x or camera_angle_x)")
    return [fx, fy, float(meta.get("cx", width / 2)), float(meta.get("cy", height / 2))]


def _read_transforms(path: Path, downscale: int, max_images: int | None) -> tuple[list, list, list, list]:
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path} cannot be read as JSON: {err}") from None
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise InputError(f"{path} has no frames")
    images, poses, intr, names = [], [], [], []
    for frame in frames[:max_images]:
        rel = Path(str(frame.get("file_path", "")))
        file = path.parent / rel
        if not rel.suffix:  # Blender's synthetic scenes write "./train/r_0" for r_0.png
            file = file.with_suffix(".png")
        image = load_image(file, downscale, white_background=True)
        h, w = image.shape[:2]
        both = {**meta, **frame}
        k = _intrinsics(both, int(both.get("w", w * downscale)), int(both.get("h", h * downscale)), str(path))
        pose = torch.as_tensor(frame.get("transform_matrix", []), dtype=torch.float64)
        if pose.shape != (4, 4):
            raise InputError(f"{path}: frame {rel} transform_matrix must be 4x4, got {tuple(pose.shape)}")
        images.append(image)
        poses.append(pose[:3])
        intr.append(torch.tensor(k, dtype=torch.float64) / downscale)
        names.append(str(rel))
    return images, poses, intr, names


def read_transforms(root: str | Path, *, downscale: int = 1, max_images: int | None = None, holdout_every: int = 8) -> Scene:
    """Read a nerfstudio (``transforms.json``, every ``holdout_every``-th frame held out) or Blender
    (``transforms_{train,val}.json``) scene; RGBA images are composited on white."""
    root = Path(root)
    parts = [p for p in ("train", "val") if (root / f"transforms_{p}.json").is_file()]
    images, poses, intr, names, split = [], [], [], [], []
    if parts:
        for part in parts:
            got = _read_transforms(root / f"transforms_{part}.json", downscale, max_images)
            for store, values in zip((images, poses, intr, names), got):
                store.extend(values)
            split += [part] * len(got[0])
    elif (root / "transforms.json").is_file():
        images, poses, intr, names = _read_transforms(root / "transforms.json", downscale, max_images)
        split = ["val" if i % holdout_every == holdout_every - 1 else "train" for i in range(len(images))]
    else:
        raise InputError(f"{root} has neither transforms.json nor transforms_train.json")
    c2w, intrinsics = torch.stack(poses).float(), torch.stack(intr).float()
    stacked = _stack_images(images, names)
    check_cameras(c2w, intrinsics, names, stacked.shape[2], stacked.shape[1])
    train = [i for i, s in enumerate(split) if s == "train"]
    val = [i for i, s in enumerate(split) if s == "val"] or train[-1:]
    return Scene(root.name, stacked, c2w, intrinsics, train, val, box_from_cameras(c2w, (1.0, 1.0, 1.0)))


def load_scene(source: str | Path | Scene, **kwargs) -> Scene:
    """A :class:`Scene` from ``"builtin"`` (the offline city scene), a Mega-NeRF folder or a
    ``transforms.json`` folder (detected by its files)."""
    if isinstance(source, Scene):
        return source
    if str(source) == "builtin":
        from moe_zoo.nerf.scene import builtin_scene

        return builtin_scene(**kwargs)
    root = Path(source)
    if not root.is_dir():
        raise InputError(f"scene {source!r}: expected 'builtin' or a folder, and {root} is not a folder")
    if (root / "coordinates.pt").is_file():
        return read_mega_nerf(root, **kwargs)
    if (root / "transforms.json").is_file() or (root / "transforms_train.json").is_file():
        return read_transforms(root, **kwargs)
    raise InputError(f"{root}: not a Mega-NeRF scene (coordinates.pt) nor a transforms.json scene")
