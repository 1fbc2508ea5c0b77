"""Camera-path math: per-frame camera poses and field of view for each preset (pure NumPy).

Poses are camera-to-world 4x4 matrices in the source camera's frame (origin, looking
down -Z, +Y up), the same convention as Blender's camera objects. Distances scale with
the scene: the subject's depth sets how far the camera travels, so a preset looks the
same on a macro shot and on a landscape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

PRESETS = ("dolly-zoom", "zoom-in", "circle", "swing", "ken-burns", "vertical", "orbit", "sway", "auto")
EASINGS = ("linear", "ease-in-out", "ease-in", "ease-out")
# once: play the move one way; pingpong: there and back, so the clip loops seamlessly.
# (Periodic presets always close their loop.)
LOOPS = ("once", "pingpong")
# Presets whose motion is periodic: they start and end on the same pose.
LOOPING = {"circle", "swing", "vertical", "orbit", "sway"}

# Camera travel at amplitude 1, as a fraction of the subject's distance. About 4 %
# gives a clear, comfortable parallax without revealing much the photo never saw.
BASE_TRAVEL = 0.04


@dataclass
class SceneExtent:
    subject_depth: float     # depth the camera keeps looking at
    near_depth: float        # nearest depth that matters (a low percentile)
    far_depth: float         # farthest depth that matters (a high percentile)


@dataclass
class PathParams:
    preset: str = "circle"
    frames: int = 96
    amplitude: float = 1.0   # multiplies the preset's scene-scaled travel
    easing: str = "ease-in-out"
    hfov_deg: float = 65.0
    aspect: float = 1.0      # width / height of the render
    photo_aspect: float | None = None   # width / height of the photo (default: the render's)
    crop_to_photo: bool = True   # narrow the FOV just enough that no frame shows past the photo's edges
    loop: str = "once"
    extra: dict = field(default_factory=dict)


@dataclass
class CameraPath:
    matrices: np.ndarray     # (F, 4, 4) camera-to-world
    hfov_deg: np.ndarray     # (F,)
    target: np.ndarray       # (3,) the look-at point (the subject)
    max_travel: float        # largest distance of the camera from the source pose


def ease(t: np.ndarray, easing: str) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    if easing == "linear":
        return t
    if easing == "ease-in":
        return t * t
    if easing == "ease-out":
        return 1 - (1 - t) ** 2
    if easing == "ease-in-out":
        return 0.5 - 0.5 * np.cos(np.pi * t)
    raise ValueError(f"unknown easing {easing!r}; choose one of {', '.join(EASINGS)}")


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """Camera-to-world matrices (F, 4, 4) for eyes (F, 3) looking at target (3,) or (F, 3)."""
    eye = np.atleast_2d(eye).astype(np.float64)
    fwd = np.broadcast_to(target, eye.shape) - eye
    fwd /= np.linalg.norm(fwd, axis=1, keepdims=True)
    up = np.broadcast_to(np.asarray(up, np.float64), eye.shape)
    x = np.cross(fwd, up)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.cross(x, fwd)
    m = np.tile(np.eye(4), (len(eye), 1, 1))
    m[:, :3, 0], m[:, :3, 1], m[:, :3, 2], m[:, :3, 3] = x, y, -fwd, eye
    return m


def _translate(eye: np.ndarray) -> np.ndarray:
    m = np.tile(np.eye(4), (len(eye), 1, 1))
    m[:, :3, 3] = eye
    return m


def make_path(params: PathParams, extent: SceneExtent) -> CameraPath:
    preset = params.preset
    if preset not in PRESETS:
        raise ValueError(f"unknown camera path {preset!r}; choose one of {', '.join(PRESETS)}")
    if preset == "auto":
        # Until the disocclusion-aware search exists: the preset that reads best on most
        # photos, a slow circle around the subject.
        preset = "circle"
    n = max(2, int(params.frames))
    zs = max(extent.subject_depth, 1e-6)
    travel = BASE_TRAVEL * params.amplitude * zs
    target = np.array([0.0, 0.0, -zs])
    # Loops end one step before they start again, so that playback wraps seamlessly.
    phase = np.arange(n) / n
    if params.loop not in LOOPS:
        raise ValueError(f"unknown loop mode {params.loop!r}; choose one of {', '.join(LOOPS)}")
    if params.loop == "pingpong":
        # 0 -> 1 -> 0 over the clip; frame n would be frame 0 again.
        t = ease(1.0 - np.abs(1.0 - 2.0 * np.arange(n) / n), params.easing)
    else:
        t = ease(np.linspace(0.0, 1.0, n), params.easing)
    hfov = np.full(n, float(params.hfov_deg))
    zero = np.zeros(n)

    if preset == "circle":
        s = 2 * np.pi * phase
        eye = np.stack([travel * np.cos(s), 0.6 * travel * np.sin(s), zero], -1)
        m = look_at(eye, target)
    elif preset == "swing":
        eye = np.stack([travel * np.sin(2 * np.pi * phase), zero, zero], -1)
        m = look_at(eye, target)
    elif preset == "vertical":
        eye = np.stack([zero, travel * 0.7 * np.sin(2 * np.pi * phase), zero], -1)
        m = look_at(eye, target)
    elif preset == "orbit":
        ang = math.atan2(1.5 * travel, zs) * np.sin(2 * np.pi * phase)
        eye = np.stack([zs * np.sin(ang), zero, -zs + zs * np.cos(ang)], -1)
        m = look_at(eye, target)
    elif preset == "sway":
        # Incommensurate sines: hand-held wobble that still closes the loop.
        s = 2 * np.pi * phase
        eye = np.stack([0.35 * travel * (np.sin(s) + 0.3 * np.sin(3 * s + 1.0)),
                        0.25 * travel * (np.sin(2 * s + 0.5) + 0.4 * np.sin(5 * s)), zero], -1)
        m = look_at(eye, target)
    elif preset == "zoom-in":
        eye = np.stack([zero, zero, -3.0 * travel * t], -1)
        m = _translate(eye)
    elif preset == "ken-burns":
        eye = np.stack([travel * (2 * t - 1), 0.3 * travel * (2 * t - 1), -1.5 * travel * t], -1)
        m = _translate(eye)
    elif preset == "dolly-zoom":
        # Dolly back while zooming in so the subject keeps its size and the background
        # swells: distance * tan(hfov / 2) stays constant at the subject.
        back = 4.0 * travel * t
        eye = np.stack([zero, zero, back], -1)
        m = _translate(eye)
        tan0 = math.tan(math.radians(params.hfov_deg) / 2)
        hfov = np.degrees(2 * np.arctan(tan0 * zs / (zs + back)))
    else:  # pragma: no cover - PRESETS is exhaustive
        raise AssertionError(preset)

    if params.crop_to_photo:
        hfov = hfov * _crop_factor(m, hfov, params, extent)
    max_travel = float(np.linalg.norm(m[:, :3, 3], axis=1).max())
    return CameraPath(m.astype(np.float64), hfov.astype(np.float64), target, max_travel)


def _crop_factor(m: np.ndarray, hfov: np.ndarray, params: PathParams, extent: SceneExtent) -> float:
    """Zoom factor (<= 1, on the FOV angle) keeping every frame inside the photo's frustum.

    The photo covers its own frustum only; frames that look past it would show empty
    space. Project the photo's frustum edges at the nearest and farthest depths into each
    frame and narrow the view until it fits.
    """
    tan0 = math.tan(math.radians(params.hfov_deg) / 2)
    asp = params.aspect
    photo_asp = params.photo_aspect or asp
    worst = 1.0
    for z in (extent.near_depth, extent.subject_depth, extent.far_depth):
        # corners of the photo at depth z, plus edge midpoints
        xs = np.array([-1, 0, 1, 1, 1, 0, -1, -1]) * tan0 * z
        ys = np.array([1, 1, 1, 0, -1, -1, -1, 0]) * tan0 / photo_asp * z
        pts = np.stack([xs, ys, np.full(8, -z), np.ones(8)], -1)      # (8, 4)
        inv = np.linalg.inv(m)                                          # (F, 4, 4)
        pc = np.einsum("fij,kj->fki", inv, pts)                          # (F, 8, 4)
        depth = np.maximum(-pc[..., 2], 1e-9)
        nx = pc[..., 0] / depth                                          # tan units
        ny = pc[..., 1] / depth
        tanf = np.tan(np.radians(hfov) / 2)[:, None]
        # Photo edge positions in each frame, as fractions of the frame's half-size.
        right = nx[:, 2:5].min(1) / tanf[:, 0]
        left = -nx[:, [0, 6, 7]].max(1) / tanf[:, 0]
        top = ny[:, 0:3].min(1) / (tanf[:, 0] / asp)
        bottom = -ny[:, 4:7].max(1) / (tanf[:, 0] / asp)
        worst = min(worst, float(np.min([right, left, top, bottom])))
    scale = max(0.7, min(1.0, worst))
    # Scale the angle such that tan(new/2) = scale * tan(old/2), approximated for the
    # small corrections involved by the ratio of angles at the source FOV.
    return float(math.degrees(2 * math.atan(scale * tan0)) / params.hfov_deg)


def parallax_band_px(width: int, hfov_deg: float, extent: SceneExtent, max_travel: float) -> float:
    """How many pixels (at ``width``) the camera can look behind an occlusion edge.

    A camera moving by ``t`` sideways shifts a point at depth z by f*t/z pixels; what it
    can reveal behind an edge is the difference between the near and far sides' shifts.
    """
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    return f * max_travel * max(0.0, 1.0 / extent.near_depth - 1.0 / extent.far_depth)
