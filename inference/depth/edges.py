"""Strong depth edges put back on the photo's edges, where no mask says where they are.

A depth model smears an occlusion edge into a ramp a few of its pixels wide: at 1 MP a
flag standing well in front of a wall rises from the wall's disparity to its own over
about ten pixels. Cut or not, such a ramp breaks a moving view: uncut, the mesh is a
rubber sheet that drags the flag's stripes across the wall; cut at its larger steps, it
leaves slivers at in-between depths that float as specks. The photo's own edge is
sharp, so each ramp pixel is given to one side of it: the side of the strongest colour
change met along the depth's slope (the flag's red-to-wall edge, not a stripe running
along the slope), and takes the depth of that side's nearest pixel beyond the ramp.

A subject's outline is settled on its mask first (outline.py); this handles the rest.
"""
from __future__ import annotations

import cv2
import numpy as np

from .. import masks
from ..layers import REL_JUMP, STEP_RATIO

# Only edges across which disparity changes by more than this factor (a thing well in
# front of what is behind it) are sharpened: a mild step is left to the layering.
STRONG = 1.3
# A pixel within this relative disparity of its window's nearest or farthest lies on a
# side already (not on the ramp).
SIDE = 2 * REL_JUMP
# How much stronger (squared Sobel response) the colour edge must be than any other change
# along the slope to decide a ramp pixel's side.
DOMINANT = 4.0


