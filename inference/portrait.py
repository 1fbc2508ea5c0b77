"""Portraits: the person's mask, a soft alpha matte along their outline, and a face relief
from a face mesh fitted to each face.

Two small networks from Google's MediaPipe (Apache-2.0), run with OpenCV's DNN module (no
MediaPipe runtime, no PyTorch, no download; they are TFLite files, which ONNX Runtime does
not read, and a few milliseconds each on a CPU: docs/performance.md, "Inference engine"):

* ``selfie_segmentation.tflite``: a person's soft mask at 256x256;
* ``face_landmark.tflite``: 468 3D landmarks of a face crop (x, y in pixels of the 192 px
  crop, z relative depth in the same units as x, smaller = nearer).

Where the files come from (``model_path``): the extension zip carries them in
``models/mediapipe/`` (tools/build_extension.py copies them out of the MediaPipe wheel);
in a development venv, the MediaPipe wheel installed without its dependencies (the
Makefile does that) is read in place, never imported. Without them, portraits fall back to
the depth model's own subject and face relief.
"""
from __future__ import annotations

import math
import os
import threading
from importlib import metadata

import cv2
import numpy as np
from scipy import ndimage, spatial

from . import engine, masks
from .depth.classical import find_faces, guided_filter
from .files import read_bytes
from .inpaint import poisson_fill

MODEL_FILES = {
    "selfie": "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
    "face_mesh": "mediapipe/modules/face_landmark/face_landmark.tflite",
}
BUNDLED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "mediapipe")

SEG_SIZE = 256
MESH_SIZE = 192
MESH_CROP = 1.6          # face-mesh crop side as a multiple of the detected face box
MIN_FACE_PX = 24         # smaller faces get no relief (too few pixels to shape)
FACE_SCORE = 0.5         # face-mesh presence probability to trust a fit

_lock = threading.Lock()
_nets: dict[str, object] = {}


def model_path(key: str) -> str | None:
    """Path of a MediaPipe model file, or None when neither the extension nor the venv has it."""
    rel = MODEL_FILES[key]
    bundled = os.path.join(BUNDLED_DIR, os.path.basename(rel))
    if os.path.isfile(bundled):
        return bundled
    try:
        path = str(metadata.distribution("mediapipe").locate_file(rel))
    except metadata.PackageNotFoundError:
        return None
    return path if os.path.isfile(path) else None


def available() -> bool:
    return all(model_path(k) for k in MODEL_FILES)


def _net(key: str):
    """The loaded network (once per process), or None when its file is missing or unreadable."""
    if key not in _nets:
        path = model_path(key)
        net = None
        if path is not None:
            try:
                net = cv2.dnn.readNetFromTFLite(read_bytes(path))   # OpenCV cannot open every path itself
            except (cv2.error, OSError):
                net = None
        _nets[key] = net
    return _nets[key]


def _forward(key: str, blob: np.ndarray) -> list[np.ndarray] | None:
    with _lock:   # a cv2.dnn.Net is not safe to run from two threads at once
        net = _net(key)
        if net is None:
            return None
        net.setInput(blob)
        outs = list(net.forward(net.getUnconnectedOutLayersNames()))
    engine.record_run("portrait", os.path.basename(MODEL_FILES[key]), "opencv-dnn", "CPU", "fp32")
    return outs


# ----------------------------------------------------------------------------- the person

def person_probability(rgb: np.ndarray) -> np.ndarray | None:
    """Soft person mask (float32 in [0, 1]) at ``rgb``'s size, edges following the photo;
    None without the model. ``rgb``: float32 (H, W, 3) in [0, 1]."""
    h, w = rgb.shape[:2]
    x = cv2.resize(rgb.astype(np.float32), (SEG_SIZE, SEG_SIZE), interpolation=cv2.INTER_AREA)
    out = _forward("selfie", cv2.dnn.blobFromImage(x))
    if out is None:
        return None
    p = np.clip(out[0].reshape(SEG_SIZE, SEG_SIZE), 0, 1).astype(np.float32)
    p = cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR)
    gray = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2GRAY)
    r = max(2, int(round(1.5 * max(h, w) / SEG_SIZE)))
    return np.clip(guided_filter(gray, p, r, 1e-3), 0, 1).astype(np.float32)


