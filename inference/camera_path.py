"""Camera-path math: per-frame camera poses and field of view for each preset (pure NumPy).

Poses are camera-to-world 4x4 matrices in the source camera's frame (origin, looking
down -Z, +Y up), the same convention as Blender's camera objects. Distances scale with
the scene: the subject's depth sets how far the camera travels, so a preset looks the
same on a macro shot and on a landscape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PRESETS = ("dolly-zoom", "zoom-in", "circle", "swing", "ken-burns", "vertical", "orbit", "sway", "auto")
EASINGS = ("linear", "ease-in-out", "ease-in", "ease-out")
# once: play the move one way; loop: there and back with a smooth turn-around, so the
# clip wraps with no jolt; pingpong: there and back with the chosen easing.
# (Periodic presets always close their loop, whatever the mode.)
LOOPS = ("once", "loop", "pingpong")
# Presets whose motion is periodic: they start and end on the same pose.
LOOPING = {"circle", "swing", "vertical", "orbit", "sway", "auto"}
# Presets that move the camera sideways (``direction_deg`` turns their move in the image plane).
LATERAL = {"circle", "swing", "vertical", "orbit", "sway", "ken-burns", "auto"}

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
    direction_deg: float = 0.0   # turns the move in the image plane (0: along the photo's x axis)


@dataclass
class CameraPath:
    matrices: np.ndarray     # (F, 4, 4) camera-to-world
    hfov_deg: np.ndarray     # (F,)
    targets: np.ndarray      # (F, 3) the point each frame looks at (fixed on the subject when it turns)
    max_travel: float        # largest distance of the camera from the source pose

    @property
    def target_is_fixed(self) -> bool:
        return bool(np.ptp(self.targets, axis=0).max() < 1e-9)


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


def rigid_inverse(m: np.ndarray) -> np.ndarray:
    """World-to-camera from camera-to-world (F, 4, 4) rigid poses (no general inverse:
    it is exact here, and np.linalg.inv on small stacks is slow under a busy BLAS)."""
    inv = np.zeros_like(m)
    rt = np.transpose(m[:, :3, :3], (0, 2, 1))
    inv[:, :3, :3] = rt
    inv[:, :3, 3] = -np.einsum("fij,fj->fi", rt, m[:, :3, 3])
    inv[:, 3, 3] = 1.0
    return inv


def _translate(eye: np.ndarray) -> np.ndarray:
    m = np.tile(np.eye(4), (len(eye), 1, 1))
    m[:, :3, 3] = eye
    return m


def make_path(params: PathParams, extent: SceneExtent) -> CameraPath:
    preset = params.preset
    if preset not in PRESETS:
        raise ValueError(f"unknown camera path {preset!r}; choose one of {', '.join(PRESETS)}")
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
    elif params.loop == "loop":
        # 0 -> 1 -> 0 as a cosine: velocity is continuous across the wrap too.
        t = 0.5 - 0.5 * np.cos(2 * np.pi * phase)
    else:
        t = ease(np.linspace(0.0, 1.0, n), params.easing)
    hfov = np.full(n, float(params.hfov_deg))
    zero = np.zeros(n)

    s = 2 * np.pi * phase
    turns = True   # look at the subject (else keep the source camera's orientation)
    if preset == "circle":
        eye = np.stack([travel * np.cos(s), 0.6 * travel * np.sin(s), zero], -1)
    elif preset == "auto":
        # An ellipse whose long axis the automatic search turns (``direction_deg``) to
        # where the photo reveals least (disocclusion.choose_auto).
        eye = np.stack([travel * np.cos(s), 0.35 * travel * np.sin(s), zero], -1)
    elif preset == "swing":
        eye = np.stack([travel * np.sin(s), zero, zero], -1)
    elif preset == "vertical":
        eye = np.stack([zero, travel * 0.7 * np.sin(s), zero], -1)
    elif preset == "orbit":
        ang = math.atan2(1.5 * travel, zs) * np.sin(s)
        eye = np.stack([zs * np.sin(ang), zero, -zs + zs * np.cos(ang)], -1)
    elif preset == "sway":
        # Incommensurate sines: hand-held wobble that still closes the loop.
        eye = np.stack([0.35 * travel * (np.sin(s) + 0.3 * np.sin(3 * s + 1.0)),
                        0.25 * travel * (np.sin(2 * s + 0.5) + 0.4 * np.sin(5 * s)), zero], -1)
    elif preset == "zoom-in":
        eye, turns = np.stack([zero, zero, -3.0 * travel * t], -1), False
    elif preset == "ken-burns":
        eye, turns = np.stack([travel * (2 * t - 1), 0.3 * travel * (2 * t - 1), -1.5 * travel * t], -1), False
    elif preset == "dolly-zoom":
        # Dolly back while zooming in so the subject keeps its size and the background
        # swells: distance * tan(hfov / 2) stays constant at the subject.
        back = 4.0 * travel * t
        eye, turns = np.stack([zero, zero, back], -1), False
        tan0 = math.tan(math.radians(params.hfov_deg) / 2)
        hfov = np.degrees(2 * np.arctan(tan0 * zs / (zs + back)))
    else:  # pragma: no cover - PRESETS is exhaustive
        raise AssertionError(preset)
    if preset in LATERAL and params.direction_deg:
        a = math.radians(params.direction_deg)
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        eye = eye.copy()
        eye[:, :2] = eye[:, :2] @ rot.T
    if turns:
        targets = np.tile(target, (n, 1))
        m = look_at(eye, target)
    else:
        targets = eye + target
        m = _translate(eye)

    if params.crop_to_photo:
        # tan(new / 2) = scale * tan(old / 2), exactly, on every frame (dolly-zoom's FOV changes).
        scale = _crop_scale(m, hfov, params, extent)
        hfov = np.degrees(2 * np.arctan(scale * np.tan(np.radians(hfov) / 2)))
    max_travel = float(np.linalg.norm(m[:, :3, 3], axis=1).max())
    return CameraPath(m.astype(np.float64), hfov.astype(np.float64), targets, max_travel)


def aspect_fit(aspect: float, photo_aspect: float | None) -> float:
    """The zoom (on tan of the half FOV, <= 1) that fills a frame of ``aspect`` with the photo:
    a frame narrower than the photo (9:16 of a 16:9 photo) shows its middle, full height."""
    return min(1.0, aspect / (photo_aspect or aspect))


def _crop_scale(m: np.ndarray, hfov: np.ndarray, params: PathParams, extent: SceneExtent) -> float:
    """Zoom factor (<= 1, on tan of the half FOV) keeping every frame inside the photo's frustum.

    The photo covers its own frustum only; frames that look past it would show empty
    space. First fit the frame's aspect into the photo's; then project the photo's frustum
    edges at the nearest and farthest depths into each frame and narrow the view until it
    fits. The motion's share of the zoom stops at 0.7 (more would lose most of the photo).
    """
    tan0 = math.tan(math.radians(params.hfov_deg) / 2)
    asp = params.aspect
    photo_asp = params.photo_aspect or asp
    fit = aspect_fit(asp, photo_asp)
    worst = 1.0
    inv = rigid_inverse(m)                                              # (F, 4, 4)
    tanf = fit * np.tan(np.radians(hfov) / 2)                           # (F,) the fitted frames
    for z in (extent.near_depth, extent.subject_depth, extent.far_depth):
        # corners of the photo at depth z, plus edge midpoints
        xs = np.array([-1, 0, 1, 1, 1, 0, -1, -1]) * tan0 * z
        ys = np.array([1, 1, 1, 0, -1, -1, -1, 0]) * tan0 / photo_asp * z
        pts = np.stack([xs, ys, np.full(8, -z), np.ones(8)], -1)      # (8, 4)
        pc = np.einsum("fij,kj->fki", inv, pts)                          # (F, 8, 4)
        depth = np.maximum(-pc[..., 2], 1e-9)
        nx = pc[..., 0] / depth                                          # tan units
        ny = pc[..., 1] / depth
        # Photo edge positions in each frame, as fractions of the frame's half-size.
        right = nx[:, 2:5].min(1) / tanf
        left = -nx[:, [0, 6, 7]].max(1) / tanf
        top = ny[:, 0:3].min(1) / (tanf / asp)
        bottom = -ny[:, 4:7].max(1) / (tanf / asp)
        worst = min(worst, float(np.min([right, left, top, bottom])))
    return fit * max(0.7, min(1.0, worst))


def parallax_band_px(width: int, hfov_deg: float, extent: SceneExtent, max_travel: float) -> float:
    """How many pixels (at ``width``) the camera can look behind an occlusion edge.

    A camera moving by ``t`` sideways shifts a point at depth z by f*t/z pixels; what it
    can reveal behind an edge is the difference between the near and far sides' shifts.
    """
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    return f * max_travel * max(0.0, 1.0 / extent.near_depth - 1.0 / extent.far_depth)


# Look Around: the mouse at the edge of the view moves the camera this far (x amplitude).
LOOK_AROUND_TRAVEL = 1.5 * BASE_TRAVEL


def tilt_offset(nx: float, ny: float, extent: SceneExtent, amplitude: float = 1.0) -> np.ndarray:
    """Camera position for a "tilted phone": ``nx``, ``ny`` in [-1, 1] (right, up) move the
    camera sideways in the photo's plane while it keeps looking at the subject."""
    t = LOOK_AROUND_TRAVEL * max(amplitude, 0.1) * extent.subject_depth
    nx, ny = float(np.clip(nx, -1, 1)), float(np.clip(ny, -1, 1))
    return np.array([nx * t, ny * t, 0.0])
