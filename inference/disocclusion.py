"""How much of the frame a camera path reveals behind occlusion edges, without rendering.

Each occlusion edge of the photo layer is a pair of 3D points on one pixel ray: the near
side's surface and the far side's. From the source camera they coincide; from another
pose they separate, and where the near side slides away from the far side the gap shows
what the photo never saw (the inpainted background). Projecting the pairs into each
frame of a path gives the revealed area per frame, as a fraction of the frame: the number
the automatic path keeps under the user's threshold (as 3D Ken Burns picks its end crop).

What a gap shows is only as good as the edge it opens behind: behind a sure edge, the
inpainted background of a real outline; behind an unsure one (a depth step the model may
have put in the wrong place), the guess itself, stretched. The automatic path therefore
weighs each sample's gap by how unsure the depth is there (``UNSURE_WEIGHT``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import camera_path

# Enough edge samples for a stable estimate, few enough to store in the .blend and to
# search paths in milliseconds.
MAX_SAMPLES = 4000
FIELDS = 6  # u, v, z_near, z_far, nx, ny
# Edge samples the automatic path's search over directions looks at.
SEARCH_SAMPLES = 1000
# Frames of a path the estimate looks at (its extremes are among them for every preset).
SAMPLE_FRAMES = 24
# Behind a fully unsure edge a revealed pixel counts (1 + UNSURE_WEIGHT) times: the
# automatic path turns away from unsure edges and travels less towards them.
UNSURE_WEIGHT = 2.0


@dataclass
class EdgeSamples:
    uv: np.ndarray        # (N, 2) pixel-ray direction in tan units (x right, y up, at z = 1)
    z_near: np.ndarray    # (N,) depth of the near side
    z_far: np.ndarray     # (N,) depth of the far side
    normal: np.ndarray    # (N, 2) unit image-plane direction from the near side to the far side
    length: float         # edge length each sample stands for, in tan units
    confidence: np.ndarray | None = None   # (N,) depth confidence at the edge (1 = sure); None: all sure

    def to_list(self) -> list[float]:
        """Flat floats (for an ID property); ``from_list`` reads them back. The confidence
        is not in it (``confidence_list``): the list's layout is the one older scenes hold."""
        arr = np.column_stack([self.uv, self.z_near, self.z_far, self.normal]).astype(np.float32)
        return [float(self.length)] + arr.ravel().tolist()

    def confidence_list(self) -> list[float] | None:
        return None if self.confidence is None else np.asarray(self.confidence, np.float32).tolist()

    @classmethod
    def from_list(cls, values, confidence=None) -> EdgeSamples:
        values = np.asarray(values, np.float64)
        arr = values[1:].reshape(-1, FIELDS)
        conf = None
        if confidence is not None and len(confidence) == len(arr):   # else stale: ignored
            conf = np.clip(np.asarray(confidence, np.float64), 0.0, 1.0)
        return cls(arr[:, 0:2], arr[:, 2], arr[:, 3], arr[:, 4:6], float(values[0]), conf)

    def subset(self, n: int, seed: int = 0) -> EdgeSamples:
        """``n`` of the samples, each standing for a longer piece of edge (all when fewer)."""
        if len(self) <= n:
            return self
        pick = np.sort(np.random.default_rng(seed).choice(len(self), n, replace=False))
        conf = None if self.confidence is None else self.confidence[pick]
        return EdgeSamples(self.uv[pick], self.z_near[pick], self.z_far[pick], self.normal[pick],
                           self.length * len(self) / n, conf)

    def weights(self, unsure_weight: float) -> np.ndarray | None:
        """Per-sample factor on the revealed area: 1 behind a sure edge, 1 + ``unsure_weight``
        behind a fully unsure one; None when there is nothing to weigh."""
        if self.confidence is None or unsure_weight == 0:
            return None
        return 1.0 + unsure_weight * (1.0 - self.confidence)

    def __len__(self):
        return len(self.z_near)


