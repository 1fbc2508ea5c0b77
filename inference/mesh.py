"""Mesh arrays (positions, triangles) in the source camera's frame, from depth maps.

The camera sits at the origin looking down -Z with +Y up; pixel (u, v) at depth z lies
at ((u + .5 - W/2) z / f, -(v + .5 - H/2) z / f, -z), f = W / (2 tan(hfov / 2)).
Vertices sit at pixel centres of the mesh grid; the photo is projected onto the mesh
from the source camera in the shader, so texture stays exact at any mesh density.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class MeshArrays:
    positions: np.ndarray   # (N, 3) float32
    triangles: np.ndarray   # (M, 3) int32

    @property
    def n_vertices(self) -> int:
        return len(self.positions)


def focal_px(width: int, hfov_deg: float) -> float:
    return 0.5 * width / math.tan(math.radians(hfov_deg) / 2)


def unproject(depth: np.ndarray, hfov_deg: float) -> np.ndarray:
    """(H, W, 3) camera-frame points of every pixel centre."""
    h, w = depth.shape
    f = focal_px(w, hfov_deg)
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    x = (u + 0.5 - w / 2) / f * depth
    y = -(v + 0.5 - h / 2) / f * depth
    return np.stack([x, y, -depth], -1).astype(np.float32)


def grid_mesh(depth: np.ndarray, hfov_deg: float, keep: np.ndarray | None = None,
              cut_h: np.ndarray | None = None, cut_v: np.ndarray | None = None,
              margin: bool = False) -> MeshArrays:
    """Triangulated pixel grid: two triangles per 2x2 block of pixel centres.

    ``keep``: pixels that may be used (default all). ``cut_h``/``cut_v``: neighbour pairs
    no triangle may span (occlusion edges). Each 2x2 block is split along the diagonal
    with the smaller depth difference; a triangle is kept only if none of its three
    edges is cut (the diagonal counts as cut when either path around it is).

    ``margin``: each triangle that would span a cut is kept *flattened to its near side*
    (its far corners pulled forward to the nearest corner's depth, unshared). Seen from
    the source camera this closes the sub-pixel crack along every occlusion edge with
    the photo's own colours; from elsewhere it is a hairline margin that moves with the
    foreground, never a sheet stretched back to the background.
    """
    h, w = depth.shape
    if keep is None:
        keep = np.ones((h, w), bool)
    if cut_h is None:
        cut_h = np.zeros((h, w - 1), bool)
    if cut_v is None:
        cut_v = np.zeros((h - 1, w), bool)
    idx = np.arange(h * w, dtype=np.int64).reshape(h, w)
    a, b = idx[:-1, :-1], idx[:-1, 1:]      # top-left, top-right
    c, d = idx[1:, :-1], idx[1:, 1:]        # bottom-left, bottom-right
    top, bot = cut_h[:-1], cut_h[1:]
    left, right = cut_v[:, :-1], cut_v[:, 1:]
    ka, kb, kc, kd = keep[:-1, :-1], keep[:-1, 1:], keep[1:, :-1], keep[1:, 1:]
    z = depth
    # Diagonal a-d ("\") or b-c ("/"): pick the one joining closer depths.
    diag_ad = np.abs(z[:-1, :-1] - z[1:, 1:]) <= np.abs(z[:-1, 1:] - z[1:, :-1])
    cut_ad = (top | right) & (left | bot)   # a-d blocked when both ways round are cut
    cut_bc = (top | left) & (right | bot)

    # (corners, usable, not cut) for the four possible triangles of a block; the
    # corner order is counter-clockwise seen from the camera.
    cand = [
        ((a, c, d), diag_ad & ka & kc & kd, ~left & ~bot & ~cut_ad),     # "\" lower
        ((a, d, b), diag_ad & ka & kd & kb, ~top & ~right & ~cut_ad),    # "\" upper
        ((a, c, b), ~diag_ad & ka & kc & kb, ~left & ~top & ~cut_bc),    # "/" upper
        ((b, c, d), ~diag_ad & kb & kc & kd, ~right & ~bot & ~cut_bc),   # "/" lower
    ]
    tri = np.concatenate([np.stack([v[ok & whole] for v in corners], -1) for corners, ok, whole in cand])
    used = np.zeros(h * w, bool)
    used[tri.ravel()] = True
    remap = np.cumsum(used) - 1
    pts_all = unproject(depth, hfov_deg).reshape(-1, 3)
    pts = pts_all[used]
    tri = remap[tri]
    if margin:
        flaps = np.concatenate([np.stack([v[ok & ~whole] for v in corners], -1) for corners, ok, whole in cand])
        if len(flaps):
            zf = depth.ravel()[flaps]                              # (K, 3)
            znear = zf.min(1, keepdims=True)
            zf = np.where(zf > znear * 1.02, znear, zf)
            scale = (zf / depth.ravel()[flaps])[..., None]         # along each pixel's ray
            extra = (pts_all[flaps] * scale).reshape(-1, 3)
            tri = np.concatenate([tri, len(pts) + np.arange(extra.shape[0]).reshape(-1, 3)])
            pts = np.concatenate([pts, extra])
    return MeshArrays(np.ascontiguousarray(pts, np.float32), np.ascontiguousarray(tri, np.int32))
