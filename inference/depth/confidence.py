"""How sure the depth is, per pixel: 1 = sure, 0 = a guess.

A monocular depth model gives no error bars, but the pipeline already holds several
answers to the same question, and where they disagree the depth is unsure:

* the photo's and the mirrored photo's passes of the bundled net (``flip_gap``): a
  scene's depth does not change in a mirror, so whatever does is the network guessing;
* the tiles' and the whole photo's runs when tiling is on (``tile_gap``, at the whole
  photo's resolution: the layout, not the detail only tiles can see);
* a second model, when one is given (its disparity fitted to this one's first, since
  relative models agree only up to scale and shift);
* the photo itself: a depth step (an occlusion cut the layering would make) where the
  photo shows no colour edge is more likely a smeared ramp split in the wrong place, or
  a texture read as shape, than an object's outline.

Each cue gives a factor in (0, 1]; the confidence is their product. The gaps are
measured in the depth range's units (the 2-98 % spread of the disparity), so a gap of
``GAP_HALF`` of the scene's depth range halves the confidence.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..layers import occlusion_edges
from ..masks import cut_sides, disparity
from ..photo import resize

# A disagreement of this share of the disparity range halves the confidence (the bundled
# net's two passes differ by about 5 % of the range at the median pixel of a real photo,
# by 15-40 % at the 90th percentile).
GAP_HALF = 0.15
# Share of the pixels a second model's fit keeps (the rest: where the two disagree).
TRIM = 0.8
# Colour change per pixel (0-1 units, the Sobel response over 4) below which a photo shows
# no edge, and above which it clearly does.
COLOUR_EDGE_LO, COLOUR_EDGE_HI = 0.02, 0.08
# How far (pixels) a depth step may sit from the photo's edge and still be on it: a photo's
# edge is blurred over a pixel or two, and the depth's is placed to about as much.
EDGE_REACH = 2
# Width (pixels) of the unsure band round a step with no colour edge.
STEP_BAND = 2


def relative_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| over the 2-98 % spread of their mean: two disparity (inverse depth) maps of
    the same thing in the same units, e.g. a network's photo and mirrored passes."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    lo, hi = np.percentile(0.5 * (a + b), [2, 98])
    return (np.abs(a - b) / max(float(hi - lo), 1e-6)).astype(np.float32)


def _affine_fit(src: np.ndarray, dst: np.ndarray, keep: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising sum (a src + b - dst)^2 over ``keep``."""
    s, d = src[keep], dst[keep]
    sm, dm = float(s.mean()), float(d.mean())
    var = float(((s - sm) ** 2).mean())
    a = float(((s - sm) * (d - dm)).mean()) / var if var > 1e-12 * max(sm * sm, 1e-12) else 0.0
    return a, dm - a * sm


def aligned_gap(depth: np.ndarray, other_depth: np.ndarray) -> np.ndarray:
    """relative_gap of two z-depth maps (any resolutions; ``depth``'s comes out) after
    fitting the other's disparity to this one's (scale and shift; refitted on the best
    TRIM of the pixels, so that where the two disagree does not bend the fit)."""
    d = disparity(depth)
    o = disparity(resize(np.asarray(other_depth, np.float32), (d.shape[1], d.shape[0])))
    keep = np.ones(d.shape, bool)
    for _ in range(3):
        a, b = _affine_fit(o, d, keep)
        res = np.abs(a * o + b - d)
        keep = res <= np.percentile(res, 100 * TRIM)
    return relative_gap(d, a * o + b)


def from_gap(gap: np.ndarray) -> np.ndarray:
    """Confidence factor of a relative gap: 1 at 0, 0.5 at GAP_HALF, falling as 1/gap^2."""
    return (1.0 / (1.0 + (np.asarray(gap, np.float32) / np.float32(GAP_HALF)) ** 2)).astype(np.float32)


def colour_edges(rgb: np.ndarray) -> np.ndarray:
    """Colour change per pixel at each pixel's strongest nearby edge (within EDGE_REACH)."""
    img = np.ascontiguousarray(rgb[..., :3], np.float32)
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)
    g = np.sqrt((gx * gx + gy * gy).sum(-1)) * np.float32(0.25)
    k = np.ones((2 * EDGE_REACH + 1, 2 * EDGE_REACH + 1), np.uint8)
    return cv2.dilate(g, k)


def edge_agreement(depth: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """1, less where the depth steps (an occlusion cut, layers.occlusion_edges) with no
    colour edge in the photo beside it: there, 0 to 1 by how faint the photo's edge is."""
    cut_h, cut_v = occlusion_edges(depth)
    out = np.ones(depth.shape, np.float32)
    if not (cut_h.any() or cut_v.any()):
        return out
    on_cut = cut_sides(cut_h, cut_v)
    if rgb.shape[:2] != depth.shape:
        rgb = resize(np.asarray(rgb, np.float32), (depth.shape[1], depth.shape[0]))
    edge = colour_edges(rgb)
    t = np.clip((edge - COLOUR_EDGE_LO) / (COLOUR_EDGE_HI - COLOUR_EDGE_LO), 0.0, 1.0)
    unsure = np.where(on_cut, 1.0 - t * t * (3 - 2 * t), 0.0).astype(np.float32)
    # The band round the step, both sides: the cut would tear there.
    k = np.ones((2 * STEP_BAND + 1, 2 * STEP_BAND + 1), np.uint8)
    unsure = cv2.dilate(unsure, k)
    return (1.0 - unsure).astype(np.float32)


def depth_confidence(depth: np.ndarray, rgb: np.ndarray, flip_gap: np.ndarray | None = None,
                     tile_gap: np.ndarray | None = None, other_depth: np.ndarray | None = None) -> np.ndarray:
    """float32 confidence in [0, 1] at ``depth``'s resolution (1 = sure).

    ``depth``: z-depth; ``rgb``: the photo (any resolution, float in [0, 1]); ``flip_gap``,
    ``tile_gap``: relative gaps (any resolution) from the model's extras; ``other_depth``:
    a second model's z-depth (any resolution)."""
    h, w = depth.shape
    conf = edge_agreement(depth, rgb)
    for gap in (flip_gap, tile_gap):
        if gap is not None:
            conf *= from_gap(resize(np.asarray(gap, np.float32), (w, h)))
    if other_depth is not None:
        conf *= from_gap(aligned_gap(depth, other_depth))
    return np.clip(conf, 0.0, 1.0).astype(np.float32)


def to_image(conf: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """8-bit image of a confidence map (white = sure), resized to ``size`` (w, h)."""
    c = np.asarray(conf, np.float32)
    if size is not None and (c.shape[1], c.shape[0]) != tuple(size):
        c = resize(c, tuple(size))
    return np.clip(np.round(c * 255), 0, 255).astype(np.uint8)


__all__ = ["depth_confidence", "relative_gap", "aligned_gap", "from_gap", "edge_agreement", "colour_edges",
           "to_image", "GAP_HALF"]
