"""Classical monocular depth: the fallback used when no learned model is available.

No learned weights, no downloads: a scene prior (ground receding towards the top of the
frame, sky pushed far) plus a segmented main subject placed in front of it. For a 3D
photo the separation of the subject from what stands behind it matters more than an
accurate global ramp, so the subject is cut out as well as classical tools allow:

* faces from OpenCV's Haar cascades (frontal; profile when no frontal face is found),
  each expanded into a person-shaped prior (head and hair above the face box, neck,
  shoulders and torso widening to the bottom of the frame) that initialises
  ``cv2.grabCut``;
* without a face, a saliency map (spectral residual + colour contrast against the
  border + a centre bias) initialises ``cv2.grabCut`` instead; an implausible result
  (tiny, huge, or not salient) means "no subject".

The mask from grabCut (run at a reduced size) is refined at full resolution with a
guided filter on the photo, so the outline follows hair and shoulders; the depth jump
between subject and background sits exactly on that outline (a hard step, never a
ramp: the mesh is cut at depth jumps). Inside, the subject gets gentle volume: a dome
from the distance transform, plus a relief bump on each detected face.

Depth is in nominal metres: main subject about 1.5-3 m, far background and sky up to
~25 m. Everything is vectorised NumPy / OpenCV; about 0.2-0.4 s at 512x512 on two
cores (face cascades and grabCut dominate).
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from .priors import sky_mask

__all__ = ["estimate"]

# Nominal camera: horizontal field of view of the long side, degrees.
_HFOV_DEG = 60.0
# Depth range, metres.
_Z_MIN, _Z_MAX = 0.3, 30.0
_Z_SKY = 25.0
# General scene prior: ground at the bottom of the frame, at the horizon, at the top.
_Z_BOTTOM, _Z_HORIZON, _Z_TOP = 1.8, 9.0, 13.0
_V_HORIZON = 0.42          # default horizon, fraction of the height from the top
# Subject depth range, metres.
_Z_SUBJ_MIN, _Z_SUBJ_MAX = 1.5, 3.0
_FACE_WIDTH_M = 0.15
_FACE_RELIEF_M = 0.045     # nose forward of the face outline, for a 15 cm wide face
_BODY_RELIEF = 0.35        # dome relief as a fraction of the subject's half-width in metres
_SEPARATION = 1.35         # background at least this factor behind the subject's outline
_GRABCUT_SIDE = 160        # grabCut with a person prior runs with this long side at most
_GRABCUT_SIDE_SALIENCY = 128  # and with a saliency prior (a coarser subject) at this one
_FACE_SIDE = 320           # frontal face detection runs with this long side at most
_FACE_SIDE_OTHER = 256     # profile faces (a slower cascade, two passes) with this one

_CASCADES: dict[str, object] = {}


# ----------------------------------------------------------------------------- helpers

def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    a = np.asarray(rgb)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"expected an (H, W, 3) image, got shape {np.shape(rgb)}")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] > 3:
        a = a[..., :3]
    elif a.shape[2] == 2:
        a = np.repeat(a[..., :1], 3, axis=2)
    a = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    if a.size and a.max() > 1.5:               # tolerate 0..255 input
        a = a / 255.0
    return np.ascontiguousarray(np.clip(a, 0.0, 1.0))


def _resize_long(img: np.ndarray, long_side: int, interp=cv2.INTER_AREA) -> tuple[np.ndarray, float]:
    h, w = img.shape[:2]
    s = min(1.0, long_side / max(h, w))
    if s >= 1.0:
        return img, 1.0
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(img, size, interpolation=interp), s


def _normalise(x: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(x, 1), np.percentile(x, 99)
    if not np.isfinite(hi - lo) or hi - lo < 1e-9:
        return np.zeros_like(x, dtype=np.float32)
    return np.clip((x - lo) / (hi - lo), 0, 1).astype(np.float32)


def guided_filter(guide: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter (grey guide), with box filters."""
    k = (2 * r + 1, 2 * r + 1)
    bf = lambda x: cv2.boxFilter(x, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mi, mp = bf(guide), bf(p)
    cov = bf(guide * p) - mi * mp
    var = bf(guide * guide) - mi * mi
    a = cov / (var + eps)
    b = mp - a * mi
    return bf(a) * guide + bf(b)


def _focal_px(h: int, w: int) -> float:
    return 0.5 * max(h, w) / np.tan(np.radians(_HFOV_DEG) / 2)


# ----------------------------------------------------------------------------- faces

def _cascade(name: str):
    c = _CASCADES.get(name)
    if c is None:
        try:
            # Read in Python: OpenCV cannot open non-ASCII paths on Windows (cv2 lies under the user's folder).
            with open(os.path.join(cv2.data.haarcascades, name), encoding="utf-8") as f:
                fs = cv2.FileStorage(f.read(), cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
            c = cv2.CascadeClassifier()
            if not c.read(fs.getFirstTopLevelNode()) or c.empty():
                c = False
        except Exception:  # missing data files: no face detection, not a crash
            c = False
        _CASCADES[name] = c
    return c


def _nms(boxes: list[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
    """Largest first; drop a box overlapping a kept one (IoU > 0.25 or centre inside)."""
    kept: list[tuple[float, float, float, float]] = []
    for b in sorted(boxes, key=lambda b: -b[2] * b[3]):
        x, y, w, h = b
        cx, cy = x + w / 2, y + h / 2
        ok = True
        for k in kept:
            kx, ky, kw, kh = k
            ix = max(0.0, min(x + w, kx + kw) - max(x, kx))
            iy = max(0.0, min(y + h, ky + kh) - max(y, ky))
            inter = ix * iy
            iou = inter / (w * h + kw * kh - inter + 1e-9)
            if iou > 0.25 or (kx <= cx <= kx + kw and ky <= cy <= ky + kh):
                ok = False
                break
        if ok:
            kept.append(b)
    return kept


def _detect(cascade, gray8: np.ndarray, min_side: int, neighbours: int, flip: bool = False,
            scale: float = 1.15):
    img = gray8[:, ::-1].copy() if flip else gray8
    try:
        found = cascade.detectMultiScale(img, scaleFactor=scale, minNeighbors=neighbours,
                                         minSize=(min_side, min_side))
    except cv2.error:
        return []
    out = []
    W = gray8.shape[1]
    for (x, y, w, h) in (found if len(found) else []):
        if flip:
            x = W - x - w
        out.append((float(x), float(y), float(w), float(h)))
    return out


def find_faces(gray: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Face boxes (x, y, w, h) in full-resolution pixels, largest first."""
    h, w = gray.shape
    if min(h, w) < 40:
        return []
    small, s = _resize_long(gray, _FACE_SIDE)
    g8 = cv2.equalizeHist((small * 255).astype(np.uint8))
    min_side = max(20, int(0.045 * min(g8.shape)))
    boxes = []
    c = _cascade("haarcascade_frontalface_default.xml")
    if c:
        boxes += [tuple(v / s for v in b) for b in _detect(c, g8, min_side, 6)]
    if not boxes:
        # Profiles only when no frontal face, at a smaller size: a slower cascade.
        small, s = _resize_long(gray, _FACE_SIDE_OTHER)
        g8 = cv2.equalizeHist((small * 255).astype(np.uint8))
        min_side = max(20, int(0.045 * min(g8.shape)))
        c = _cascade("haarcascade_profileface.xml")
        if c:
            boxes += _detect(c, g8, min_side, 6, scale=1.2)
            boxes += _detect(c, g8, min_side, 6, flip=True, scale=1.2)
        boxes = [tuple(v / s for v in b) for b in boxes]
    boxes = _nms(boxes)
    if not boxes:
        return []
    # Drop faces much smaller than the largest one (background faces, false positives).
    big = max(b[2] for b in boxes)
    boxes = [b for b in boxes if b[2] >= 0.3 * big][:6]
    return boxes


def _person_prior(h: int, w: int, faces) -> tuple[np.ndarray, np.ndarray]:
    """grabCut initial mask and a per-person label map (0 = none, i+1 = face i)."""
    init = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    label = np.zeros((h, w), np.int32)
    sure = np.zeros((h, w), np.uint8)
    prob = np.zeros((h, w), np.uint8)
    for i, (x, y, fw, fh) in enumerate(sorted(faces, key=lambda b: b[2])):
        # Smaller faces first, so a bigger (nearer) person's prior wins where they overlap.
        cx, cy = x + fw / 2, y + fh / 2
        one = np.zeros((h, w), np.uint8)
        # Head and hair: an ellipse around the face box reaching well above it.
        cv2.ellipse(one, (int(cx), int(cy - 0.15 * fh)), (int(0.8 * fw), int(1.0 * fh)),
                    0, 0, 360, 1, -1)
        # Neck, then shoulders (about three face widths) widening down to the frame.
        neck = np.array([[cx - 0.4 * fw, cy + 0.3 * fh], [cx + 0.4 * fw, cy + 0.3 * fh],
                         [cx + 0.45 * fw, y + 1.45 * fh], [cx - 0.45 * fw, y + 1.45 * fh]])
        cv2.fillPoly(one, [neck.astype(np.int32)], 1)
        ys = y + 1.5 * fh
        spread = max(0.0, h - 1 - ys)
        body = np.array([[cx - 1.1 * fw, ys - 0.15 * fh], [cx + 1.1 * fw, ys - 0.15 * fh],
                         [cx + 1.55 * fw, ys + 0.5 * fh],
                         [cx + 1.55 * fw + 0.25 * spread, h - 1],
                         [cx - 1.55 * fw - 0.25 * spread, h - 1],
                         [cx - 1.55 * fw, ys + 0.5 * fh]], np.int32)
        cv2.fillPoly(one, [body.astype(np.int32)], 1)
        prob |= one
        label[one > 0] = i + 1
        # Sure foreground: the inner face, and the neck (not the chest: people lean).
        x0, x1 = int(cx - 0.3 * fw), int(cx + 0.3 * fw)
        cv2.rectangle(sure, (x0, int(y + 0.15 * fh)), (x1, int(y + 0.9 * fh)), 1, -1)
        cv2.rectangle(sure, (int(cx - 0.15 * fw), int(y + fh)),
                      (int(cx + 0.15 * fw), int(min(h - 1, y + 1.35 * fh))), 1, -1)
    init[prob > 0] = cv2.GC_PR_FGD
    # Sure background: far from every person prior.
    big = max(f[2] for f in faces)
    k = max(3, int(1.2 * big)) | 1
    near = cv2.dilate(prob, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    init[near == 0] = cv2.GC_BGD
    init[sure > 0] = cv2.GC_FGD
    return init, label


# ----------------------------------------------------------------------------- saliency

def _saliency(rgb: np.ndarray) -> np.ndarray:
    """Saliency in [0, 1] at the size of ``rgb``: spectral residual, colour contrast
    against the border colours, and a centre bias."""
    h, w = rgb.shape[:2]
    n = 64
    small = cv2.resize(rgb, (n, n), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2Lab)
    gray = lab[..., 0] / 100.0
    F = np.fft.fft2(gray)
    log_amp = np.log(np.abs(F) + 1e-8)
    resid = log_amp - cv2.blur(log_amp.astype(np.float32), (3, 3))
    sr = np.abs(np.fft.ifft2(np.exp(resid + 1j * np.angle(F)))) ** 2
    sr = cv2.GaussianBlur(sr.astype(np.float32), (0, 0), 2.5)
    # Colour distance to the nearest of a few border colours (k-means of the top, left
    # and right strips; the bottom strip is often the subject itself or the ground).
    b = 3
    border = np.concatenate([lab[:b].reshape(-1, 3), lab[b:, :b].reshape(-1, 3),
                             lab[b:, -b:].reshape(-1, 3)]).astype(np.float32)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 0.5)
    cv2.setRNGSeed(1)
    _, _, cols = cv2.kmeans(border, 5, None, crit, 1, cv2.KMEANS_PP_CENTERS)
    d = np.min(np.linalg.norm(lab[:, :, None, :] - cols[None, None], axis=-1), axis=-1)
    d = cv2.GaussianBlur(d.astype(np.float32), (0, 0), 1.5)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / (n - 1)
    centre = np.exp(-(((xx - 0.5) / 0.33) ** 2 + ((yy - 0.55) / 0.38) ** 2) / 2)
    sal = (0.35 * _normalise(sr) + 0.65 * _normalise(d)) * (0.35 + 0.65 * centre)
    sal = _normalise(sal)
    return cv2.resize(sal, (w, h), interpolation=cv2.INTER_LINEAR)


def _saliency_prior(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = rgb.shape[:2]
    sal = _saliency(rgb)
    init = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    # Probable foreground: the salient region, closed and with its holes filled (the
    # inside of a cup, a face between salient eyes), so grabCut sees whole objects.
    pr = (sal > max(np.percentile(sal, 70), 0.3)).astype(np.uint8)
    k = max(3, int(0.06 * max(h, w)) | 1)
    pr = cv2.morphologyEx(pr, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    inv = np.pad(1 - pr, 1, constant_values=1)
    ff = inv.copy()
    cv2.floodFill(ff, None, (0, 0), 2)
    pr = pr | (ff[1:-1, 1:-1] == 1)
    init[pr > 0] = cv2.GC_PR_FGD
    init[sal > max(np.percentile(sal, 97), 0.8)] = cv2.GC_FGD
    b = max(1, int(0.03 * min(h, w)))
    border = np.zeros((h, w), bool)
    border[:b] = True
    border[:, :b] = True
    border[:, -b:] = True
    init[border & (sal < 0.5)] = cv2.GC_BGD
    return init, sal


# ----------------------------------------------------------------------------- segmentation

def _grabcut(rgb: np.ndarray, init: np.ndarray, iters: int = 3) -> np.ndarray | None:
    """Foreground (float 0/1) at the size of ``init`` (= size of ``rgb``)."""
    if not np.any((init == cv2.GC_FGD) | (init == cv2.GC_PR_FGD)):
        return None
    if not np.any((init == cv2.GC_BGD) | (init == cv2.GC_PR_BGD)):
        return None
    # Work on the bounding box of what may be foreground, with a margin of background
    # to learn its colours from: grabCut's cost grows with the pixel count.
    h, w = init.shape
    ys, xs = np.nonzero(init != cv2.GC_BGD)
    m = max(8, int(0.12 * max(h, w)))
    y0, y1 = max(0, ys.min() - m), min(h, ys.max() + m + 1)
    x0, x1 = max(0, xs.min() - m), min(w, xs.max() + m + 1)
    img8 = (rgb[y0:y1, x0:x1, ::-1] * 255 + 0.5).astype(np.uint8)
    mask = init[y0:y1, x0:x1].copy()
    if not np.any(mask == cv2.GC_BGD) and not np.any(mask == cv2.GC_PR_BGD):
        return None
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(img8, mask, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return None
    out = np.zeros((h, w), np.float32)
    out[y0:y1, x0:x1] = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return out


def _keep_components(mask: np.ndarray, seeds: np.ndarray | None, min_frac: float) -> np.ndarray:
    """Connected components of a bool mask: those touching ``seeds`` (or the largest
    ones when no seeds), dropping specks; holes filled."""
    m8 = mask.astype(np.uint8)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m8, connectivity=8)
    if n <= 1:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    if seeds is not None and np.any(seeds & mask):
        keep = np.zeros(n, bool)
        keep[np.unique(lab[seeds & mask])] = True
        keep[0] = False
    else:
        keep = np.zeros(n, bool)
        keep[1:] = areas >= max(min_frac * mask.size, 0.25 * areas.max())
    keep[1:] &= areas >= min_frac * mask.size
    out = keep[lab]
    # Fill holes: background components not touching the border.
    inv = (~out).astype(np.uint8)
    n2, lab2, _, _ = cv2.connectedComponentsWithStats(inv, connectivity=4)
    if n2 > 1:
        border = np.unique(np.concatenate([lab2[0], lab2[-1], lab2[:, 0], lab2[:, -1]]))
        hole = np.ones(n2, bool)
        hole[border] = False
        hole[0] = False
        # Only fill small holes (not the gap between an arm and the body).
        sizes = np.bincount(lab2.ravel(), minlength=n2)
        hole &= sizes < 0.01 * mask.size
        out |= hole[lab2]
    return out


def _outline_contrast(lab: np.ndarray, mask: np.ndarray) -> float:
    """Median CIELab difference between the colours just inside and just outside the
    mask's outline, compared locally along it."""
    m = mask.astype(np.uint8)
    k5 = np.ones((5, 5), np.uint8)
    inner = (m - cv2.erode(m, k5)).astype(np.float32)
    outer = (cv2.dilate(m, k5) - m).astype(np.float32)
    box = (9, 9)
    wi, wo = cv2.blur(inner, box), cv2.blur(outer, box)
    ai = cv2.blur(lab * inner[..., None], box) / (wi[..., None] + 1e-6)
    ao = cv2.blur(lab * outer[..., None], box) / (wo[..., None] + 1e-6)
    edge = (m - cv2.erode(m, np.ones((3, 3), np.uint8))) > 0
    valid = edge & (wi > 0.05) & (wo > 0.05)
    if valid.sum() < 8:
        return 0.0
    return float(np.median(np.linalg.norm((ai - ao)[valid], axis=-1)))


def _segment(rgb: np.ndarray, gray: np.ndarray, faces):
    """(soft subject probability at full size or None, per-pixel face label or None)."""
    h, w = gray.shape
    small, s = _resize_long(rgb, _GRABCUT_SIDE if faces else _GRABCUT_SIDE_SALIENCY)
    sh, sw = small.shape[:2]
    if faces:
        sfaces = [(x * s, y * s, fw * s, fh * s) for (x, y, fw, fh) in faces]
        init, label_s = _person_prior(sh, sw, sfaces)
        sal = None
    else:
        if min(sh, sw) < 12:
            return None, None
        init, sal = _saliency_prior(small)
        label_s = None
    fg = _grabcut(small, init, 3 if faces else 2)
    if fg is None:
        return None, None
    # Refine at full resolution: upsample, guided filter on the photo, threshold.
    up = cv2.resize(fg, (w, h), interpolation=cv2.INTER_LINEAR) if s < 1 else fg
    r = max(2, int(round(2.0 / max(s, 1e-6))), int(min(h, w) / 160))
    soft = np.clip(guided_filter(gray, up, r, 2e-3), 0.0, 1.0)
    hard = soft >= 0.5
    if faces:
        seeds = np.zeros((h, w), bool)
        for (x, y, fw, fh) in faces:
            cx, cy = int(x + fw / 2), int(y + fh / 2)
            seeds[max(0, cy - int(fh / 4)):cy + int(fh / 4) + 1,
                  max(0, cx - int(fw / 4)):cx + int(fw / 4) + 1] = True
        hard = _keep_components(hard, seeds, 0.001)
    else:
        hard = _keep_components(hard, None, 0.005)
    frac = hard.mean()
    if not faces:
        # Plausibility of a saliency subject: size, saliency contrast, not the sky.
        if not (0.03 <= frac <= 0.6):
            return None, None
        sal_full = cv2.resize(sal, (w, h), interpolation=cv2.INTER_LINEAR) if s < 1 else sal
        inside, outside = sal_full[hard].mean(), sal_full[~hard].mean()
        if inside < 1.6 * outside + 0.05:
            return None, None
        if hard[0].mean() > 0.3:
            return None, None
        # One object, not scattered pieces (eyes and nose of a close-up face).
        n, _, stats, _ = cv2.connectedComponentsWithStats(hard.astype(np.uint8), connectivity=8)
        if n > 2 and stats[1:, cv2.CC_STAT_AREA].max() < 0.75 * hard.sum():
            return None, None
        # The outline must follow a colour edge: an outline through uniform texture (a
        # close-up whose subject fills the frame) would cut the mesh in the wrong place.
        if _outline_contrast(cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab), hard) < 18.0:
            return None, None
    elif frac < 0.002:
        return None, None
    soft = np.where(hard, np.maximum(soft, 0.5), np.minimum(soft, 0.499))
    # Outside the kept components the probability fades out (dropped specks are 0).
    near = cv2.dilate(hard.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0
    soft = np.where(near, soft, 0.0).astype(np.float32)
    label = None
    if label_s is not None:
        label = cv2.resize(label_s.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
        label = label.astype(np.int32)
    return soft, (hard, label)


# ----------------------------------------------------------------------------- scene prior

def _ramp(h: int, w: int, v_horizon: float, z_bottom: float, z_horizon: float,
          z_top: float) -> np.ndarray:
    """Depth per row: linear in disparity from the bottom to the horizon (a ground plane),
    then slowly receding to the top (walls, trees, far terrain)."""
    v = (np.arange(h, dtype=np.float32) + 0.5) / h
    vh = float(np.clip(v_horizon, 0.05, 0.95))
    db, dh, dt = 1 / z_bottom, 1 / z_horizon, 1 / z_top
    below = dh + (db - dh) * np.clip((v - vh) / (1 - vh), 0, 1)
    above = dt + (dh - dt) * np.clip(v / vh, 0, 1)
    disp = np.where(v >= vh, below, above)
    return np.broadcast_to((1.0 / disp)[:, None], (h, w)).astype(np.float32)


# ----------------------------------------------------------------------------- main

def estimate(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """rgb: float32 (H, W, 3) in [0, 1], sRGB, upright, long side <= ~640 px.

    Returns (depth, subject): depth float32 (H, W) z-depth, strictly positive and finite,
    in nominal metres (main subject around 1.5-3 m, far background up to ~20-30 m);
    subject: float32 (H, W) in [0, 1], the probability of the main subject (person /
    salient foreground), or None when none was found."""
    img = _as_rgb(rgb)
    h, w = img.shape[:2]
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    f = _focal_px(h, w)

    try:
        faces = find_faces(gray)
    except cv2.error:
        faces = []
    face_frac = max((b[2] / max(h, w) for b in faces), default=0.0)
    # 0 = general scene, 1 = close portrait (large face): background becomes a wall.
    portrait = float(np.clip((face_frac - 0.05) / 0.07, 0, 1))

    # ---- scene prior
    sky = sky_mask(img, strict=portrait > 0.5)
    v_h = _V_HORIZON
    if sky.any():
        cols = sky.any(axis=0)
        lowest = h - 1 - np.argmax(sky[::-1], axis=0)           # lowest sky row per column
        v_h = float(np.clip(np.median(lowest[cols]) / h + 0.02, 0.15, 0.75))
    bg = _ramp(h, w, v_h, _Z_BOTTOM, _Z_HORIZON, _Z_TOP)

    # ---- subject
    try:
        soft, extra = _segment(img, gray, faces)
    except Exception:
        soft, extra = None, None
    if soft is None:
        depth = np.where(sky, np.float32(_Z_SKY), bg)
        return _finish(depth), None
    hard, label = extra

    foot = int(np.nonzero(hard.any(axis=1))[0].max())     # lowest row of the subject
    if faces:
        zf = np.array([np.clip(_FACE_WIDTH_M * f / b[2], _Z_SUBJ_MIN, _Z_SUBJ_MAX) for b in
                       sorted(faces, key=lambda b: b[2])], np.float32)
        z_subj = np.full((h, w), zf[-1], np.float32)           # nearest (largest) face
        if label is not None and len(zf) > 1:
            # Each mask pixel takes the depth of the person whose prior it falls in, or
            # of the nearest one.
            from scipy import ndimage
            lab = np.where(hard, label, 0)
            if lab.any():
                idx = ndimage.distance_transform_edt(lab == 0, return_distances=False,
                                                     return_indices=True)
                lab = lab[idx[0], idx[1]]
                z_subj = zf[np.clip(lab - 1, 0, len(zf) - 1)]
                z_subj = cv2.GaussianBlur(z_subj, (0, 0), max(1.0, 0.01 * max(h, w)))
        z0 = float(zf[-1])
    else:
        # Standing on the ground where its lowest point is.
        z0 = float(np.clip(bg[min(foot, h - 1), 0], _Z_SUBJ_MIN, _Z_SUBJ_MAX))
        z_subj = np.full((h, w), z0, np.float32)

    # Portrait: a mild, nearly planar wall some way behind the subject.
    if portrait > 0:
        v = (np.arange(h, dtype=np.float32) + 0.5) / h
        disp = 1 / (2.0 * z0) + (1 / (2.6 * z0) - 1 / (2.0 * z0)) * (1 - v)
        wall = np.broadcast_to((1 / disp)[:, None], (h, w))
        bg = ((1 - portrait) * bg + portrait * wall).astype(np.float32)

    # Volume: a dome from the distance transform (outline farther than the centre).
    m8 = hard.astype(np.uint8)
    dist = cv2.distanceTransform(m8, cv2.DIST_L2, 5)
    radius = max(1.0, float(np.percentile(dist[hard], 98)))
    if faces:
        # A rounded rim about a head wide rather than one dome over the whole person, so
        # the head (thin in the distance transform) is not pushed behind the chest.
        radius = min(radius, max(1.0, 0.8 * max(b[2] for b in faces)))
    t = np.clip(dist / radius, 0, 1)
    dome = np.sqrt(1 - (1 - t) ** 2)
    relief = _BODY_RELIEF * radius * z_subj / f
    relief = np.minimum(relief, 0.25 * z_subj)
    zs = z_subj + relief * (1 - dome)
    # Face relief: nose / centre of each face forward.
    if faces:
        yy = np.arange(h, dtype=np.float32)[:, None]
        xx = np.arange(w, dtype=np.float32)[None, :]
        bump = np.zeros((h, w), np.float32)
        for (x, y, fw, fh) in faces:
            cx, cy = x + fw / 2, y + 0.55 * fh
            zface = float(np.clip(_FACE_WIDTH_M * f / fw, _Z_SUBJ_MIN, _Z_SUBJ_MAX))
            amp = (_FACE_RELIEF_M / _FACE_WIDTH_M) * fw * zface / f
            x0, x1 = int(max(0, cx - 1.2 * fw)), int(min(w, cx + 1.2 * fw + 1))
            y0, y1 = int(max(0, cy - 1.2 * fh)), int(min(h, cy + 1.2 * fh + 1))
            if x1 <= x0 or y1 <= y0:
                continue
            g = np.exp(-(((xx[:, x0:x1] - cx) / (0.3 * fw)) ** 2
                         + ((yy[y0:y1] - cy) / (0.38 * fh)) ** 2) / 2)
            bump[y0:y1, x0:x1] = np.maximum(bump[y0:y1, x0:x1], amp * g)
        zs = zs - bump * hard

    # Background at least a clear step behind the subject's outline, above its foot
    # line (the ground in front of the subject stays nearer); a smooth blend in rows.
    z_edge = float(np.max((z_subj + relief)[hard]))
    v = np.arange(h, dtype=np.float32)
    band = max(2.0, 0.06 * h)
    wrow = np.clip((foot - v) / band, 0, 1)[:, None] if foot < h - 1 else np.ones((h, 1), np.float32)
    bg = np.maximum(bg, (1 - wrow) * bg + wrow * (_SEPARATION * z_edge))
    depth = np.where(sky & ~hard, np.float32(_Z_SKY), bg)
    depth = np.where(hard, zs, depth)
    return _finish(depth), np.ascontiguousarray(soft, dtype=np.float32)


def _finish(depth: np.ndarray) -> np.ndarray:
    d = np.nan_to_num(np.asarray(depth, np.float32), nan=_Z_TOP, posinf=_Z_MAX, neginf=_Z_MIN)
    return np.ascontiguousarray(np.clip(d, _Z_MIN, _Z_MAX), dtype=np.float32)
