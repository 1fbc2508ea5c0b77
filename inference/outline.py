"""A subject's outline: depth settled on both sides of it, and the mask grown to the photo's edge.

A depth model's output is blurred across a subject's outline: the wall's depth rises
towards it over a dozen model pixels, and its own outermost pixels sink towards the
wall. Cut as occlusion edges, both become strips at in-between depths: wall pixels
(with the subject's colour mixed in) and the subject's rim floating between the two
layers, stretched into streaks as soon as the camera moves (purple strokes round an
astronaut's helmet, dark spikes off a pagoda's roof). The mask is sharper than the depth,
so the depth is made to agree with it: outside, the ramp is replaced by the wall
continued towards the outline (Laplace's equation in disparity from beyond the ramp);
inside, the rim takes the subject's depth from just inside it.

A person's mask (a segmenter's) is the sharpest; a depth model's own subject can miss a
part of what it stands for (a pagoda's roof wing), so only what is coloured like the
background goes back.
"""
from __future__ import annotations

import cv2
import numpy as np

from . import masks
from .inpaint import poisson_fill
from .layers import REL_JUMP, occlusion_edges, pieces

# The least share of the frame a part of the subject beyond a person must cover to keep its
# own outline; smaller bits are the model's clutter (flecks of a shuttle model behind an
# astronaut), which settled on their own outlines tore off as floating flecks.
OWN_PART_SHARE = 0.005
# A part of a model's subject whose outline shows less colour contrast than this (RGB
# distance of the local means either side, measured at DISTINCT_SCALE of the frame) is a
# piece of a larger surface, not an object (distinct_parts).
DISTINCT = 0.07
DISTINCT_SCALE = 0.01


def outline_mask(subject: np.ndarray, person: np.ndarray | None, reach: float) -> np.ndarray:
    """The mask whose outline the depth is settled on: a person's where one is found, the
    model's subject elsewhere. Round a person the model's subject is only their blurred halo
    (within ``reach`` pixels), which the person's mask replaces; large parts of the subject
    that reach beyond it are something else (a cup the segmenter half took for a person)
    and keep their own outline, with the subject joining them to the person."""
    if person is None:
        return subject
    r = max(1, int(round(reach)))
    beyond = subject & ~masks.grow(person, r)
    big = masks.large_parts(beyond, OWN_PART_SHARE)
    if not big.any():
        return person
    return person | (subject & masks.grow(big, r))


