"""What the photo tells of its light (pure NumPy and OpenCV, no bpy): the colour of its far
region, the fog's default colour; and where it shows a light source, the light shafts'
origin. The pipeline computes both off the main thread and carries them in its Result."""
from __future__ import annotations

import math

import cv2
import numpy as np

Point = tuple[float, float, float]


def _at_depth_size(texture: np.ndarray, depth: np.ndarray) -> np.ndarray:
    h, w = depth.shape
    return cv2.resize(texture, (w, h), interpolation=cv2.INTER_AREA)


def photo_far_colour(texture: np.ndarray, depth: np.ndarray) -> tuple[float, float, float]:
    """Mean colour of the farthest fifth of the photo (sRGB-encoded -> linear)."""
    small = _at_depth_size(texture, depth)
    far = depth >= np.percentile(depth, 80)
    srgb = small[far].mean(0) if far.any() else small.reshape(-1, 3).mean(0)
    lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    return tuple(float(c) for c in lin)


def find_light_source(texture: np.ndarray, depth: np.ndarray, hfov_deg: float) -> Point | None:
    """Where the photo shows a light (the sun, a window, a lamp): the largest near-white
    blob in the far half of the scene, as a camera-frame point (x, y, -z), or None."""
    h, w = depth.shape
    small = _at_depth_size(texture, depth)
    lum = small @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    bright = (lum >= max(0.92, float(np.percentile(lum, 99.5)))) & (depth >= np.median(depth))
    n, lab, stats, cent = cv2.connectedComponentsWithStats(bright.astype(np.uint8), connectivity=8)
    if n <= 1:
        return None
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if stats[i, cv2.CC_STAT_AREA] < 0.0005 * h * w:
        return None
    u, v = cent[i]
    z = float(np.median(depth[lab == i]))
    f = 0.5 * w / math.tan(math.radians(hfov_deg) / 2)
    return ((u + 0.5 - w / 2) / f * z, -(v + 0.5 - h / 2) / f * z, -z)
