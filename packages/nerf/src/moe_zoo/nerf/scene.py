"""The built-in offline scene: a small "city" of real meshes on a wide ground, seen by a drone.

Meshes are pymeshlab's sample meshes (Stanford bunny, cow, airplane, bone, a cube), read by path
from the installed wheel, scaled into "buildings" of different sizes over a 2 x 2 block of a 12 x 12
ground. Textures are real photographs from scikit-image's data (grass and gravel for the ground,
brick, coffee, chelsea, rocket, astronaut, motorcycle on the buildings; projected
cylindrically into vertex colours after subdividing each mesh). pyrender renders it headless
(EGL) with a sun and ambient light from an aerial trajectory: an outer ring looking at the centre
and a lawnmower sweep looking down ahead, every ``holdout_every``-th view held out. Renders are
cached on disk (``$MOE_ZOO_CACHE`` or ``~/.cache/moe-zoo/nerf``) keyed by the settings.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from moe_zoo.core import InputError, get_logger
from moe_zoo.nerf.data import Scene
from moe_zoo.nerf.model import SceneBox

_log = get_logger(__name__)
VERSION = 1
# (mesh file, texture, centre x, centre y, footprint, height)
BUILDINGS = (
    ("bunny.obj", "coffee.png", -0.55, -0.5, 0.55, 0.5),
    ("cow.obj", "chelsea.png", 0.5, -0.55, 0.6, 0.35),
    ("airplane.obj", "rocket.jpg", 0.45, 0.5, 0.7, 0.25),
    ("bone.ply", "astronaut.png", -0.5, 0.55, 0.5, 0.3),
    ("cube.obj", "brick.png", 0.0, 0.0, 0.3, 0.6),
    ("cube.obj", "motorcycle_left.png", -0.05, -0.9, 0.25, 0.3),
    ("bunny.obj", "brick.png", 0.9, 0.05, 0.3, 0.28),
)
SUN = (0.4, -0.3, -0.85)


def cache_dir() -> Path:
    return Path(os.environ.get("MOE_ZOO_CACHE", Path.home() / ".cache" / "moe-zoo")) / "nerf"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise InputError(f"the built-in scene needs the package {name!r} (its data files); install moe-zoo[nerf]")
    return Path(spec.origin).parent


def _photo(name: str, tint: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    from PIL import Image

    with Image.open(_package_dir("skimage") / "data" / name) as img:
        rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return np.clip(rgb * np.asarray(tint, dtype=np.float32), 0, 1)


def _textured_building(mesh_file: str, texture: str, cx: float, cy: float, footprint: float, height: float):
    import trimesh

    mesh = trimesh.load(_package_dir("pymeshlab") / "tests" / "sample_meshes" / mesh_file, force="mesh",
                        process=False)
    mesh = trimesh.Trimesh(mesh.vertices, mesh.faces, process=True)
    if mesh_file in ("bunny.obj", "cow.obj", "bone.ply"):  # these are modelled y-up
        mesh.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, (1, 0, 0)))
    lo, hi = mesh.bounds
    size = hi - lo
    scale = np.array([footprint / max(size[0], size[1])] * 2 + [height / max(size[2], 1e-9)])
    mesh.apply_translation(-np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]]))
    mesh.apply_scale(scale)
    vertices, faces = trimesh.remesh.subdivide_to_size(mesh.vertices, mesh.faces, max_edge=0.02, max_iter=8)
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    photo = _photo(texture, (1.0, 0.85, 0.75) if texture == "brick.png" else (1.0, 1.0, 1.0))
    angle = (np.arctan2(vertices[:, 1], vertices[:, 0]) / (2 * np.pi) + 0.5) * 2 % 1.0
    v = 1 - vertices[:, 2] / max(height, 1e-9)
    px = (angle * (photo.shape[1] - 1)).astype(int)
    py = (np.clip(v, 0, 1) * (photo.shape[0] - 1)).astype(int)
    mesh.visual.vertex_colors = (np.concatenate([photo[py, px], np.ones((len(px), 1))], 1) * 255).astype(np.uint8)
    mesh.apply_translation((cx, cy, 0.0))
    return mesh


def _ground():
    import trimesh
    from PIL import Image

    half, tiles = 6.0, 24.0
    vertices = np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]], dtype=np.float64)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.array([[0, 0], [tiles, 0], [tiles, tiles], [0, tiles]], dtype=np.float64)
    grass = _photo("grass.png", (0.55, 0.8, 0.4))
    gravel = _photo("gravel.png", (0.9, 0.85, 0.8))
    gravel = np.asarray(Image.fromarray((gravel * 255).astype(np.uint8)).resize(grass.shape[1::-1]), np.float32) / 255
    texture = grass.copy()
    w = grass.shape[1]
    texture[:, : w // 3] = gravel[:, : w // 3]  # a paved strip in every tile: roads
    image = Image.fromarray((texture * 255).astype(np.uint8))
    material = trimesh.visual.material.SimpleMaterial(image=image)
    return trimesh.Trimesh(vertices, faces, visual=trimesh.visual.TextureVisuals(uv=uv, image=image, material=material),
                           process=False)


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenGL camera-to-world 3x4: the camera at ``eye`` looking at ``target``."""
    back = eye - target
    back = back / np.linalg.norm(back)
    right = np.cross(up, back)
    right = right / np.linalg.norm(right)
    return np.stack([right, np.cross(back, right), back, eye], 1)