def edge_samples(depth: np.ndarray, cut_h: np.ndarray, cut_v: np.ndarray, hfov_deg: float,
                 max_samples: int = MAX_SAMPLES, seed: int = 0, confidence: np.ndarray | None = None) -> EdgeSamples:
    """Occlusion-edge samples of a depth map and its mesh cuts (``layers.split_layers``).

    ``cut_h`` (H, W-1): cut between (y, x) and (y, x+1); ``cut_v`` (H-1, W): between (y, x)
    and (y+1, x). ``confidence`` (H, W), the depth's (1 = sure): an edge is as sure as
    the less sure of its two pixels.
    """
    h, w = depth.shape
    tan0 = math.tan(math.radians(hfov_deg) / 2)
    px = 2 * tan0 / w                                   # one pixel in tan units
    ys, xs = np.nonzero(cut_h)
    za, zb = depth[ys, xs], depth[ys, xs + 1]
    # Position on the boundary between the two pixels; normal +x when the left side is near.
    u_h = (xs + 1.0 - w / 2) * px
    v_h = (h / 2 - ys - 0.5) * px
    n_h = np.where(za < zb, 1.0, -1.0)
    ys2, xs2 = np.nonzero(cut_v)
    zc, zd = depth[ys2, xs2], depth[ys2 + 1, xs2]
    u_v = (xs2 + 0.5 - w / 2) * px
    v_v = (h / 2 - ys2 - 1.0) * px
    n_v = np.where(zc < zd, -1.0, 1.0)                  # image y runs down, tan y up
    uv = np.concatenate([np.stack([u_h, v_h], -1), np.stack([u_v, v_v], -1)])
    z_near = np.concatenate([np.minimum(za, zb), np.minimum(zc, zd)])
    z_far = np.concatenate([np.maximum(za, zb), np.maximum(zc, zd)])
    normal = np.concatenate([np.stack([n_h, np.zeros_like(n_h)], -1),
                             np.stack([np.zeros_like(n_v), n_v], -1)])
    conf = None
    if confidence is not None:
        conf = np.concatenate([np.minimum(confidence[ys, xs], confidence[ys, xs + 1]),
                               np.minimum(confidence[ys2, xs2], confidence[ys2 + 1, xs2])]).astype(np.float64)
    length = px
    n = len(z_near)
    if n > max_samples:
        pick = np.random.default_rng(seed).choice(n, max_samples, replace=False)
        uv, z_near, z_far, normal = uv[pick], z_near[pick], z_far[pick], normal[pick]
        conf = None if conf is None else conf[pick]
        length = px * n / max_samples
    return EdgeSamples(uv.reshape(-1, 2), z_near, z_far, normal.reshape(-1, 2), float(length), conf)