def distinct_parts(subject: np.ndarray, rgb: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """The parts of a model's ``subject`` that stand out in colour from what surrounds them.

    A small model also marks as subject a piece of something larger: the top corner of a
    building's facade, a stretch of a lattice tower against the sky. Settled on its outline, such a
    piece tears off the rest of its surface when the camera moves. Along a true outline the
    colour inside differs from the colour outside; along such a piece's, it does not. A part
    goes when the median colour contrast across its outline (local means on either side,
    RGB in [0, 1], at ``DISTINCT_SCALE`` of the frame's long side) is under ``DISTINCT``;
    parts touching ``keep`` (a person the segmenter found) stay."""
    n, lab = cv2.connectedComponents(subject.astype(np.uint8), connectivity=8)
    if n <= 1:
        return subject
    h, w = subject.shape
    sigma = max(2.0, DISTINCT_SCALE * max(h, w))
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    inside = cv2.erode(subject.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    rim = subject & ~inside
    rim[:2], rim[-2:], rim[:, :2], rim[:, -2:] = False, False, False, False     # the frame cuts there
    kept = np.zeros(n, bool)
    kept[0] = True
    if keep is not None:
        kept[np.unique(lab[keep])] = True
    out = subject.copy()
    for i in range(1, n):
        if kept[i]:
            continue
        part = lab == i
        ys, xs = np.nonzero(part & rim)
        if ys.size < 10:
            continue
        # Local means on either side of the outline, over a window round the part only.
        y0, y1 = max(0, ys.min() - int(3 * sigma)), min(h, ys.max() + int(3 * sigma) + 1)
        x0, x1 = max(0, xs.min() - int(3 * sigma)), min(w, xs.max() + int(3 * sigma) + 1)
        m = part[y0:y1, x0:x1].astype(np.float32)
        c = rgb[y0:y1, x0:x1]
        at = (ys - y0, xs - x0)
        contrast = _local_mean(c, m, sigma, at) - _local_mean(c, 1 - m, sigma, at)
        if np.median(np.linalg.norm(contrast, axis=1)) < DISTINCT:
            out[part] = False
    return out


def _local_mean(rgb: np.ndarray, weight: np.ndarray, sigma: float, at: tuple) -> np.ndarray:
    """The ``weight``-ed local mean colour of ``rgb`` at the pixels ``at`` (rows, cols)."""
    den = np.maximum(cv2.GaussianBlur(weight, (0, 0), sigma)[at], 1e-6)
    return cv2.GaussianBlur(rgb * weight[..., None], (0, 0), sigma)[at] / den[:, None]


def _nearest_at(dist: np.ndarray, region: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray] | None:
    """For each pixel, the nearest pixel of ``region`` that lies ``reach`` (to +2) from the
    outline (``dist``: distance to it); (rows, cols), or None when there is none."""
    ring = region & (dist >= reach) & (dist < reach + 2)
    if not ring.any():
        return None
    return masks.nearest(ring)


def _along(col: np.ndarray, bgc: np.ndarray, fgc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where colours ``col`` (N, 3) lie on the line from the background's colour ``bgc`` to
    the subject's ``fgc`` (0 at the background, 1 at the subject), and whether they are
    on it at all: close to the line, with contrast enough between its ends to tell."""
    diff = fgc - bgc
    n2 = (diff ** 2).sum(1)
    a = ((col - bgc) * diff).sum(1) / np.maximum(n2, 1e-9)
    resid = ((col - bgc - a[:, None] * diff) ** 2).sum(1)
    return a, (n2 > 0.1 ** 2) & (resid < 0.25 * n2 + 0.03 ** 2)


def settle(depth: np.ndarray, subject: np.ndarray, reach_out: float, reach_in: float,
           rgb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(``depth`` with the blur across ``subject``'s outline taken out, the pixels it put
    back onto the background).

    ``reach_out`` / ``reach_in``: how far (pixels) the blur runs outside / inside it.
    Outside, a pixel more than REL_JUMP nearer than the background just beyond the ramp
    is refilled from the background around it, unless it belongs to something of its own
    (a piece, bounded by occlusion edges, that reaches beyond the ramp: the helmet on the
    table beside the person, a flagpole) or lying in a hole of the mask. With the photo
    (``rgb``), only pixels coloured like the background (nearer its colour than the
    subject's, on the line between the two) go back: a depth model's own subject can miss
    a part of what it stands for (a pagoda's roof wing), which keeps its depth.
    Inside, the rim is brought forward to the depth of the subject just inside it, never
    pushed back."""
    subject = subject.astype(bool)
    raised = np.zeros_like(subject)
    if not subject.any() or subject.all():
        return depth, raised
    depth = depth.astype(np.float32)
    disp = 1.0 / np.maximum(depth, 1e-9)
    out = depth.copy()
    outside = ~subject
    d_out = cv2.distanceTransform(outside.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    d_in = cv2.distanceTransform(subject.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)

    ramp = outside & (d_out < reach_out)
    idx = _nearest_at(d_out, outside, reach_out)
    if idx is not None and ramp.any():
        beyond = disp[idx[0], idx[1]]
        raised = ramp & (disp > beyond * (1 + REL_JUMP))
        # Only on an open ramp: a pixel whose background lies much farther than the ramp
        # is wide sits in a hole or a narrow gap of the mask (inside a cup), not beside it.
        yy, xx = np.nonzero(raised)
        gap = np.hypot(idx[0][yy, xx] - yy, idx[1][yy, xx] - xx)
        raised[yy[gap > reach_out + 6], xx[gap > reach_out + 6]] = False
        if raised.any():
            # Things of their own: pieces of the scene cut from what lies around them that
            # reach beyond the ramp and are not the background the ramp is measured on.
            cut_h, cut_v = occlusion_edges(depth)
            cut_h |= subject[:, :-1] != subject[:, 1:]
            cut_v |= subject[:-1, :] != subject[1:, :]
            n, lab = pieces(cut_h, cut_v)
            far_reaching = np.bincount(lab[outside & (d_out >= reach_out + 2)], minlength=n) > 0
            raised &= ~(far_reaching[lab] & (lab != lab[idx[0], idx[1]]))
        if rgb is not None and raised.any():
            inner_idx = _nearest_at(d_in, subject, 2.5)
            if inner_idx is not None:
                py, px = np.nonzero(raised)
                a, on_line = _along(rgb[py, px], rgb[idx[0][py, px], idx[1][py, px]],
                                    rgb[inner_idx[0][py, px], inner_idx[1][py, px]])
                keep = ~on_line | (a >= 0.5)
                raised[py[keep], px[keep]] = False
        if raised.any():
            filled = poisson_fill(depth, raised, outside & ~raised)
            out[raised] = np.maximum(depth[raised], filled[raised])

    rim = subject & (d_in <= reach_in)
    idx = _nearest_at(d_in, subject, reach_in + 1)
    if idx is not None and rim.any():
        inner = disp[idx[0], idx[1]]
        sunk = rim & (disp * (1 + REL_JUMP) < inner)
        out[sunk] = 1.0 / inner[sunk]
    return out, raised


# How far along the line from the background's colour to the subject's a pixel must be to
# join the subject: under a half, for a band of a third colour between the two (a helmet's
# lavender rim between a pale wall and a black collar sits at 0.45).
GROW_LEVEL = 0.4


# An edge's mixed pixels: this far along the line from the wall's colour to the subject's,
# and up to this many pixels out from what joined the subject.
MIX_LEVEL = 0.12
MIX_PX = 2
# How different from the wall's colour (RGB distance, 0-1 sRGB) a pixel must be to count
# as something on it (the wall's own shading and JPEG noise stay within about 0.05).
UNLIKE_WALL = 0.1


def _thin_rim(img: np.ndarray, sub: np.ndarray, d_o: np.ndarray, bg_ring: np.ndarray,
              bi: tuple[np.ndarray, np.ndarray], reach: float) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of thin bands unlike the wall that run along the outside of ``sub``,
    within ``reach`` of it, the wall beyond them: a highlight on a helmet ring's polished
    rim or backlit hair, brighter than the wall and so off the line to the subject's own
    colour. Left on the wall, such a band is drawn there as a light arc once the subject
    moves off it. Something else beside the subject (a flag by a shoulder) reaches farther
    and stays. Also returns all pixels within reach that are unlike the wall."""
    near = ~sub & (d_o <= reach + 1.5)
    py, px = np.nonzero(near)
    # The wall's colour: the mean of the ring beyond round each pixel (one pixel of it
    # may be something else's: the flag's own edge).
    k = (2 * int(np.ceil(reach)) + 9,) * 2
    ring = bg_ring.astype(np.float32)
    count = cv2.boxFilter(ring, -1, k, normalize=False)
    wall = cv2.boxFilter(img * ring[..., None], -1, k, normalize=False)[py, px]
    n = count[py, px][:, None]
    wall = np.where(n > 0, wall / np.maximum(n, 1), img[bi[0][py, px], bi[1][py, px]])
    diff = img[py, px] - wall
    unlike = np.zeros_like(sub)
    unlike[py, px] = (diff ** 2).sum(1) > UNLIKE_WALL ** 2
    if not unlike.any():
        return unlike, unlike
    # What is joined, within the band's width, to such pixels farther out reaches beyond
    # (geodesically: a long arc that strays out at one end keeps the rest of its length).
    beyond = unlike & (d_o > reach)
    box = np.ones((3, 3), np.uint8)
    for _ in range(int(np.ceil(reach)) + 2):
        if not beyond.any():
            break
        beyond = (cv2.dilate(beyond.astype(np.uint8), box) > 0) & unlike
    return unlike & ~beyond, unlike


def grow_to_edge(rgb: np.ndarray, depth: np.ndarray, subject: np.ndarray,
                 reach: float) -> tuple[np.ndarray, np.ndarray]:
    """(depth, mask) with ``subject`` grown over the pixels within ``reach`` outside it that
    are more its colour than the background's, joined to it, at the depth of the nearest
    subject pixel. A segmenter's mask, upsampled several times, falls a few pixels short
    of a contrasting edge (the dark rim of a helmet against a pale wall): those pixels
    would stay on the wall and trace the subject's outline there once the camera moves.

    Each pixel is placed on the line between the background just beyond ``reach`` and the
    subject just inside its outline (past the mixed edge pixels), nearest-pixel colours
    both; a colour off that line is something else and stays."""
    subject = subject.astype(bool)
    outside = ~subject
    d_out = cv2.distanceTransform(outside.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    band = outside & (d_out <= reach)
    if not band.any() or not subject.any():
        return depth, subject
    # Only round the band.
    h, w = subject.shape
    ys, xs = np.nonzero(band)
    pad = int(reach) + 8
    y0, y1 = max(0, int(ys.min()) - pad), min(h, int(ys.max()) + pad + 1)
    x0, x1 = max(0, int(xs.min()) - pad), min(w, int(xs.max()) + pad + 1)
    sub, img, d_o = subject[y0:y1, x0:x1], rgb[y0:y1, x0:x1].astype(np.float32), d_out[y0:y1, x0:x1]
    d_i = cv2.distanceTransform(sub.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    bg_ring = ~sub & (d_o > reach + 1) & (d_o <= reach + 4)
    fg_ring = sub & (d_i > 2) & (d_i <= 5)
    if not bg_ring.any() or not fg_ring.any():
        return depth, subject
    py, px = np.nonzero(band[y0:y1, x0:x1])
    bi, fi = masks.nearest(bg_ring), masks.nearest(fg_ring)
    a, on_line = _along(img[py, px], img[bi[0][py, px], bi[1][py, px]], img[fi[0][py, px], fi[1][py, px]])
    like = on_line & (a > GROW_LEVEL)
    cand = np.zeros_like(sub)
    cand[py[like], px[like]] = True
    rim, unlike = _thin_rim(img, sub, d_o, bg_ring, bi, reach)
    cand |= rim
    # Joined to the subject.
    _, lab = cv2.connectedComponents((sub | cand).astype(np.uint8), connectivity=4)
    joined = np.zeros(lab.max() + 1, bool)
    joined[np.unique(lab[sub])] = True
    joined[0] = False
    add = cand & joined[lab]
    # The pixels between (a rim light passes through the wall's colour on its way in from
    # the subject's): a speckled band would leave islands of wall riding on the subject.
    ell = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    add |= (cv2.morphologyEx((sub | add).astype(np.uint8), cv2.MORPH_CLOSE, ell) > 0) & ~sub & ~unlike & (d_o <= reach)
    # Then the edge's mixed pixels, a step or two out: left on the wall, they trace the
    # outline there in the subject's colour once it moves off (the soft matte on the
    # subject's side takes them in, as partial alpha, instead).
    mixed = np.zeros_like(sub)
    mixed[py, px] = on_line & (a > MIX_LEVEL)
    for _ in range(MIX_PX):
        add |= masks.grow(sub | add, 1) & mixed & ~sub
    grown = subject.copy()
    grown[y0:y1, x0:x1] |= add
    if not (grown != subject).any():
        return depth, subject
    # Depth from the nearest subject pixel (within the crop), never pushed back.
    iv, iu = masks.nearest(sub)
    inner = depth[y0:y1, x0:x1][iv, iu]
    depth = depth.astype(np.float32).copy()
    new = (grown & ~subject)[y0:y1, x0:x1]
    crop = depth[y0:y1, x0:x1]
    crop[new] = np.minimum(crop[new], inner[new])
    return depth, grown