def _sample(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``img`` (h, w, c) at points (x, y): (n, c). (OpenCV's remap
    takes maps under 32767 on a side: the points go in rows of 4096.)"""
    n = len(x)
    cols = 4096
    rows = max(1, -(-n // cols))
    mx = np.zeros(rows * cols, np.float32)
    my = np.zeros(rows * cols, np.float32)
    mx[:n], my[:n] = x, y
    out = cv2.remap(img, mx.reshape(rows, cols), my.reshape(rows, cols), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(rows * cols, -1)[:n]


def sharpen(depth: np.ndarray, rgb: np.ndarray, reach: float,
            subject: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(``depth`` with the ramps of strong edges made steps on the photo's edges, the ramp
    pixels). ``reach``: half the widest ramp expected (pixels). ``subject``: left as it is,
    with its outline (one layer, settled on its mask already: a cat's face rises steeply
    from its eyes to its nose, and a step there would open it)."""
    depth = depth.astype(np.float32)
    none = np.zeros(depth.shape, bool)
    r = max(1, int(round(reach)))
    disp = np.float32(1.0) / np.maximum(depth, np.float32(1e-9))
    k = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    hi, lo = cv2.dilate(disp, k), cv2.erode(disp, k)
    # On the ramp: between the two sides, and steep (a side's own slope, a flag's rounded
    # face, is not the ramp).
    slope = np.hypot(cv2.Sobel(disp, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE),
                     cv2.Sobel(disp, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)) / 8
    zone = hi > lo * STRONG
    ramp = zone & (disp > lo * (1 + SIDE)) & (disp * (1 + SIDE) < hi) & (slope > REL_JUMP * disp)
    if subject is not None:
        ramp &= ~masks.grow(subject, 1)
    if not ramp.any():
        return depth, none
    # Work round the ramps only.
    h, w = depth.shape
    ys, xs = np.nonzero(ramp)
    pad = 2 * r + 2
    y0, y1 = max(0, int(ys.min()) - pad), min(h, int(ys.max()) + pad + 1)
    x0, x1 = max(0, int(xs.min()) - pad), min(w, int(xs.max()) + pad + 1)
    d, rp = disp[y0:y1, x0:x1], ramp[y0:y1, x0:x1]
    mid = np.sqrt(hi[y0:y1, x0:x1] * lo[y0:y1, x0:x1])

    # The slope's direction at each ramp pixel (towards the near side), from the
    # disparity smoothed over the ramp's width.
    sm = cv2.GaussianBlur(d, (0, 0), max(1.0, r / 3))
    gx = cv2.Sobel(sm, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(sm, cv2.CV_32F, 0, 1, ksize=3)
    py, px = np.nonzero(rp)
    ux, uy = gx[py, px], gy[py, px]
    norm = np.hypot(ux, uy)
    ok = norm > 0
    ux = np.where(ok, ux / np.maximum(norm, 1e-12), 0).astype(np.float32)
    uy = np.where(ok, uy / np.maximum(norm, 1e-12), 0).astype(np.float32)

    # A ramp is steeper than what lies a ramp's width either way along it (a plane's
    # slope is the same all along: a floor near the horizon is no ramp).
    reach_px = np.float32(r + 1)
    sl = slope[y0:y1, x0:x1, None]
    around = []
    for sign in (-1, 1):
        sx, sy = px + sign * reach_px * ux, py + sign * reach_px * uy
        # (beyond the photo's border only the other way tells)
        inside = ((sx + x0 >= 0) & (sx + x0 <= w - 1) & (sy + y0 >= 0) & (sy + y0 <= h - 1))
        around.append(np.where(inside, _sample(sl, sx, sy)[:, 0], np.inf))
    steep = slope[y0:y1, x0:x1][py, px] > STEP_RATIO * np.minimum(*around)
    if not steep.all():
        rp = rp.copy()
        rp[py[~steep], px[~steep]] = False
        py, px, ux, uy = py[steep], px[steep], ux[steep], uy[steep]
        if not len(py):
            return depth, none
    # The two sides: beside a strong edge, off its ramp (in flat parts, far from any
    # edge, a pixel is on neither).
    side = zone[y0:y1, x0:x1] & ~rp
    near_side, far_side = side & (d >= mid), side & (d < mid)
    if not near_side.any() or not far_side.any():
        return depth, none

    # The colour's change along that direction, at offsets -r..r from each pixel; the
    # strongest marks the edge.
    img = np.ascontiguousarray(rgb[y0:y1, x0:x1], np.float32)
    cgx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    cgy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    offsets = np.arange(-r, r + 1, dtype=np.float32)
    mags = np.empty((len(offsets), len(py)), np.float32)
    for i, t in enumerate(offsets):
        mx, my = px + t * ux, py + t * uy
        sx, sy = _sample(cgx, mx, my), _sample(cgy, mx, my)
        mags[i] = ((sx * ux[:, None] + sy * uy[:, None]) ** 2).sum(1)
    k_best = mags.argmax(0)
    best = mags[k_best, np.arange(len(py))]
    at = offsets[k_best]
    # The next strongest change at least 2 px from it: in a texture (a flag's gold fringe,
    # foliage) the changes are many and alike, and a choice by colour would shred it.
    far_off = np.abs(offsets[:, None] - at[None]) >= 2
    second = np.where(far_off, mags, 0).max(0)
    # The edge behind the pixel (towards the far side, t < 0): the pixel is on the near
    # side. No colour edge to go by (a Sobel response under 0.1: a change of about 0.025
    # in colour), or none that stands out (a squared response under DOMINANT times the
    # next): the disparity's midpoint decides.
    flat = (best <= (0.1 ** 2)) | (best < DOMINANT * second)
    to_near = np.where(flat, d[py, px] >= mid[py, px], at < 0)
    # The side most of a pixel's neighbours took (a majority over a ramp's width): one
    # pixel given to the other side alone would stand as a spike, which no cut catches,
    # and rows going alternate ways shred a textured edge (a flag's gold cord).
    vote = np.zeros(d.shape, np.float32)
    vote[py, px] = np.where(to_near, 1.0, -1.0)
    to_near = cv2.boxFilter(vote, -1, (3, 3), normalize=False)[py, px] > 0
    # ...and over a ramp's width, where most went one way (a 3:1 majority: along the
    # true edge the two sides are about even, so it stays where it is).
    vote[py, px] = np.where(to_near, 1.0, -1.0)
    wide = cv2.boxFilter(vote, -1, (2 * r + 1, 2 * r + 1), normalize=False)[py, px]
    count = cv2.boxFilter(np.abs(vote), -1, (2 * r + 1, 2 * r + 1), normalize=False)[py, px]
    to_near = np.where(np.abs(wide) > 0.5 * count, wide > 0, to_near)
    (nv, nu), (fv, fu) = masks.nearest(near_side), masks.nearest(far_side)
    # A ramp whose near side is the subject is its outline's, which outline.settle has
    # been over: what it left there is something of its own between the subject and
    # what is behind (a flag's gold cord beside a head), and split between the two it
    # came apart in shreds.
    own = np.zeros(len(py), bool)
    if subject is not None:
        own = subject[y0:y1, x0:x1][nv[py, px], nu[py, px]]
    out = d.copy()
    for (iv, iu), sel in (((nv, nu), to_near & ~own), ((fv, fu), ~to_near & ~own)):
        qy, qx = py[sel], px[sel]
        sy, sx = iv[qy, qx], iu[qy, qx]
        # Only from a side within the ramp's reach (else something else's: left as is).
        close = (sy - qy) ** 2 + (sx - qx) ** 2 <= (2 * r + 1) ** 2
        out[qy[close], qx[close]] = d[sy[close], sx[close]]
    disp = disp.copy()
    disp[y0:y1, x0:x1] = out
    ramp_px = none.copy()
    ramp_px[y0:y1, x0:x1] = rp
    return (np.float32(1.0) / disp).astype(np.float32), ramp_px
