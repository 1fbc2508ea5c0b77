"""Points on the reconstructed ground, where rain splashes (pure NumPy, no bpy)."""
from __future__ import annotations

import numpy as np


def sample_ground(normal: np.ndarray, centre: np.ndarray, area: np.ndarray, count: int, seed: int = 21,
                  positions: np.ndarray | None = None, triangles: np.ndarray | None = None) -> np.ndarray:
    """``count`` points on the ground of a mesh in the source camera's frame (looking down
    -Z, +Y up), given its faces' ``normal`` and ``centre`` (F, 3) and ``area`` (F,): faces
    that face the camera, point up and lie below the camera, drawn uniformly per area of
    the image (a splash keeps its size on screen). With the vertex ``positions`` and the
    faces as ``triangles`` (F, 3), anywhere inside the triangles, else at their centres.
    (0, 3) where the mesh shows no ground."""
    n = len(normal)
    if count <= 0 or not n:
        return np.zeros((0, 3), np.float32)
    depth = np.maximum(-centre[:, 2], 1e-6)
    view = centre / np.linalg.norm(centre, axis=1, keepdims=True).clip(1e-9)
    facing = -(normal * view).sum(1)
    normal = np.where(facing[:, None] < 0, -normal, normal)      # whatever the winding: towards the camera
    facing = np.abs(facing)
    ground = (normal[:, 1] > 0.5) & (centre[:, 1] < 0) & (facing > 0.03)
    weight = np.where(ground, area * facing / depth ** 2, 0.0)   # area in the image
    if weight.sum() <= 0:
        return np.zeros((0, 3), np.float32)
    rng = np.random.default_rng(seed)
    faces = rng.choice(n, size=count, p=weight / weight.sum())
    if positions is None or triangles is None:
        return centre[faces].astype(np.float32)
    tri = positions[triangles[faces]]
    a, b = rng.random(count), rng.random(count)
    flip = a + b > 1
    a, b = np.where(flip, 1 - a, a), np.where(flip, 1 - b, b)
    pts = tri[:, 0] + a[:, None] * (tri[:, 1] - tri[:, 0]) + b[:, None] * (tri[:, 2] - tri[:, 0])
    return pts.astype(np.float32)
