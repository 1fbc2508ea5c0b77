"""Detailed depth for photos much larger than a model's working size: global + tiles, merged.

A depth model sees a photo at a few hundred pixels; a 24 MP photo shrunk that far loses
hair, railings and leaves. Here the model runs once on the whole photo (the global layout:
which object is in front of which) and then on overlapping tiles cut from the full-size
photo, each shrunk to the model's working size, so every tile sees several times more
detail. Each tile's inverse depth is aligned to the global one over the tile (scale and
shift by least squares: tiles come back in their own relative units), the remaining
low-frequency difference is taken from the global map (layout from the whole photo,
detail from the tile), and the tiles are blended with feathered weights that fall to zero
at their inner borders, so no seam shows. Memory stays bounded: one tile at a time, and
the merged map at the tiles' resolution (never the photo's).

Any depth estimator works: a callable rgb -> (z-depth, subject or None[, extras]).
Subject and extras (a field-of-view estimate) come from the global run; the extras gain
``tile_gap``: how far the tiles' depth, seen at the whole photo's resolution, departs from
the whole photo's (relative to its disparity range; for the depth's confidence).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import Cancelled
from ..masks import disparity
from ..photo import resize, working_size

OVERLAP = 0.25          # share of a tile's side shared with its neighbour
MAX_TILES = 8           # along the long side
AUTO_MIN_GAIN = 1.5     # auto: tile only when tiles add at least this much resolution


@dataclass(frozen=True)
class TilePlan:
    photo_size: tuple[int, int]                  # (W, H)
    out_size: tuple[int, int]                    # merged depth (w, h)
    tile: tuple[int, int]                        # tile size in photo pixels (tw, th)
    boxes: tuple[tuple[int, int, int, int], ...]  # (x0, y0, x1, y1) in photo pixels

    @property
    def count(self) -> int:
        return len(self.boxes)

    @property
    def grid(self) -> tuple[int, int]:
        return len({b[0] for b in self.boxes}), len({b[1] for b in self.boxes})


def _starts(size: int, tile: int, overlap_px: float) -> list[int]:
    if tile >= size:
        return [0]
    n = max(2, math.ceil((size - overlap_px) / (tile - overlap_px)))
    return [round(i * (size - tile) / (n - 1)) for i in range(n)]


def plan(photo_size: tuple[int, int], working_long_side: int, tiles: int,
         overlap: float = OVERLAP) -> TilePlan | None:
    """``tiles`` along the photo's long side, overlapping by ``overlap``; None when the photo
    is too small for tiles to add detail (it is already near the model's working size)."""
    w, h = photo_size
    long_side = max(w, h)
    tiles = int(min(max(tiles, 1), MAX_TILES))
    if tiles < 2:
        return None
    side = math.ceil(long_side / (tiles - (tiles - 1) * overlap))
    scale = min(1.0, working_long_side / side)          # photo px -> merged px
    if long_side * scale < 1.3 * working_long_side:        # less than 30 % more detail: not worth it
        return None
    tw, th = min(side, w), min(side, h)
    ov = overlap * side
    boxes = tuple((x, y, x + tw, y + th) for y in _starts(h, th, ov) for x in _starts(w, tw, ov))
    out = (max(2, round(w * scale)), max(2, round(h * scale)))
    return TilePlan((w, h), out, (tw, th), boxes)


def auto_tiles(photo_size: tuple[int, int], working_long_side: int, target_long_side: int) -> int:
    """How many tiles along the long side bring the merged depth to ``target_long_side``
    (the mesh's resolution), at most 4; 0 when tiling would add less than 1.5x."""
    long_side = max(photo_size)
    want = min(long_side, target_long_side)
    if want < AUTO_MIN_GAIN * working_long_side:
        return 0
    for n in range(2, 5):
        # n tiles give about working * (n - (n - 1) * overlap) pixels along the long side
        if working_long_side * (n - (n - 1) * OVERLAP) >= 0.95 * want:
            return n
    return 4


def _feather(length: int, ramp: float, at_start: bool, at_end: bool) -> np.ndarray:
    """1 inside, falling smoothly to ~0 over ``ramp`` pixels at inner borders."""
    i = np.arange(length, dtype=np.float32) + 0.5
    f = np.ones(length, np.float32)
    ramp = max(ramp, 1.0)
    if at_start:
        f = np.minimum(f, i / ramp)
    if at_end:
        f = np.minimum(f, (length - i) / ramp)
    f = np.clip(f, 0.0, 1.0)
    return np.maximum(f * f * (3 - 2 * f), 1e-4).astype(np.float32)   # smoothstep, never exactly 0


def align(tile_disp: np.ndarray, global_disp: np.ndarray, weight: np.ndarray | None = None) -> tuple[float, float]:
    """(a, b) minimising sum w (a * tile + b - global)^2: the tile's inverse depth in the
    global map's units. a <= 0 (a tile that contradicts the layout) gives (0, mean global)."""
    w = np.ones_like(tile_disp) if weight is None else weight
    sw = float(w.sum())
    mt = float((w * tile_disp).sum() / sw)
    mg = float((w * global_disp).sum() / sw)
    dt = tile_disp - mt
    var = float((w * dt * dt).sum() / sw)
    cov = float((w * dt * (global_disp - mg)).sum() / sw)
    if var <= 1e-12 * max(mt * mt, 1e-12) or not math.isfinite(cov / var) or cov <= 0:
        return 0.0, mg
    a = cov / var
    return a, mg - a * mt


def merge(estimate: Callable[[np.ndarray], tuple], rgb: np.ndarray, working_long_side: int, tile_plan: TilePlan,
          on_tile: Callable[[int, int], None] | None = None,
          cancelled: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """(z-depth, subject or None, extras) at ``tile_plan.out_size`` from the global run and
    the plan's tiles, processed one at a time. ``on_tile(i, n)`` after each run (i = 1..n,
    the global run included)."""
    W, H = tile_plan.photo_size
    ow, oh = tile_plan.out_size
    sx, sy = ow / W, oh / H
    n = tile_plan.count + 1
    out = estimate(resize(rgb, working_size(W, H, working_long_side)))
    subject = out[1]
    extras = dict(out[2]) if len(out) > 2 else {}
    g = resize(disparity(out[0]), (ow, oh))
    if subject is not None:
        subject = resize(np.asarray(subject, np.float32), (ow, oh))
    if on_tile:
        on_tile(1, n)
    num = np.zeros((oh, ow), np.float32)
    den = np.zeros((oh, ow), np.float32)
    gap = np.zeros((oh, ow), np.float32)
    # The whole photo's run sees detail this many merged pixels across: the tiles are
    # compared with it at that scale (their finer detail is no disagreement).
    g_sigma = max(0.5, 0.5 * max(ow, oh) / working_long_side)
    g_lo, g_hi = np.percentile(g, [2, 98])
    g_range = max(float(g_hi - g_lo), 1e-6)
    ramp = OVERLAP * max(tile_plan.tile) * max(sx, sy)
    for k, (x0, y0, x1, y1) in enumerate(tile_plan.boxes):
        if cancelled and cancelled():
            raise Cancelled()
        X0, Y0, X1, Y1 = round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)
        bw, bh = X1 - X0, Y1 - Y0
        crop = rgb[y0:y1, x0:x1]
        d = estimate(resize(crop, working_size(x1 - x0, y1 - y0, working_long_side)))[0]
        t = resize(disparity(d), (bw, bh))
        gt = g[Y0:Y1, X0:X1]
        a, b = align(t, gt)
        aligned = a * t + b
        wgt = np.outer(_feather(bh, ramp, Y0 > 0, Y1 < oh), _feather(bw, ramp, X0 > 0, X1 < ow))
        gap[Y0:Y1, X0:X1] += wgt * np.abs(cv2.GaussianBlur(aligned, (0, 0), g_sigma) - gt) / g_range
        # What the affine fit leaves (a tile's depth is not an exact affine map of the
        # global one): its low frequencies come from the global map, its detail stays.
        sigma = 0.125 * max(bw, bh)
        aligned += cv2.GaussianBlur(gt - aligned, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        num[Y0:Y1, X0:X1] += wgt * aligned
        den[Y0:Y1, X0:X1] += wgt
        del crop, d, t, aligned
        if on_tile:
            on_tile(k + 2, n)
    disp = np.where(den > 0, num / np.maximum(den, 1e-12), g)
    extras["tile_gap"] = np.where(den > 0, gap / np.maximum(den, 1e-12), 0).astype(np.float32)
    floor = 0.5 * float(g.min())
    depth = (1.0 / np.maximum(disp, max(floor, 1e-9))).astype(np.float32)
    return depth, subject, extras
