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

from .masks import cut_sides


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
    return unproject_pixels(depth, hfov_deg, np.arange(h * w)).reshape(h, w, 3)


def unproject_pixels(depth: np.ndarray, hfov_deg: float, flat: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame points of the pixel centres with flat indices ``flat``."""
    h, w = depth.shape
    f = focal_px(w, hfov_deg)
    v, u = np.divmod(flat, w)
    z = depth.ravel()[flat].astype(np.float32)
    x = (u.astype(np.float32) + np.float32(0.5 - w / 2)) * np.float32(1 / f) * z
    y = -(v.astype(np.float32) + np.float32(0.5 - h / 2)) * np.float32(1 / f) * z
    return np.stack([x, y, -z], -1).astype(np.float32)


def flat_blocks(depth: np.ndarray, keep: np.ndarray, cut_h: np.ndarray, cut_v: np.ndarray,
                block: int, tol: float, candidates: np.ndarray | None = None,
                disp: np.ndarray | None = None, blocked: np.ndarray | None = None,
                median_disp: float | None = None, inner_clear: bool = False) -> np.ndarray:
    """(nby, nbx) bool: blocks of ``block`` x ``block`` grid quads (vertices kB..(k+1)B)
    that one coarse fan of triangles represents within ``tol`` (relative disparity): no
    cut in or around them, every pixel usable, disparity within ``tol`` of a plane.
    ``candidates`` (nby, nbx): the only blocks to test (the rest are False).
    ``inner_clear``: the candidates' first ``block`` x ``block`` pixels are known to be
    unblocked: only the far row and column are checked."""
    h, w = depth.shape
    nby, nbx = (h - 1) // block, (w - 1) // block
    if nby == 0 or nbx == 0:
        return np.zeros((max(nby, 0), max(nbx, 0)), bool)
    n = block + 1
    if disp is None:
        disp = 1.0 / np.maximum(depth.astype(np.float64), 1e-9)
    if blocked is None:
        blocked = _blocked(keep, cut_h, cut_v)
    if candidates is None:
        candidates = np.ones((nby, nbx), bool)
    by, bx = np.nonzero(candidates)
    out = np.zeros((nby, nbx), bool)
    if not len(by):
        return out
    ys = (by * block)[:, None] + np.arange(n)[None, :]                      # (K, n)
    xs = (bx * block)[:, None] + np.arange(n)[None, :]
    tiles = disp[ys[:, :, None], xs[:, None, :]]                            # (K, n, n)
    # Least-squares plane a u + b v + c over each block's (n x n) vertices.
    g = np.arange(n, dtype=tiles.dtype) - tiles.dtype.type(block / 2)
    uu, vv = np.meshgrid(g, g)
    su2 = (uu * uu).sum()
    mean = tiles.mean((1, 2), keepdims=True)
    a = (tiles * uu).sum((1, 2), keepdims=True) / su2
    b = (tiles * vv).sum((1, 2), keepdims=True) / su2
    tiles -= mean + a * uu + b * vv          # the residual, in place
    # Relative to the block's disparity, but never finer than relative to the photo's median
    # disparity: what a moving camera shows is parallax, proportional to absolute disparity
    # error, so blocks behind the median (walls, sky) may be as coarse as those at it.
    ref = np.maximum(mean[:, 0, 0], float(np.median(disp)) if median_disp is None else median_disp)
    err = np.abs(tiles).max((1, 2)) / np.maximum(ref, 1e-12)
    # No cut touching the block (inside or on its rim), every vertex usable.
    if inner_clear:
        rim = blocked[(by * block + block)[:, None], xs].any(1) | blocked[ys, (bx * block + block)[:, None]].any(1)
    else:
        rim = blocked[ys[:, :, None], xs[:, None, :]].any((1, 2))
    ok = (err <= tol) & ~rim
    out[by, bx] = ok
    return out


def _blocked(keep: np.ndarray, cut_h: np.ndarray, cut_v: np.ndarray) -> np.ndarray:
    """Pixels no coarse block may use: beside a cut, or not to be meshed."""
    return ~keep | cut_sides(cut_h, cut_v)


# The smallest planar block tried (2x2: 17 % of a portrait's pixels as vertices, 0.06 s
# more than stopping at 4x4 with 20 %).
MIN_BLOCK = 2


def quadtree_blocks(depth: np.ndarray, keep: np.ndarray, cut_h: np.ndarray, cut_v: np.ndarray,
                    block: int, tol: float) -> tuple[list[tuple[int, np.ndarray]], np.ndarray]:
    """Planar blocks from ``block`` quads down to 2, each level filling what the larger ones
    left (aligned, so they nest as a quadtree): [(size, (nby, nbx) bool)], and the size of
    the block covering each grid quad, (h-1, w-1), 1 where no block does. Curved surfaces
    (a face, a cone) are planar in 4x4 or 2x2 blocks where they are not in 8x8 ones."""
    h, w = depth.shape
    size = np.ones((h - 1, w - 1), np.int16)
    # float32: plane fits to 1e-3 need no more, and the gathers move half the bytes
    disp = np.float32(1.0) / np.maximum(depth.astype(np.float32), np.float32(1e-9))
    ref = float(np.median(disp))
    blocked = _blocked(keep, cut_h, cut_v)
    sizes = []
    b = block
    while b >= MIN_BLOCK:
        sizes.append(b)
        b //= 2
    # Which blocks hold a blocked pixel in their first b x b, per level: the finest level's
    # from the pixels, each coarser one pooled from the next finer (aligned: four of them).
    # All the bookkeeping stays at block resolution.
    dirty = {}
    for b in reversed(sizes):
        nby, nbx = (h - 1) // b, (w - 1) // b
        if b == sizes[-1]:
            dirty[b] = blocked[:nby * b, :nbx * b].reshape(nby, b, nbx, b).any((1, 3))
        else:
            dirty[b] = dirty[b // 2][:2 * nby, :2 * nbx].reshape(nby, 2, nbx, 2).any((1, 3))
    levels = []
    taken = np.zeros((0, 0), bool)        # blocks of the previous (larger) level taken so far
    for b in sizes:
        nby, nbx = (h - 1) // b, (w - 1) // b
        covered = np.zeros((nby, nbx), bool)
        ty, tx = taken.shape
        covered[:2 * ty, :2 * tx] = taken.repeat(2, 0).repeat(2, 1)
        if nby and nbx:
            # Only blocks no larger block took (most of a wall is gone after the first level),
            # none with a blocked pixel (flat_blocks checks the far row and column).
            free = ~covered & ~dirty[b]
            ok = flat_blocks(depth, keep, cut_h, cut_v, b, tol, free, disp, blocked, ref, inner_clear=True)
            size[:nby * b, :nbx * b][ok.repeat(b, 0).repeat(b, 1)] = b
            levels.append((b, ok))
            covered |= ok
        taken = covered
    return levels, size


def _fan_triangles(idx: np.ndarray, levels: list[tuple[int, np.ndarray]],
                   size: np.ndarray) -> np.ndarray:
    """Triangles of the coarse blocks: fans from each block's centre vertex to the
    vertices along its sides that a neighbour has as a corner (every vertex beside
    per-pixel quads or the image edge, the corners of smaller blocks, just its own
    corners beside larger ones), so that no T-junction opens a crack."""
    h, w = idx.shape
    # The neighbour's block size per quad, 1 (keep every vertex) outside the image.
    nb = np.pad(size, 1, constant_values=1)
    tris = []
    for B, coarse in levels:
        if not coarse.any():
            continue
        by, bx = np.nonzero(coarse)
        y0, x0 = by * B, bx * B
        centre = idx[y0 + B // 2, x0 + B // 2]
        k = np.arange(B + 1)
        kq = np.minimum(k, B - 1)                  # the quad beside vertex k (and k - 1)
        kp = np.maximum(k - 1, 0)
        # The four sides in fan order (down the left, along the bottom, up the right, back
        # along the top): their vertices, the global positions along the side, and the
        # neighbour's size for the quads before and after each vertex (padded indices).
        sides = []
        for verts, pos, n_before, n_after in (
            (idx[y0[:, None] + k, x0[:, None]], y0[:, None] + k,
             nb[y0[:, None] + kp + 1, x0[:, None]], nb[y0[:, None] + kq + 1, x0[:, None]]),
            (idx[(y0 + B)[:, None], x0[:, None] + k], x0[:, None] + k,
             nb[(y0 + B + 1)[:, None], x0[:, None] + kp + 1], nb[(y0 + B + 1)[:, None], x0[:, None] + kq + 1]),
        ):
            sides.append((verts, pos, n_before, n_after))
        for verts, pos, n_before, n_after in (
            (idx[y0[:, None] + k, (x0 + B)[:, None]], y0[:, None] + k,
             nb[y0[:, None] + kp + 1, (x0 + B + 1)[:, None]], nb[y0[:, None] + kq + 1, (x0 + B + 1)[:, None]]),
            (idx[y0[:, None], x0[:, None] + k], x0[:, None] + k,
             nb[y0[:, None], x0[:, None] + kp + 1], nb[y0[:, None], x0[:, None] + kq + 1]),
        ):
            sides.append((verts[:, ::-1], pos[:, ::-1], n_before[:, ::-1], n_after[:, ::-1]))
        for verts, pos, n_before, n_after in sides:
            need = (pos % n_before == 0) | (pos % n_after == 0)
            need[:, 0] = need[:, -1] = True
            r, c = np.nonzero(need)                 # row-major: each side's kept vertices in order
            pair = r[:-1] == r[1:]
            tris.append(np.stack([centre[r[:-1][pair]], verts[r[:-1][pair], c[:-1][pair]],
                                  verts[r[1:][pair], c[1:][pair]]], -1))
    return np.concatenate(tris) if tris else np.zeros((0, 3), np.int64)


def grid_mesh(depth: np.ndarray, hfov_deg: float, keep: np.ndarray | None = None,
              cut_h: np.ndarray | None = None, cut_v: np.ndarray | None = None,
              margin: bool = False, block: int = 0, tol: float = 0.002) -> MeshArrays:
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

    ``block`` > 0 (even): adaptive density. Blocks of ``block`` x ``block`` quads whose
    disparity is planar within ``tol`` and that touch no cut become a fan of a few
    triangles (``flat_blocks``, ``_fan_triangles``); the rest stays one vertex per pixel.
    The photo is projected in the shader, so the texture stays exact at any density.
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
    fine = np.ones((h - 1, w - 1), bool)
    fans = np.zeros((0, 3), np.int64)
    if block and block % 2 == 0:
        levels, size = quadtree_blocks(depth, keep, cut_h, cut_v, block, tol)
        fans = _fan_triangles(idx, levels, size)
        fine = size == 1
    tri = np.concatenate([np.stack([v[ok & whole & fine] for v in corners], -1) for corners, ok, whole in cand]
                         + [fans])
    used = np.zeros(h * w, bool)
    used[tri.ravel()] = True
    flaps = np.zeros((0, 3), np.int64)
    if margin:
        flaps = np.concatenate([np.stack([v[ok & ~whole & fine] for v in corners], -1)
                                for corners, ok, whole in cand])
        zf = depth.ravel()[flaps]                              # (K, 3)
        znear = zf.min(1, keepdims=True)
        moved = zf > znear * 1.02
        used[flaps[~moved]] = True        # a corner left where it is is the grid's own vertex
    remap = np.cumsum(used) - 1
    pts = unproject_pixels(depth, hfov_deg, np.flatnonzero(used))     # only the vertices in use
    tri = remap[tri]
    if len(flaps):
        # Only the far corners get vertices of their own, pulled along their rays.
        scale = (znear / zf)[moved][:, None]
        extra = unproject_pixels(depth, hfov_deg, flaps[moved]) * scale
        ids = np.where(moved, 0, remap[flaps])
        ids[moved] = len(pts) + np.arange(int(moved.sum()))
        tri = np.concatenate([tri, ids])
        pts = np.concatenate([pts, extra])
    return MeshArrays(np.ascontiguousarray(pts, np.float32), np.ascontiguousarray(tri, np.int32))
