"""Six ego-centric camera views cut from highway-env's own top-down rendering.

highway-env renders one RGB frame per step (pygame, headless with ``offscreen_rendering=True``):
a top-down view centred on the ego vehicle in world orientation. A camera ``c`` with yaw
``psi_c`` relative to the ego heading ``h`` is emulated by one affine resampling of that frame:
output pixel ``(i, j)`` of an ``N x N`` view shows the world point

    p(i, j) = ego + f_i * d + l_j * r,   d = (cos(h + psi_c), sin(h + psi_c)),  r = (-sin(h + psi_c), cos(h + psi_c)),
    f_i = R (1 - (i + 1/2) / N)   (depth ahead of the camera, far at the top),
    l_j = R ((j + 1/2) / N - 1/2)  (lateral offset, left at the left),

i.e. an ego-rotated bird's-eye sector of depth ``R`` in front of the camera, so "up" in every
view is the camera's viewing direction, like the image plane of a real camera mounted on the
car. The yaws follow the nuScenes / Bench2Drive rig (front 0, front-left 55, front-right -55,
back 180, back-left 110, back-right -110 degrees; highway-env's y axis points to the right of a
car heading along +x, so "left" is a negative angle in its frame).
"""

from __future__ import annotations

import math

import numpy as np

CAMERAS = ("front", "front_left", "front_right", "back", "back_left", "back_right")
ROUTED_CAMERAS = CAMERAS[1:]          # the vision router picks one of these five
CAMERA_YAWS_DEG = (0.0, 55.0, -55.0, 180.0, 110.0, -110.0)   # counter-clockwise from the ego heading
VIEW_SIZE = 64
VIEW_RANGE_M = 40.0
BACKGROUND = (100, 100, 100)


def camera_directions(heading: float) -> np.ndarray:
    """``[6, 2]`` unit viewing directions in highway-env's world frame (y down = right of +x)."""
    yaws = heading - np.radians(CAMERA_YAWS_DEG)   # left turn = smaller heading in highway-env's frame
    return np.stack([np.cos(yaws), np.sin(yaws)], axis=-1)


def view_affine(ego_xy: np.ndarray, direction: np.ndarray, origin: np.ndarray, scaling: float,
                size: int = VIEW_SIZE, view_range: float = VIEW_RANGE_M) -> tuple[float, ...]:
    """PIL ``Image.AFFINE`` coefficients mapping an output pixel ``(x=j, y=i)`` to the frame's pixel."""
    d = np.asarray(direction, dtype=float)
    r = np.array([-d[1], d[0]])
    step = view_range / size
    # p(i, j) = ego + (R - (i + .5) step) d + ((j + .5) step - R/2) r ; pixel = scaling * (p - origin)
    base = np.asarray(ego_xy, dtype=float) + (view_range - 0.5 * step) * d + (0.5 * step - view_range / 2) * r
    a, d_ = scaling * step * r, -scaling * step * d          # coefficients of j and i
    c = scaling * (base - np.asarray(origin, dtype=float))
    return (a[0], d_[0], c[0], a[1], d_[1], c[1])


def render_views(frame: np.ndarray, ego_xy: np.ndarray, heading: float, origin: np.ndarray, scaling: float,
                 size: int = VIEW_SIZE) -> np.ndarray:
    """``uint8 [6, size, size, 3]`` views (order :data:`CAMERAS`) from one top-down frame."""
    from PIL import Image

    image = Image.fromarray(frame)
    views = [np.asarray(image.transform((size, size), Image.AFFINE, view_affine(ego_xy, d, origin, scaling, size),
                                        resample=Image.BILINEAR, fillcolor=BACKGROUND))
             for d in camera_directions(heading)]
    return np.stack(views)


def view_of(rel_xy: np.ndarray) -> np.ndarray:
    """Camera index (order :data:`CAMERAS`) whose sector holds each ego-frame point ``[..., 2]``
    (x ahead, y to the left): the camera whose yaw is angularly closest to the point's bearing."""
    bearing = np.arctan2(rel_xy[..., 1], rel_xy[..., 0])
    yaws = np.radians(CAMERA_YAWS_DEG)
    gap = np.abs((bearing[..., None] - yaws + math.pi) % (2 * math.pi) - math.pi)
    return gap.argmin(-1)