def drone_trajectory(n_views: int, seed: int) -> np.ndarray:
    """``[n, 3, 4]`` poses: half on an outer ring looking at the block, half a lawnmower sweep looking down ahead."""
    rng = np.random.default_rng(seed)
    n_ring = n_views // 2
    poses = []
    for i in range(n_ring):
        a = 2 * np.pi * i / n_ring
        eye = np.array([1.5 * np.cos(a), 1.5 * np.sin(a), 1.5 + 0.1 * np.sin(3 * a)])
        target = np.array([0.25 * np.cos(a + 1.3), 0.25 * np.sin(a + 1.3), 0.0]) + rng.normal(0, 0.05, 3)
        poses.append(look_at(eye, target))
    n_sweep = n_views - n_ring
    rows = max(2, round(math.sqrt(n_sweep)))
    for i in range(n_sweep):
        row, col = divmod(i, math.ceil(n_sweep / rows))
        cols = math.ceil(n_sweep / rows)
        direction = 1 if row % 2 == 0 else -1
        x = -0.9 + 1.8 * (col / max(cols - 1, 1) if direction > 0 else 1 - col / max(cols - 1, 1))
        y = -0.9 + 1.8 * row / max(rows - 1, 1)
        eye = np.array([x, y, 1.25]) + rng.normal(0, 0.03, 3)
        target = np.array([x + 0.45 * direction, y, 0.0])
        poses.append(look_at(eye, target))
    return np.stack(poses).astype(np.float32)


def render_views(poses: np.ndarray, size: int, fov_deg: float) -> np.ndarray:
    """RGB renders ``[n, size, size, 3]`` uint8 of the city from ``poses`` (pyrender, EGL)."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    import pyrender

    scene = pyrender.Scene(ambient_light=(0.35, 0.35, 0.35), bg_color=(0.6, 0.75, 0.95, 1.0))
    scene.add(pyrender.Mesh.from_trimesh(_ground()))
    for spec in BUILDINGS:
        scene.add(pyrender.Mesh.from_trimesh(_textured_building(*spec)))
    sun = pyrender.DirectionalLight(color=(1.0, 0.97, 0.9), intensity=3.0)
    scene.add(sun, pose=np.concatenate([look_at(np.zeros(3), np.asarray(SUN), up=(0, 1, 0)),
                                        [[0, 0, 0, 1]]]))
    camera = pyrender.PerspectiveCamera(yfov=math.radians(fov_deg), aspectRatio=1.0)
    node = scene.add(camera)
    renderer = pyrender.OffscreenRenderer(size, size)
    frames = []
    try:
        for pose in poses:
            scene.set_pose(node, np.concatenate([pose, [[0, 0, 0, 1]]]))
            color, _ = renderer.render(scene)  # no shadow pass: pyrender 0.1.45 uses np.infty there (NumPy 2)
            frames.append(color[..., :3].copy())
    finally:
        renderer.delete()
    return np.stack(frames)


def builtin_scene(*, n_views: int = 64, size: int = 64, fov_deg: float = 60.0, holdout_every: int = 8,
                  seed: int = 0, cache: bool = True) -> Scene:
    """The built-in city scene (module docstring), rendered once and cached."""
    if n_views < 4 or size < 8 or not 10 <= fov_deg <= 120 or holdout_every < 2:
        raise InputError(f"builtin scene: need n_views >= 4, size >= 8, 10 <= fov_deg <= 120, holdout_every >= 2; "
                         f"got {n_views}, {size}, {fov_deg}, {holdout_every}")
    settings = {"version": VERSION, "n_views": n_views, "size": size, "fov": fov_deg, "seed": seed}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"city-{key}.npz"
    poses = drone_trajectory(n_views, seed)
    if cache and path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            frames = stored["frames"]
    else:
        frames = render_views(poses, size, fov_deg)
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez_compressed(tmp, frames=frames)
            os.replace(tmp, path)
            _log.info("rendered the built-in scene (%d views, %dx%d) to %s", n_views, size, size, path)
    focal = 0.5 * size / math.tan(math.radians(fov_deg) / 2)
    intrinsics = torch.tensor([[focal, focal, size / 2, size / 2]] * n_views)
    val = [i for i in range(n_views) if i % holdout_every == holdout_every // 2]
    train = [i for i in range(n_views) if i not in val]
    box = SceneBox(center=(0.0, 0.0, 0.3), radius=1.2, near=0.1, far=6.0, background=(0.6, 0.75, 0.95))
    return Scene("builtin-city", torch.from_numpy(frames).float() / 255.0, torch.from_numpy(poses), intrinsics,
                 train, val, box)
