"""Export of the learned density: marching cubes on a density grid -> mesh / point cloud (open3d).

The grid samples the detailed (uncontracted) region ``center +- radius`` of the scene box at
``resolution^3`` points; the iso-surface is at ``sigma = level`` (scikit-image's marching cubes).
Vertices are coloured by the field's colour seen from above (the scene's up direction).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from moe_zoo.core import InputError
from moe_zoo.nerf.rendering import to_unit

SUFFIXES = {".ply": "mesh", ".obj": "mesh", ".glb": "mesh", ".pcd": "points", ".xyz": "points"}


@torch.no_grad()
def density_grid(model: nn.Module, resolution: int = 96, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray, float]:
    """``sigma [r, r, r]`` over the box's detailed region, its lower corner and the voxel size."""
    box = model.scene
    center = torch.tensor(box.center, dtype=torch.float32)
    axis = torch.linspace(-box.radius, box.radius, resolution)
    points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3) + center
    u = to_unit(points, center, box.radius)
    device = next(model.parameters()).device
    sigma = torch.cat([model.density(p.to(device)).cpu() for p in u.split(chunk)])
    origin = (center - box.radius).numpy()
    return sigma.view(resolution, resolution, resolution).numpy(), origin, 2 * box.radius / (resolution - 1)


@torch.no_grad()
def _colors(model: nn.Module, points: np.ndarray, up: tuple[float, float, float]) -> np.ndarray:
    box = model.scene
    center = torch.tensor(box.center, dtype=torch.float32)
    u = to_unit(torch.from_numpy(points).float(), center, box.radius)
    view = -torch.tensor(up, dtype=torch.float32).expand_as(u)  # looking down
    device = next(model.parameters()).device
    return torch.cat([model(p.to(device), d.to(device)).rgb.cpu() for p, d in zip(u.split(65536), view.split(65536))]).numpy()


def export(model: nn.Module, path: str | Path, *, resolution: int = 96, level: float = 10.0,
           up: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> Path:
    """Write the learned geometry to ``path``: a mesh (.ply/.obj/.glb) or a point cloud (.pcd/.xyz)."""
    import open3d as o3d
    from skimage.measure import marching_cubes

    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"export: {path} must end with one of {sorted(SUFFIXES)}")
    if not path.parent.is_dir():
        raise InputError(f"export: folder {path.parent} does not exist")
    sigma, origin, voxel = density_grid(model, resolution)
    if not (sigma.min() < level < sigma.max()):
        raise InputError(f"export: density level {level} is outside the field's range "
                         f"[{sigma.min():.3g}, {sigma.max():.3g}]; pick another --level")
    verts, faces, _, _ = marching_cubes(sigma, level=level)
    verts = verts * voxel + origin
    colors = np.clip(_colors(model, verts, up), 0, 1).astype(np.float64)
    if kind == "mesh":
        mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(verts.astype(np.float64)),
                                         o3d.utility.Vector3iVector(faces.astype(np.int32)))
        mesh.vertex_colors = o3d.utility.Vector3dVector(colors)
        mesh.compute_vertex_normals()
        ok = o3d.io.write_triangle_mesh(str(path), mesh)
    else:
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(verts.astype(np.float64)))
        cloud.colors = o3d.utility.Vector3dVector(colors)
        ok = o3d.io.write_point_cloud(str(path), cloud)
    if not ok:
        raise InputError(f"export: open3d could not write {path}")
    return path