def person_mask(rgb: np.ndarray, faces=None, segmenter: str | None = None) -> np.ndarray | None:
    """The people in the photo (bool, ``rgb``'s size), or None without the model or when
    nobody is there. A person counts where a face was found or a sizeable part of the
    frame is confidently a person (a back, a silhouette). ``segmenter``: a downloadable
    segmentation model (depth_hf.SEGMENTERS) or folder instead of the built-in network."""
    if segmenter:
        from .depth.zoo import person_probability as hf_person
        p = hf_person(segmenter, rgb)
        gray = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2GRAY)
        p = np.clip(guided_filter(gray, p, max(2, int(round(max(rgb.shape[:2]) / 256))), 1e-3), 0, 1)
    else:
        p = person_probability(rgb)
    if p is None:
        return None
    hard = p > 0.5
    if not hard.any():
        return None
    lab, n = ndimage.label(hard)
    sizes = ndimage.sum_labels(np.ones_like(p), lab, np.arange(1, n + 1))
    keep = sizes >= 0.01 * hard.size
    if faces:
        for (x, y, fw, fh) in faces:     # any region holding a face stays, however small
            cy, cx = int(min(hard.shape[0] - 1, y + fh / 2)), int(min(hard.shape[1] - 1, x + fw / 2))
            if lab[cy, cx]:
                keep[lab[cy, cx] - 1] = True
    elif p[hard].mean() < 0.8 or hard.mean() < 0.03:
        return None                      # no face and a weak, small guess: not a portrait
    mask = keep[np.maximum(lab - 1, 0)] & (lab > 0)
    return mask if mask.any() else None


# ----------------------------------------------------------------------------- alpha matte

