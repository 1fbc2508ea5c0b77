"""Scene priors for real photographs: what holds in nearly every photo, applied where a
small model's depth goes against it (issue 19, item 3; measured in docs/real_photos.md).

- **The sky is farthest and flat** (every model). Bright or clearly blue, untextured regions
  open to the top border (:func:`sky_mask`) go to the farthest depth in the frame. The
  bundled net reads a night sky as near; a patch of sky that comes forward floats as a blob.
- **What stands behind the subject is behind it, and nearly planar** (a model whose layout
  is guesswork: ``DepthModel.layout_priors``). Above the subject's foot, outside it, nothing
  is nearer than the subject's far side, and relief towards the camera from a plane fitted
  robustly to that background is flattened by ``RELIEF`` (:func:`behind_subject`): small
  models bring shelves and walls forward, and every cut between such bumps doubles an edge
  at the orbit's end. Relief going away from the camera (a doorway) is kept; so is what runs
  on from the subject at its depth (a saucer under a cup).
- **Long, thin parts of the subject are straight** (same models): a rocket or a mast whose
  depth the model bent goes onto a plane of its own (:func:`straighten`); one that stands
  upright onto a vertical plane, at one depth from foot to tip (the model reads a tip as
  farther than the foot, and the part leans when the camera moves).
- **What stands against the sky stands upright** (same models): a mast, a lattice tower or
  a lamp post above the horizon, outside the subject, several times taller than wide, goes
  onto a vertical plane (:func:`against_sky`), fading out towards the horizon; the sky's
  depth bleeds into such thin structures and they bent along their height.
- **The ground is one plane** (same models, found by their normals): where it bulges
  towards the camera (a pier's boards) it goes onto a plane fitted to it
  (:func:`ground_plane`), and it is never pushed behind the subject.

No bpy; NumPy, OpenCV and SciPy. Depth is z-depth (larger is farther); the priors work in
disparity (1 / z), where a plane in the world is a plane in the image.
"""
from __future__ import annotations

import cv2
import numpy as np

from .. import masks

__all__ = ["sky_mask", "sky_far", "against_sky", "behind_subject", "ground_mask", "ground_plane", "straighten", "apply",
           "BEHIND_GAP", "RELIEF"]

# The background starts this much farther (in depth) than the subject's far side.
BEHIND_GAP = 1.1
# Share of the background's relief towards the camera that is kept (0: a plane).
RELIEF = 0.0
# The subject's far side: this percentile of its disparity.
SUBJECT_FAR_PCT = 25.0
# The sky's move to the far depth fades out over this share of the frame's long side, into
# pixels within about this colour distance (RGB, 0-1) of the sky's mean.
SKY_FEATHER = 0.01
SKY_LIKE = 0.1
# The priors fade out over this share of the frame's height above the subject's foot.
FOOT_BAND = 0.1
# Below these shares of the frame there is no subject or no background to correct.
MIN_SUBJECT_SHARE = 0.01
MIN_BACKGROUND_SHARE = 0.05
MIN_PART_SHARE = 0.005
# Ground: the model's normals at least this far up (|y| of the unit normal; the net's y
# points up or down by its convention, the floor's is near 1 either way).
GROUND_UP = 0.7
# A part of the subject this many times longer than wide is straightened (straighten).
ELONGATED = 4.0
# A long part within this many degrees of the vertical stands upright: it goes onto a
# vertical plane (its depth the same from foot to tip), not one leaning towards the camera.
UPRIGHT_DEG = 20.0
# What runs on from the subject's edge within this disparity ratio of it is attached to it.
ATTACHED = 1.05


