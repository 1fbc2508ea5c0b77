"""Binary masks grown or shrunk by whole pixels (4-connected steps, as SciPy's default
binary morphology), with OpenCV: SciPy's costs about 10x more at 1 MP."""
from __future__ import annotations

import cv2
import numpy as np

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def grow(mask: np.ndarray, px: int = 1) -> np.ndarray:
    """``mask`` dilated by ``px`` steps (nothing grows in from outside the image)."""
    if px <= 0:
        return mask.astype(bool)
    return cv2.dilate(mask.astype(np.uint8), _CROSS, iterations=px,
                      borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0


def shrink(mask: np.ndarray, px: int = 1, outside: bool = False) -> np.ndarray:
    """``mask`` eroded by ``px`` steps; ``outside``: whether beyond the image counts as set
    (True: the border does not eat into the mask)."""
    if px <= 0:
        return mask.astype(bool)
    return cv2.erode(mask.astype(np.uint8), _CROSS, iterations=px,
                     borderType=cv2.BORDER_CONSTANT, borderValue=1 if outside else 0) > 0


def nearest(region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the pixel of ``region`` nearest each pixel (OpenCV's 5x5 distance,
    within a pixel or so of the true one nearby): SciPy's exact feature transform costs
    about 3x more at 1 MP. ``region`` must not be empty."""
    zero = region.astype(bool)
    _, lab = cv2.distanceTransformWithLabels((~zero).astype(np.uint8), cv2.DIST_L2, 5,
                                             labelType=cv2.DIST_LABEL_PIXEL)
    # Labels number the region's pixels in raster order, from 1.
    ys, xs = np.nonzero(zero)
    return ys[lab - 1], xs[lab - 1]


def cut_sides(cut_h: np.ndarray, cut_v: np.ndarray) -> np.ndarray:
    """Pixels on either side of a cut (``cut_h`` (H, W-1) between columns, ``cut_v``
    (H-1, W) between rows, as layers.occlusion_edges gives them)."""
    out = np.zeros((cut_v.shape[0] + 1, cut_h.shape[1] + 1), bool)
    out[:, :-1] |= cut_h
    out[:, 1:] |= cut_h
    out[:-1, :] |= cut_v
    out[1:, :] |= cut_v
    return out


def large_parts(mask: np.ndarray, share: float) -> np.ndarray:
    """The 8-connected parts of ``mask`` covering at least ``share`` of the frame."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= share * mask.size
    keep[0] = False
    return keep[lab]


def disparity(depth: np.ndarray) -> np.ndarray:
    """1 / depth in float32 (the tests on it are relative, and it halves the memory traffic)."""
    return np.float32(1.0) / np.maximum(np.asarray(depth, np.float32), np.float32(1e-9))