def alpha_matte(rgb: np.ndarray, mask: np.ndarray, band_px: float) -> np.ndarray:
    """Soft alpha of the subject along its outline (float32, ``rgb``'s size).

    A guided filter of the hard mask, guided by the photo: fine structure (hair) that
    differs from what is behind it gets partial alpha instead of a hard, jagged cut. Only
    a band of ``band_px`` around the outline is soft; alpha is exactly 1 inside the
    subject and 0 outside the band.
    """
    h, w = rgb.shape[:2]
    m = mask.astype(np.float32)
    if m.shape != (h, w):
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    r = max(2, int(round(band_px)))
    # Colour guide: a grey guide misses hair against a wall of the same brightness.
    inner = cv2.erode((m > 0.5).astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0
    outer = cv2.dilate((m > 0.5).astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0
    band = outer & ~inner
    out = inner.astype(np.float32)
    if not band.any():
        return out
    # Only round the band: the filter reads 2r about each pixel (two box filters), so a crop
    # with that margin gives the same alpha in the band.
    ys, xs = np.nonzero(band)
    pad = 2 * r + 2
    y0, y1 = max(0, int(ys.min()) - pad), min(h, int(ys.max()) + pad + 1)
    x0, x1 = max(0, int(xs.min()) - pad), min(w, int(xs.max()) + pad + 1)
    a = guided_filter_color(rgb[y0:y1, x0:x1].astype(np.float32), m[y0:y1, x0:x1], r, 1e-3,
                            region=band[y0:y1, x0:x1])
    crop = out[y0:y1, x0:x1]
    crop[band[y0:y1, x0:x1]] = np.clip(a, 0, 1)[band[y0:y1, x0:x1]]
    return out


def guided_filter_color(guide: np.ndarray, p: np.ndarray, r: int, eps: float,
                        region: np.ndarray | None = None) -> np.ndarray:
    """He et al.'s guided filter with an RGB guide (per-pixel 3x3 solve, closed form).

    ``region``: where the output matters; the linear coefficients are solved only within
    ``r`` of it (elsewhere the output is the box mean of ``p``)."""
    k = (2 * r + 1, 2 * r + 1)
    bf = lambda x: cv2.boxFilter(x, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    guide = [np.ascontiguousarray(guide[..., c], np.float32) for c in range(3)]   # planes: OpenCV copies strided ones
    mean_i = [bf(guide[c]) for c in range(3)]
    mean_p = bf(p)
    a = np.zeros(p.shape + (3,), np.float32)
    where = np.ones(p.shape, bool) if region is None else cv2.dilate(
        region.astype(np.uint8), np.ones(k, np.uint8)) > 0
    if where.any():
        sel = lambda x: x[where]  # noqa: E731
        cov = [sel(bf(guide[c] * p)) - sel(mean_i[c]) * sel(mean_p) for c in range(3)]
        v = {}
        for i in range(3):
            for j in range(i, 3):
                v[i, j] = sel(bf(guide[i] * guide[j])) - sel(mean_i[i]) * sel(mean_i[j])
                if i == j:
                    v[i, j] = v[i, j] + eps
        # Inverse of the symmetric 3x3 covariance by its adjugate.
        A, B, C, D, E, F = v[0, 0], v[0, 1], v[0, 2], v[1, 1], v[1, 2], v[2, 2]
        i00, i01, i02 = D * F - E * E, C * E - B * F, B * E - C * D
        i11, i12, i22 = A * F - C * C, B * C - A * E, A * D - B * B
        det = A * i00 + B * i01 + C * i02
        det = np.where(np.abs(det) < 1e-12, 1e-12, det)
        a_sel = np.stack([i00 * cov[0] + i01 * cov[1] + i02 * cov[2],
                          i01 * cov[0] + i11 * cov[1] + i12 * cov[2],
                          i02 * cov[0] + i12 * cov[1] + i22 * cov[2]], -1) / det[:, None]
        a[where] = a_sel
    b = mean_p - sum(a[..., c] * mean_i[c] for c in range(3))
    return sum(bf(np.ascontiguousarray(a[..., c])) * guide[c] for c in range(3)) + bf(b)


def unmix_foreground(rgb: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The subject's own colour where alpha is partial: I = a F + (1 - a) B, B known (the
    inpainted background), so F = (I - (1 - a) B) / a. Keeps the wall's colour out of the
    subject's edge pixels (the pale fringe that would travel with the subject)."""
    out = rgb.astype(np.float32).copy()
    soft = (alpha > 0.02) & (alpha < 0.999)
    a = alpha[soft][:, None].astype(np.float32)
    out[soft] = np.clip((out[soft] - (1 - a) * background[soft]) / a, 0, 1)
    return out


def reproducible_alpha(rgb: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``alpha`` raised where no colour in [0, 1] laid over ``background`` at that alpha
    gives the photo's own: the least alpha that does, per pixel (I > B needs a >= (I - B) /
    (1 - B), I < B needs a >= (B - I) / B, in each channel). A matte from a guided filter
    can be too low where the fill behind differs from what the photo had there (the
    inpainted wall behind a model shuttle's tank); unmixed and clipped, those pixels came
    out in the first frame as specks of the fill."""
    soft = alpha < 0.999
    if not soft.any():
        return alpha
    i = rgb[soft].astype(np.float32)
    b = background[soft].astype(np.float32)
    need = np.where(i > b, (i - b) / np.maximum(1 - b, 1e-6), (b - i) / np.maximum(b, 1e-6)).max(1)
    out = alpha.astype(np.float32).copy()
    out[soft] = np.maximum(out[soft], np.clip(need, 0, 1))
    return out


def extend_to_strands(rgb: np.ndarray, depth: np.ndarray, subject: np.ndarray, soft_px: float = 2.0,
                      level: float = 0.25):
    """Grow the subject over the pixels just outside its outline that look like it (hair
    strands, a fuzzy sleeve), at the subject's depth. Left on the wall, those pixels would
    trace the subject's outline on the background once the camera moves; in the subject's
    layer they move with it and the alpha matte blends them over the inpainted background."""
    matte = alpha_matte(rgb, subject, soft_px)
    ext = (matte > level) & ~subject
    if not ext.any():
        return depth, subject
    iv, iu = masks.nearest(subject)
    depth = np.where(ext, np.minimum(depth, depth[iv, iu]), depth).astype(np.float32)
    return depth, subject | ext


# ----------------------------------------------------------------------------- face relief

def face_landmarks(rgb: np.ndarray, box) -> np.ndarray | None:
    """(468, 3) landmarks of the face in ``box`` (x, y, w, h) in ``rgb`` pixels: x, y image
    pixels, z relative depth in pixels (smaller = nearer); None when no face fits."""
    x, y, fw, fh = box
    side = MESH_CROP * max(fw, fh)
    cx, cy = x + fw / 2, y + fh / 2
    # Affine crop: square of `side` around the face, out-of-frame parts replicated.
    s = MESH_SIZE / side
    m = np.array([[s, 0, MESH_SIZE / 2 - s * cx], [0, s, MESH_SIZE / 2 - s * cy]], np.float32)
    crop = cv2.warpAffine(rgb.astype(np.float32), m, (MESH_SIZE, MESH_SIZE), flags=cv2.INTER_AREA
                          if s < 1 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = _forward("face_mesh", cv2.dnn.blobFromImage(crop))
    if out is None:
        return None
    lm = next(o for o in out if o.size == 468 * 3).reshape(468, 3).astype(np.float64)
    flag = next(o for o in out if o.size == 1).item()
    if 1 / (1 + math.exp(-flag)) < FACE_SCORE:
        return None
    lm[:, 0] = (lm[:, 0] - MESH_SIZE / 2) / s + cx
    lm[:, 1] = (lm[:, 1] - MESH_SIZE / 2) / s + cy
    lm[:, 2] = lm[:, 2] / s
    return lm


def _barycentric(xy, tri, p):
    a, b, c = xy[tri[:, 0]], xy[tri[:, 1]], xy[tri[:, 2]]
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    wb = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    wc = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    return np.stack([1 - wb - wc, wb, wc], -1)


def _rasterize(triangles: np.ndarray, xy: np.ndarray, z: np.ndarray, shape,
               neighbors: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(inside mask, z linearly interpolated over the triangles) at pixel centres.

    Rasterised with OpenCV, barycentric weights in NumPy; a pixel on a shared edge that
    OpenCV gave to the wrong triangle moves to the neighbour that holds it. (SciPy's
    Delaunay.find_simplex and LinearNDInterpolator first compute per-simplex transforms,
    which took 7 s for a 468-landmark face mesh under a busy BLAS.)"""
    h, w = shape
    ids = np.full((h, w), -1, np.int32)
    for k, tri in enumerate(triangles):
        cv2.fillConvexPoly(ids, np.round(xy[tri] * 16).astype(np.int32), int(k),
                           lineType=cv2.LINE_8, shift=4)
    inside = ids >= 0
    zmap = np.zeros((h, w), np.float64)
    if not inside.any():
        return inside, zmap
    py, px = np.nonzero(inside)
    p = np.stack([px, py], -1).astype(np.float64)
    k = ids[py, px]
    wts = _barycentric(xy, triangles[k], p)
    if neighbors is not None:
        # visibility walk: step across the edge opposite the most negative weight
        # (scipy's neighbors[k, j] lies opposite vertex j); Delaunay walks terminate
        for _step in range(32):
            bad = np.flatnonzero(wts.min(1) < -1e-9)
            if not bad.size:
                break
            nb = neighbors[k[bad], np.argmin(wts[bad], 1)]
            ok = nb >= 0                       # -1: outside the hull, keep the clamped weights
            bad, nb = bad[ok], nb[ok]
            k[bad] = nb
            wts[bad] = _barycentric(xy, triangles[nb], p[bad])
    outside = wts.min(1) < -1e-6                # OpenCV's edge pixels beyond the hull
    inside[py[outside], px[outside]] = False
    keep = ~outside
    zmap[py[keep], px[keep]] = (z[triangles[k[keep]]] * wts[keep]).sum(1)
    return inside, zmap


def fuse_face_relief(depth: np.ndarray, landmarks: list[np.ndarray], hfov_deg: float,
                     feather: float = 0.12) -> np.ndarray:
    """Depth with each face's shape from its fitted face mesh.

    Inside a face's outline the depth model's own face shape (often flat, or a rough bump)
    is replaced: the depth just outside the outline is filled across the face (the head
    as a smooth surface), and the mesh's relief is added on top at the face's true scale:
    z in pixels times depth / focal length in pixels, the same scale as the face's width.
    ``landmarks`` are in ``depth``'s pixels. Blends over ``feather`` of the face's width.
    """
    h, w = depth.shape
    out = depth.astype(np.float32).copy()
    f_px = 0.5 * w / math.tan(math.radians(hfov_deg) / 2)
    yy, xx = np.mgrid[0:h, 0:w]
    for lm in landmarks:
        xy = lm[:, :2]
        width = float(np.ptp(xy[:, 0]))
        if width < MIN_FACE_PX:
            continue
        hull = spatial.Delaunay(xy)
        x0, y0 = np.floor(xy.min(0)).astype(int) - 2
        x1, y1 = np.ceil(xy.max(0)).astype(int) + 3
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 - x0 < 3 or y1 - y0 < 3:
            continue
        pts = np.stack([xx[y0:y1, x0:x1].ravel(), yy[y0:y1, x0:x1].ravel()], -1).astype(np.float64)
        inside, z = _rasterize(hull.simplices, xy - (x0, y0), lm[:, 2], (y1 - y0, x1 - x0), hull.neighbors)
        if inside.sum() < 16:
            continue
        # Relief relative to the plane through the face's outline (the hull's landmarks; the
        # plane follows a turned or tilted head), nearer = negative. The face only comes
        # forward of the head's surface: the outline's far corners (jaw, ears) are clamped.
        rim = np.unique(hull.convex_hull)
        A = np.column_stack([xy[rim], np.ones(len(rim))])
        plane = np.linalg.lstsq(A, lm[rim, 2], rcond=None)[0]
        z_plane = (pts @ plane[:2] + plane[2]).reshape(z.shape)
        base_region = out[y0:y1, x0:x1]
        z_face = float(np.median(base_region[inside]))
        relief = np.where(inside, np.minimum(0.0, z - z_plane) * z_face / f_px, 0.0)
        # The head as a smooth surface under the face: the depth around the outline, filled in.
        # Only the head around the face (hair, neck) shapes it, not the wall seen beside the neck.
        head = ~inside & (base_region < 1.25 * z_face)
        base = poisson_fill(base_region, inside, head)
        # Feathered weight: 0 on the outline, 1 a little inside.
        dist = ndimage.distance_transform_edt(inside)
        wgt = np.clip(dist / max(1.0, feather * width), 0, 1)
        wgt = wgt * wgt * (3 - 2 * wgt)
        fused = base + relief
        out[y0:y1, x0:x1] = np.where(inside, wgt * fused + (1 - wgt) * base_region, base_region)
    return np.maximum(out, 1e-4).astype(np.float32)


def faces_in(rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Face boxes (x, y, w, h) in ``rgb`` pixels, largest first (OpenCV's cascades)."""
    gray = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2GRAY)
    try:
        return find_faces(gray)
    except cv2.error:
        return []


# ----------------------------------------------------------------------------- all together

PERSON_DEPTH_RATIO = 1.3       # farthest / near part (30th percentile) of a person's depth


def refine(rgb: np.ndarray, depth: np.ndarray, subject: np.ndarray | None, hfov_deg: float,
           segmenter: str | None = None):
    """Portrait refinement of a depth model's output, all at ``rgb``'s size.

    Returns (depth, subject probability or None, number of faces given a relief, the
    people's mask or None: sharper than the subject, see outline.py). People
    found by the segmenter join the subject; where they reach beyond the depth model's
    subject (hair, an arm), their depth is taken from the nearest part of the subject the
    two agree on, so the person is one layer, no deeper than PERSON_DEPTH_RATIO times its
    near part. Each face gets its fitted relief.
    """
    if not available() and not segmenter:
        return depth, subject, 0, None
    faces = faces_in(rgb)
    person = person_mask(rgb, faces, segmenter)
    if person is not None:
        model = subject > 0.5 if subject is not None else np.zeros_like(person)
        core = person & model
        if core.sum() >= 0.2 * person.sum():
            # Extend the core's depth over the rest of the person (nearest core pixel).
            idx = ndimage.distance_transform_edt(~core, return_distances=False, return_indices=True)
            near_depth = depth[idx[0], idx[1]]
            depth = np.where(person & ~core, np.minimum(depth, near_depth), depth).astype(np.float32)
        # A person is about as deep as they are thick: keep their depth within a small
        # ratio of their near part, so a model that lets a dark suit or a shoulder sink
        # into the background still leaves the person one layer in front of it.
        ref = float(np.percentile(depth[person], 30))
        depth = np.where(person, np.minimum(depth, ref * PERSON_DEPTH_RATIO), depth).astype(np.float32)
        p = np.where(person, 1.0, 0.0).astype(np.float32)
        subject = p if subject is None else np.maximum(subject, p)
    fits = [lm for lm in (face_landmarks(rgb, b) for b in faces) if lm is not None]
    if fits:
        depth = fuse_face_relief(depth, fits, hfov_deg)
    return depth, subject, len(fits), person