def sky_mask(rgb: np.ndarray, strict: bool = False) -> np.ndarray:
    """Bright, low-texture, bluish or grey regions connected to the top border.

    rgb: float (H, W, 3) in [0, 1]. ``strict`` (portraits): only bright blue, since a bright
    grey wall behind a head is not sky."""
    gray = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    if h < 8 or w < 8:
        return np.zeros((h, w), bool)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    k = (max(3, (min(h, w) // 64) | 1),) * 2
    mean = cv2.blur(gray, k)
    std = np.sqrt(np.maximum(cv2.blur(gray * gray, k) - mean * mean, 0))
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    grad = np.abs(gx) + np.abs(gy)          # unblurred: an edge separates sky from a wall
    mx, mn = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)   # faster than max(axis=2)
    sat = (mx - mn) / (mx + 1e-3)
    bluish = (b >= r + 0.04) & (b >= g - 0.04)
    greyish = sat < 0.12
    if strict:
        colour = bluish & (gray > 0.35)
    else:        # blue (dusk skies are dark, and clearly blue: not a teal, blurred background) or bright grey
        colour = (bluish & (gray > 0.05) & ((gray > 0.35) | (b >= g + 0.04))) | (greyish & (gray > 0.45))
    cand = (std < 0.035) & (grad < 0.12) & colour
    cand = cv2.morphologyEx(cand.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(cand, connectivity=4)
    if n <= 1:
        return np.zeros((h, w), bool)
    keep = np.zeros(n, bool)
    keep[np.unique(lab[0])] = True
    keep[0] = False
    keep &= stats[:, cv2.CC_STAT_AREA] >= 0.01 * h * w
    sky = keep[lab]
    if not sky.any():
        return sky
    # Under a blue sky, what is warmer than grey is no sky: a sunlit white wall below it,
    # as bright and as flat, joins the sky's region through a soft edge. (A neutral haze
    # at the horizon stays sky.)
    blue_top = np.zeros(n, bool)
    for i in np.unique(lab[0][keep[lab[0]]]):
        top = lab[0] == i
        blue_top[i] = np.median(b[0][top] - r[0][top]) >= 0.04
    sky &= ~(blue_top[lab] & (b < r - 0.01))
    # Close small gaps (birds, wires), then keep, per column, only the run of sky that
    # starts at the top border: sky does not continue below a building or a tree.
    sky = cv2.morphologyEx(sky.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
    # Going down a column, sky keeps its brightness or brightens towards the horizon;
    # a clear drop is an object standing against it (a leak through a weak edge).
    run_max = np.maximum.accumulate(np.where(sky, gray, np.float32(0)), axis=0)
    sky = np.logical_and.accumulate(sky & (gray >= run_max - 0.08), axis=0)
    if sky.mean() < 0.01 or sky.nonzero()[0].mean() > 0.45 * h:
        return np.zeros((h, w), bool)
    return sky


def sky_far(depth: np.ndarray, sky: np.ndarray, rgb: np.ndarray | None = None,
            subject: np.ndarray | None = None) -> np.ndarray:
    """The sky at the farthest depth in the frame, flat. Given the photo, the change is
    feathered over ``SKY_FEATHER`` of the frame into pixels of the sky's colour beside it
    (where the mask ends inside a smooth region, the depth ramps instead of stepping); a
    tower or a tree against the sky, of another colour, keeps its depth to its tip, and so
    does the ``subject`` (a grey shoulder against an overcast sky)."""
    if not sky.any() or sky.all():
        return depth
    far = 1.0 / float(depth.max())
    weight = sky.astype(np.float32)
    if rgb is not None:
        sigma = max(1.0, SKY_FEATHER * max(depth.shape))
        like = np.exp(-(np.linalg.norm(rgb - rgb[sky].mean(axis=0), axis=2) / SKY_LIKE) ** 2)
        weight = np.maximum(cv2.GaussianBlur(weight, (0, 0), sigma) * like, weight)
        if subject is not None:
            weight[subject & ~sky] = 0.0
    disp = masks.disparity(depth)
    return (1.0 / (disp + weight * (far - disp))).astype(np.float32)


def _plane(disp: np.ndarray, where: np.ndarray, iters: int = 5, upright: bool = False) -> np.ndarray:
    """Disparity plane a x + b y + c fitted to ``disp`` over ``where`` (Huber-weighted
    least squares: the bumps the prior removes must not tilt the plane). ``upright``: b = 0,
    a vertical plane before a level camera."""
    h, w = disp.shape
    ys, xs = np.nonzero(where)
    step = max(1, len(ys) // 20000)          # a plane needs no more samples than this
    ys, xs = ys[::step], xs[::step]
    a = np.stack([xs / w, ys / h * (not upright), np.ones(xs.size)], 1)
    v = disp[ys, xs].astype(np.float64)
    coef = np.linalg.lstsq(a, v, rcond=None)[0]
    for _ in range(iters):
        r = v - a @ coef
        s = 1.4826 * np.median(np.abs(r)) + 1e-9
        wt = np.minimum(1.0, 1.5 * s / np.maximum(np.abs(r), 1e-12))
        coef = np.linalg.lstsq(a * wt[:, None], v * wt, rcond=None)[0]
    cols = (np.arange(w, dtype=np.float32) * np.float32(coef[0] / w))[None, :]
    rows = (np.arange(h, dtype=np.float32) * np.float32(coef[1] / h) + np.float32(coef[2]))[:, None]
    return rows + cols


def _attached(disp: np.ndarray, subject: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Candidates that run on from the subject at its depth (within ``ATTACHED`` of the
    disparity of the subject's nearest pixel), reached from its edge without a step: the
    saucer under a cup, the floor at a foot. They are the subject's support or a part the
    mask missed, not a background the model brought forward."""
    iy, ix = masks.nearest(subject)
    ratio = disp / np.maximum(disp[iy, ix], np.float32(1e-9))
    level = candidates & (ratio < ATTACHED) & (ratio > 1 / ATTACHED)
    seeds = cv2.dilate(subject.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    n, lab = cv2.connectedComponents(level.astype(np.uint8), connectivity=8)
    touching = np.zeros(n, bool)
    touching[np.unique(lab[seeds & level])] = True
    touching[0] = False
    return touching[lab]


def behind_subject(depth: np.ndarray, subject: np.ndarray, keep: np.ndarray | None = None,
                   relief: float = RELIEF, gap: float = BEHIND_GAP) -> np.ndarray:
    """Push what stands above the subject's lowest row, outside the subject, behind the
    subject's far side, and flatten its relief towards the camera by ``relief`` (1: as it
    was). ``subject``: its large parts only (``masks.large_parts``: flecks the net's mask
    took off a shelf, left standing in front of a flattened background, would float alone).
    ``keep``: pixels left as they are (the sky, already farthest)."""
    h, w = depth.shape
    if subject.mean() < MIN_SUBJECT_SHARE:
        return depth
    disp = masks.disparity(depth)
    rows = np.nonzero(subject)[0]
    foot = np.percentile(rows, 98)            # the lowest row the subject stands on
    behind = (np.arange(h)[:, None] < foot) & ~subject
    if keep is not None:
        behind &= ~keep
    behind &= ~_attached(disp, subject, behind)
    if behind.mean() < MIN_BACKGROUND_SHARE:
        return depth
    out = disp.copy()
    if relief < 1.0:
        # Where the plane runs out past the farthest disparity seen (a corner), no farther than that.
        plane = np.maximum(_plane(disp, behind), disp[behind].min())
        out = np.where(disp > plane, plane + relief * (disp - plane), out)
    ceiling = np.percentile(disp[subject], SUBJECT_FAR_PCT) / gap
    out = np.minimum(out, ceiling)
    # Full strength above the foot, fading to none at it: the ground runs on under the
    # subject's foot, and a hard change there would cut it across the frame.
    fade = np.clip((foot - np.arange(h, dtype=np.float32)) / max(1.0, FOOT_BAND * h), 0, 1)[:, None]
    out = np.where(behind, disp + fade * (out - disp), disp)
    return (1.0 / np.maximum(out, np.float32(1e-6))).astype(np.float32)


def straighten(depth: np.ndarray, subject: np.ndarray) -> np.ndarray:
    """Long, thin parts of the subject (a rocket, a mast, a trunk: at least ``ELONGATED``
    times longer than wide, filling half their rectangle) onto a plane of their own: a small
    model's depth bends them, and a bent one sways like a banana when the camera moves."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(subject.astype(np.uint8), connectivity=8)
    disp = None
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        # The rotated rectangle of the part's outline (of all its pixels: ten times slower).
        outline, _ = cv2.findContours((lab[y:y + bh, x:x + bw] == i).astype(np.uint8), cv2.RETR_EXTERNAL,
                                      cv2.CHAIN_APPROX_SIMPLE)
        _, (a, b), angle = cv2.minAreaRect(np.concatenate(outline))
        if max(a, b) < ELONGATED * max(1.0, min(a, b)) or area < 0.5 * a * b:
            continue
        part = lab == i
        disp = masks.disparity(depth) if disp is None else disp
        disp[part] = np.maximum(_plane(disp, part, upright=_upright(a, b, angle))[part], disp[part].min())
    return depth if disp is None else (1.0 / disp).astype(np.float32)


def _upright(a: float, b: float, angle: float) -> bool:
    """Whether a rotated rectangle (``cv2.minAreaRect``'s sides and angle) stands within
    ``UPRIGHT_DEG`` of the vertical."""
    long_side_deg = angle if a >= b else angle + 90.0     # side a lies at ``angle`` from the x axis
    return abs(abs(long_side_deg % 180.0) - 90.0) <= UPRIGHT_DEG


def against_sky(depth: np.ndarray, sky: np.ndarray, subject: np.ndarray | None = None) -> np.ndarray:
    """Tall, thin structures standing against the sky (a mast, a lattice tower, a lamp
    post), above the horizon and outside the subject, onto a vertical plane each: a small
    model's depth bends them along their height (the sky's depth bleeds into them), and
    they sway when the camera moves."""
    h, w = depth.shape
    if sky.mean() < 0.05:
        return depth
    cols = sky.any(axis=0)
    lowest = h - 1 - np.argmax(sky[::-1], axis=0)            # each column's lowest sky row
    horizon = int(np.median(lowest[cols]))
    cand = ~sky
    if subject is not None:
        cand &= ~subject
    cand[horizon:] = False
    n, lab, stats, _ = cv2.connectedComponentsWithStats(cand.astype(np.uint8), connectivity=8)
    # What touches the subject is a part of it the mask missed (a rocket's tip), not a
    # structure of its own.
    touching = np.zeros(n, bool)
    if subject is not None and subject.any():
        touching[np.unique(lab[cv2.dilate(subject.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0])] = True
    disp = None
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        # Standing: reaches the horizon, several times taller than wide, upright.
        if touching[i] or y + bh < horizon - 1 or bh < ELONGATED * max(1, bw) or area < MIN_PART_SHARE * h * w:
            continue
        part = lab == i
        disp = masks.disparity(depth) if disp is None else disp
        plane = np.maximum(_plane(disp, part, upright=True)[part], disp[part].min())
        # Fading out towards the horizon, where the structure runs on down to its foot.
        fade = np.clip((horizon - np.nonzero(part)[0]) / max(1.0, FOOT_BAND * h), 0, 1)
        disp[part] += fade * (plane - disp[part])
    return depth if disp is None else (1.0 / disp).astype(np.float32)


def ground_mask(normals: np.ndarray, subject: np.ndarray | None = None) -> np.ndarray:
    """The ground: facing up by the model's ``normals``, in the lower two thirds, reached
    from the bottom edge, outside the subject."""
    h, w = normals.shape[:2]
    ground = np.abs(normals[..., 1]) > GROUND_UP
    if subject is not None:
        ground &= ~subject
    ground[: h // 3] = False
    n, lab = cv2.connectedComponents(ground.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(lab[-max(1, h // 100):])] = True
    keep[0] = False
    return keep[lab]


def ground_plane(depth: np.ndarray, ground: np.ndarray) -> np.ndarray:
    """The ground flattened onto a plane fitted to it where it bulges towards the camera:
    a pier's boards, a floor, a road are one plane."""
    if ground.mean() < MIN_BACKGROUND_SHARE:
        return depth
    disp = masks.disparity(depth)
    plane = np.maximum(_plane(disp, ground), disp[ground].min())
    out = np.where(ground & (disp > plane), plane, disp)
    return (1.0 / out).astype(np.float32)


def apply(depth: np.ndarray, rgb: np.ndarray, subject: np.ndarray | None, portrait: bool = False,
          normals: np.ndarray | None = None) -> np.ndarray:
    """The priors in order: the sky farthest, then (given a ``subject``) what stands against
    the sky and what stands behind the subject, then (given the model's ``normals``) the
    ground. The pipeline hands the subject and the normals only for a model whose layout
    is guesswork."""
    sky = sky_mask(rgb, strict=portrait)
    depth = sky_far(depth, sky, rgb, subject)
    if subject is not None:
        depth = against_sky(depth, sky, subject)
    # The ground runs under the subject's foot, or (the foot below the frame) in front of it:
    # it is not pushed behind the subject, only made one plane.
    ground = ground_mask(normals, subject) if normals is not None else np.zeros(depth.shape, bool)
    if subject is not None and subject.any():
        parts = masks.large_parts(subject, MIN_PART_SHARE)
        depth = behind_subject(straighten(depth, parts), parts, keep=sky | ground)
    return ground_plane(depth, ground) if ground.any() else depth