def _project(points: np.ndarray, world_to_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tan-unit image x, y and depth, each (F, N), of (N, 3) points in F cameras."""
    # One plane per coordinate: numpy's batched small matmuls and (F, N, 2) stacks are slower.
    rot, t = world_to_cam[:, :3, :3], world_to_cam[:, :3, 3]
    pts = points.T
    depth = -(rot[:, 2] @ pts + t[:, 2:3])
    inv = 1.0 / np.maximum(depth, 1e-9)
    return (rot[:, 0] @ pts + t[:, 0:1]) * inv, (rot[:, 1] @ pts + t[:, 1:2]) * inv, depth


def reveal_fractions(samples: EdgeSamples, path: camera_path.CameraPath, aspect: float,
                     frames: np.ndarray | None = None, unsure_weight: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of each frame that shows what the photo hid; returns (frame indices, fractions).
    With ``unsure_weight`` the gaps behind unsure edges count more (``EdgeSamples.weights``)."""
    n_frames = len(path.matrices)
    if frames is None:
        frames = np.unique(np.linspace(0, n_frames - 1, min(n_frames, SAMPLE_FRAMES)).round().astype(int))
    if len(samples) == 0:
        return frames, np.zeros(len(frames))
    inv = camera_path.rigid_inverse(path.matrices[frames])
    ray = np.column_stack([samples.uv, -np.ones(len(samples))])
    xn, yn, dn = _project(ray * samples.z_near[:, None], inv)
    xf, yf, df = _project(ray * samples.z_far[:, None], inv)
    # The near side moving away from the far side opens a gap of that width.
    gap = np.maximum(0.0, (xf - xn) * samples.normal[:, 0] + (yf - yn) * samples.normal[:, 1])
    tanf = np.tan(np.radians(path.hfov_deg[frames]) / 2)[:, None]
    inside = (np.abs(xf) < tanf) & (np.abs(yf) < tanf / aspect) & (dn > 0) & (df > 0)
    # Edge length grows as the camera comes closer (and shrinks as it backs off).
    scale = samples.z_far[None, :] / np.maximum(df, 1e-9)
    weights = samples.weights(unsure_weight)
    if weights is not None:
        scale = scale * weights[None, :]
    area = (gap * inside * scale).sum(1) * samples.length
    frame_area = 4 * tanf[:, 0] ** 2 / aspect
    return frames, area / frame_area


def estimate(samples: EdgeSamples, path: camera_path.CameraPath, aspect: float,
             unsure_weight: float = 0.0) -> tuple[float, int]:
    """(largest revealed fraction over the path, the frame index where it happens)."""
    frames, frac = reveal_fractions(samples, path, aspect, unsure_weight=unsure_weight)
    i = int(np.argmax(frac))
    return float(frac[i]), int(frames[i])


# The automatic path: an elliptical loop, its long axis along the direction that reveals
# least, as large as the threshold allows.
AUTO_DIRECTIONS = np.arange(0.0, 180.0, 15.0)
AUTO_AMPLITUDE = (0.25, 2.0)   # the hidden band is sized for up to about 2.4 (pipeline.run)


@dataclass
class AutoChoice:
    direction_deg: float
    amplitude: float
    # Estimated largest revealed fraction of the frame (coarsely sampled), gaps behind unsure
    # edges weighted as in the search: what it held under the threshold.
    reveal: float


def choose_auto(samples: EdgeSamples, extent: camera_path.SceneExtent, params: camera_path.PathParams,
                max_reveal: float, iterations: int = 6, unsure_weight: float = UNSURE_WEIGHT) -> AutoChoice:
    """Direction and amplitude of the ``auto`` path with the most travel whose estimated
    reveal, gaps behind unsure edges counting up to (1 + ``unsure_weight``) times, stays
    under ``max_reveal`` (a fraction of the frame)."""
    # The search samples each candidate loop coarsely (same shape, fewer frames) and, for
    # the directions, a share of the edges: fast enough to re-run on every change of a
    # slider. The winner is then fitted on every edge.
    coarse = samples.subset(SEARCH_SAMPLES)

    def evaluate(edges, direction, amplitude):
        p = camera_path.PathParams(**{**params.__dict__, "preset": "auto", "amplitude": amplitude,
                                      "direction_deg": float(direction),
                                      "frames": min(params.frames, SAMPLE_FRAMES)})
        return estimate(edges, camera_path.make_path(p, extent), params.aspect, unsure_weight)[0]

    lo_a, hi_a = AUTO_AMPLITUDE

    def fit(edges, direction, a):
        # The reveal grows about linearly with the amplitude: scale to the threshold, then
        # correct until it is under it (a few evaluations instead of a bisection).
        r = evaluate(edges, direction, a)
        for _ in range(iterations):
            if r <= max_reveal or a <= lo_a:
                break
            a = max(lo_a, min(a * 0.98, a * 0.995 * max_reveal / r))
            r = evaluate(edges, direction, a)
        return AutoChoice(float(direction), a, r)

    best = None
    for direction in AUTO_DIRECTIONS:
        cand = fit(coarse, direction, hi_a)
        # Most travel wins; among equals, the smaller reveal, then the first (horizontal) direction.
        if (best is None or cand.amplitude > best.amplitude + 1e-6
                or (cand.amplitude > best.amplitude - 1e-6 and cand.reveal < best.reveal - 1e-9)):
            best = cand
    if coarse is samples:
        return best
    # On every edge, from the share's amplitude scaled back up to the threshold.
    a = best.amplitude if best.reveal <= 0 else min(hi_a, best.amplitude * max_reveal / best.reveal)
    return fit(samples, best.direction_deg, max(lo_a, a))
