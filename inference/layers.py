"""Occlusion edges and the split into a photo layer and the hidden background layer.

Depth is handled as disparity (1/z): a plane is affine in disparity over the image, so
its neighbour-to-neighbour disparity steps are constant, while an occlusion edge is a
step far larger than its neighbours' steps. That separates slanted floors and walls
(never cut) from the outline of an object standing in front of something (always cut),
as far as the depth can be trusted: given its confidence, a step the depth is unsure of
(no colour edge beside it, the model's passes disagreeing) becomes a gentle ramp instead
of a cut, and the crumbs a ragged edge leaves join the pieces round them.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from . import masks

# A step is an occlusion edge when it changes disparity by more than this fraction...
REL_JUMP = 0.04
# ...and is this many times larger than the smaller of the steps just before and after it.
STEP_RATIO = 2.5
# Pieces of the photo layer smaller than this (in pixels) are flying fragments of a
# blurred edge, not objects: they are left to the background layer.
MIN_PIECE = 12
# With the depth's confidence known (depth/confidence.py; it already holds whether the
# photo shows a colour edge at a step): a step is cut only where the confidence on its
# two sides averages at least CUT_SURE, or where it is too large to bridge (the depth
# changing by more than KEEP_STEP, relative disparity: 2x in depth) ...
CUT_SURE = 0.25
KEEP_STEP = 0.5
# ... and an unsure step is relaxed into a ramp over this many pixels each side of it
# (a harmonic fill, HARMONIC_STEPS Jacobi sweeps), which the mesh stretches over instead
# of tearing: a ragged step cut where it wanders left crumbs that floated free.
RELAX_BAND = 2
HARMONIC_STEPS = 30
# Pieces smaller than this share of the frame (MIN_PIECE pixels at least) are then crumbs
# of a misplaced edge: they join the pieces round them.
CRUMB_SHARE = 2e-4
# Larger pieces, up to this share of the frame, join them too when their outline is unsure
# (mean confidence along it under BLOB_SURE): patches the depth put far inside what it put
# near (the blurred background by scikit-image's cat) floated over their fill as the camera
# moved, their outline being a guess.
BLOB_SHARE = 5e-3
BLOB_SURE = 0.5


@dataclass
class Layers:
    depth: np.ndarray      # (H, W) z-depth of the photo layer
    cut_h: np.ndarray      # (H, W-1) bool: edge between (v, u) and (v, u+1) is an occlusion edge
    cut_v: np.ndarray      # (H-1, W) bool: edge between (v, u) and (v+1, u)
    near: np.ndarray       # (H, W) bool: in front of what lies across a nearby occlusion edge
    hidden: np.ndarray     # (H, W) bool: near pixels the camera can see behind (to be inpainted)
    context: np.ndarray    # (H, W) bool: background pixels usable as inpainting context
    context_weight: np.ndarray  # (H, W) float32: trust in each context pixel as background


def _steps(d: np.ndarray, axis: int) -> np.ndarray:
    return np.diff(d, axis=axis)


def _edge_cuts(disp: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Occlusion cuts between neighbours along ``axis``, and every step's relative size."""
    sd = _steps(disp, axis)
    step = np.abs(sd)
    hi = np.maximum(disp[:-1] if axis == 0 else disp[:, :-1], disp[1:] if axis == 0 else disp[:, 1:])
    rel = step / np.maximum(hi, 1e-12)
    big = rel > REL_JUMP
    # Neighbouring steps along the same line (edge-replicated at the borders).
    pad = [(0, 0), (0, 0)]
    pad[axis] = (1, 1)
    sp = np.pad(step, pad, mode="edge")
    if axis == 0:
        before, after = sp[:-2], sp[2:]
    else:
        before, after = sp[:, :-2], sp[:, 2:]
    cut = big & (step > STEP_RATIO * np.minimum(before, after))
    # A one-pixel ridge or pit (a thin pole; a pixel the sharpening gave to the other
    # side alone): its two steps are alike, so neither is larger than its neighbours,
    # but it is no plane either, the two go opposite ways.
    sp = np.pad(sd, pad, mode="constant")
    b_s, a_s = (sp[:-2], sp[2:]) if axis == 0 else (sp[:, :-2], sp[:, 2:])
    spike = ((b_s * sd < 0) & (np.abs(b_s) > 0.5 * step)) | ((a_s * sd < 0) & (np.abs(a_s) > 0.5 * step))
    return cut | (big & spike), rel


def occlusion_edges(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    disp = masks.disparity(depth)
    return _edge_cuts(disp, 1)[0], _edge_cuts(disp, 0)[0]


def label_grid(nodes: np.ndarray | None, link_h: np.ndarray, link_v: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected pieces of a pixel grid whose neighbours are joined where ``link_h`` (H, W-1)
    / ``link_v`` (H-1, W) say so: labels 1..n on ``nodes`` (all pixels when None), 0 elsewhere.
    OpenCV labels a (2H-1, 2W-1) image holding the pixels at even and the links at odd
    places: ~10x faster than a sparse graph's connected_components at 1 MP."""
    h, w = link_v.shape[0] + 1, link_h.shape[1] + 1
    g = np.zeros((2 * h - 1, 2 * w - 1), np.uint8)
    g[::2, ::2] = 1 if nodes is None else nodes
    g[::2, 1::2] = link_h
    g[1::2, ::2] = link_v
    if nodes is not None:      # a link joins two nodes only
        g[::2, 1::2] &= g[::2, :-1:2] & g[::2, 2::2]
        g[1::2, ::2] &= g[:-1:2, ::2] & g[2::2, ::2]
    n, lab = cv2.connectedComponents(g, connectivity=4, ltype=cv2.CV_32S)
    return n - 1, lab[::2, ::2]


def pieces(cut_h: np.ndarray, cut_v: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected pieces of the pixel grid with the occlusion edges removed (labels 0..n-1)."""
    n, lab = label_grid(None, ~cut_h, ~cut_v)
    return n, lab - 1


def _edge_pairs(depth, cut_h, cut_v):
    """For every cut: (near pixel flat index, far pixel flat index)."""
    h, w = depth.shape
    idx = np.arange(h * w).reshape(h, w)
    p = np.concatenate([idx[:, :-1][cut_h], idx[:-1, :][cut_v]])
    q = np.concatenate([idx[:, 1:][cut_h], idx[1:, :][cut_v]])
    z = depth.ravel()
    p_near = z[p] < z[q]
    near = np.where(p_near, p, q)
    far = np.where(p_near, q, p)
    return near, far


SUBJECT_STEP = 0.15     # steps inside a subject smaller than this (relative disparity) never cut


def _cuts(depth: np.ndarray, inner: np.ndarray | None, with_rel: bool = False):
    """Occlusion edges, less the small steps well inside the subject (``inner``): the
    subject is one layer, and a learned depth's steps across a face or a sleeve would open
    as cracks when the camera moves. Outlines and real gaps (an arm in front of the body)
    keep their cuts. ``with_rel``: also every step's relative size (rel_h, rel_v)."""
    disp = masks.disparity(depth)
    (cut_h, rel_h), (cut_v, rel_v) = _edge_cuts(disp, 1), _edge_cuts(disp, 0)
    if inner is not None:
        cut_h = cut_h & ~(inner[:, :-1] & inner[:, 1:] & (rel_h < SUBJECT_STEP))
        cut_v = cut_v & ~(inner[:-1, :] & inner[1:, :] & (rel_v < SUBJECT_STEP))
    return (cut_h, cut_v, rel_h, rel_v) if with_rel else (cut_h, cut_v)


def sure_cuts(depth: np.ndarray, confidence: np.ndarray, inner: np.ndarray | None = None,
              keep: np.ndarray | None = None):
    """(depth, cut_h, cut_v): the occlusion cuts where the depth is sure of its step, and
    the depth relaxed into a ramp across the others. ``keep``: pixels whose cuts stay (a
    subject's outline, settled on its mask already)."""
    cut_h, cut_v, rel_h, rel_v = _cuts(depth, inner, with_rel=True)
    c = confidence.astype(np.float32)
    ok_h = (0.5 * (c[:, :-1] + c[:, 1:]) >= CUT_SURE) | (rel_h > KEEP_STEP)
    ok_v = (0.5 * (c[:-1, :] + c[1:, :]) >= CUT_SURE) | (rel_v > KEEP_STEP)
    if keep is not None:
        ok_h |= keep[:, :-1] | keep[:, 1:]
        ok_v |= keep[:-1, :] | keep[1:, :]
    drop_h, drop_v = cut_h & ~ok_h, cut_v & ~ok_v
    if not (drop_h.any() or drop_v.any()):
        return depth, cut_h, cut_v
    cut_h, cut_v = cut_h & ok_h, cut_v & ok_v
    # The band round the dropped steps is refilled smoothly from the pixels round it:
    # harmonic (each pixel the mean of its neighbours, in disparity), never across a kept
    # cut, so a dropped step becomes a ramp over the band and a kept one stays a step.
    band = masks.grow(masks.cut_sides(drop_h, drop_v), RELAX_BAND) & ~masks.cut_sides(cut_h, cut_v)
    disp = masks.disparity(depth)
    return (np.float32(1.0) / np.maximum(_harmonic(disp, band, cut_h, cut_v), np.float32(1e-12))), cut_h, cut_v


def _harmonic(values: np.ndarray, free: np.ndarray, cut_h: np.ndarray, cut_v: np.ndarray) -> np.ndarray:
    """``values`` with the ``free`` pixels replaced by the harmonic fill from the others,
    neighbours joined unless cut (Jacobi iterations over the free pixels alone)."""
    h, w = values.shape
    v = values.astype(np.float32).ravel().copy()
    idx = np.flatnonzero(free)
    if not len(idx):
        return values
    y, x = np.divmod(idx, w)
    # (padded to the grid's size: the pair past the last column or row is outside anyway)
    cut_h, cut_v = np.pad(cut_h, ((0, 0), (0, 1))), np.pad(cut_v, ((0, 1), (0, 0)))
    nbs, oks = [], []
    for dy, dx in ((0, -1), (0, 1), (-1, 0), (1, 0)):
        yy, xx = y + dy, x + dx
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        yc, xc = np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)
        if dy == 0:
            cut = cut_h[y, np.minimum(x, xc)]
        else:
            cut = cut_v[np.minimum(y, yc), x]
        nbs.append(yc * w + xc)
        oks.append((inside & ~cut).astype(np.float32))
    nb, ok = np.stack(nbs), np.stack(oks)
    count = ok.sum(0)
    has = count > 0
    nb, ok, idx, count = nb[:, has], ok[:, has], idx[has], count[has]
    for _ in range(HARMONIC_STEPS):
        v[idx] = (v[nb] * ok).sum(0) / count
    return v.reshape(h, w)


def _nearest_outside(mask: np.ndarray) -> np.ndarray:
    """Flat index, for every pixel, of a nearest pixel (in 4-neighbour steps) outside
    ``mask``: a breadth-first fill over the masked pixels alone (few and small here; a
    distance transform of the whole grid cost 0.1 s at 1 MP)."""
    h, w = mask.shape
    src = np.arange(h * w)
    todo = np.flatnonzero(mask)
    src[todo] = -1
    y, x = np.divmod(todo, w)
    nbs = np.stack([y * w + np.maximum(x - 1, 0), y * w + np.minimum(x + 1, w - 1),
                    np.maximum(y - 1, 0) * w + x, np.minimum(y + 1, h - 1) * w + x])
    while len(todo):
        found = src[nbs]                                  # (4, n): the neighbours' sources so far
        pick = np.where(found >= 0, found, np.iinfo(src.dtype).max).min(0)
        done = pick < np.iinfo(src.dtype).max
        if not done.any():
            break                                         # (a mask filling the whole grid)
        src[todo[done]] = pick[done]
        todo, nbs = todo[~done], nbs[:, ~done]
    return np.where(src >= 0, src, np.arange(h * w))


def merge_crumbs(depth: np.ndarray, cut_h: np.ndarray, cut_v: np.ndarray, min_piece: int,
                 near: np.ndarray | None = None, also: np.ndarray | None = None):
    """(depth, cut_h, cut_v, near) with the pieces under ``min_piece`` pixels merged into
    the pieces round them: each crumb pixel joins the piece of the nearest pixel outside
    every crumb and takes that pixel's depth (and whether it is ``near``), so a crumb
    between two sides is shared out between them, with no speck left floating and no
    triangle stretched across. Pixels in no uncut 2x2 block (a piece's one-pixel-wide
    spur) count as crumbs too: the mesh has no triangle there, and the margin's flaps
    hung from them (mesh.grid_mesh) floated as slivers of their own. ``also``: more pixels
    to merge so (``unsure_blobs``)."""
    n, lab = pieces(cut_h, cut_v)
    sizes = np.bincount(lab.ravel(), minlength=n)
    crumb = sizes[lab] < min_piece
    if also is not None:
        crumb |= also
    quad = ~cut_h[:-1] & ~cut_h[1:] & ~cut_v[:, :-1] & ~cut_v[:, 1:]
    covered = np.zeros_like(crumb)
    covered[:-1, :-1] |= quad
    covered[:-1, 1:] |= quad
    covered[1:, :-1] |= quad
    covered[1:, 1:] |= quad
    crumb |= ~covered
    if not crumb.any() or crumb.all():
        return depth, cut_h, cut_v, near
    src = _nearest_outside(crumb)
    depth = depth.ravel()[src].reshape(crumb.shape)
    if near is not None:
        near = near.ravel()[src].reshape(crumb.shape)
    lab = lab.ravel()[src].reshape(crumb.shape)
    # Cuts between crumb pixels and their neighbours: where the two joined different
    # pieces, or the two sides of a cut that ends inside one piece.
    disp = masks.disparity(depth)
    touch_h, touch_v = crumb[:, :-1] | crumb[:, 1:], crumb[:-1, :] | crumb[1:, :]
    jump_h = np.abs(np.diff(disp, axis=1)) > REL_JUMP * np.maximum(disp[:, :-1], disp[:, 1:])
    jump_v = np.abs(np.diff(disp, axis=0)) > REL_JUMP * np.maximum(disp[:-1], disp[1:])
    cut_h = np.where(touch_h, (lab[:, :-1] != lab[:, 1:]) | jump_h, cut_h)
    cut_v = np.where(touch_v, (lab[:-1, :] != lab[1:, :]) | jump_v, cut_v)
    return depth, cut_h, cut_v, near


def unsure_blobs(cut_h: np.ndarray, cut_v: np.ndarray, confidence: np.ndarray, max_piece: int,
                 keep: np.ndarray | None = None) -> np.ndarray:
    """Pixels of the pieces under ``max_piece`` pixels whose outline is unsure: the mean
    confidence of the pixels along their cuts is under BLOB_SURE. Pieces mostly in ``keep``
    (the subject) stay."""
    n, lab = pieces(cut_h, cut_v)
    sizes = np.bincount(lab.ravel(), minlength=n)
    small = sizes < max_piece
    if not small.any():
        return np.zeros(lab.shape, bool)
    edge = masks.cut_sides(cut_h, cut_v)
    on = lab[edge]
    total = np.bincount(on, weights=confidence[edge], minlength=n)
    count = np.bincount(on, minlength=n)
    unsure = small & (count > 0) & (total < BLOB_SURE * np.maximum(count, 1))
    if keep is not None:
        unsure &= np.bincount(lab.ravel(), weights=keep.ravel(), minlength=n) < 0.5 * sizes
    return unsure[lab]


def split_layers(depth: np.ndarray, band: int, subject: np.ndarray | None = None,
                 confidence: np.ndarray | None = None) -> Layers:
    """Find occlusion edges and the regions a moving camera can see behind.

    ``band``: how far (in pixels at this resolution) the camera path can look behind an
    edge; the hidden region is at most this deep into the near side.
    ``subject``: optional subject mask; a subject counts as near as a whole, so that a
    person is one foreground layer even where the depth blurs part of their outline.
    ``confidence``: optional per-pixel confidence of the depth (1 = sure): only sure steps
    are cut, unsure ones become ramps (``sure_cuts``), and crumbs join their neighbours
    (``merge_crumbs``).
    """
    depth = depth.astype(np.float32)
    h, w = depth.shape
    inner = masks.shrink(subject > 0.5, 3) if subject is not None else None
    cut_h, cut_v = _cuts(depth, inner)
    n, lab = pieces(cut_h, cut_v)

    # Tiny pieces are fragments of a smeared edge: merge them with the far side so that
    # they do not float as confetti in front of the background.
    sizes = np.bincount(lab.ravel(), minlength=n)
    tiny = sizes[lab] < MIN_PIECE
    if tiny.any():
        grown = ndimage.grey_dilation(np.where(tiny, 0, depth), size=3)
        depth = np.where(tiny, np.maximum(depth, grown), depth).astype(np.float32)
        cut_h, cut_v = _cuts(depth, inner)
        n, lab = pieces(cut_h, cut_v)
    min_piece = max(MIN_PIECE, int(round(CRUMB_SHARE * h * w)))
    if confidence is not None:
        keep = None
        if subject is not None:
            sub = subject > 0.5
            keep = masks.grow(sub, 2) & ~masks.shrink(sub, 2)
        depth, cut_h, cut_v = sure_cuts(depth, confidence, inner, keep)
        blobs = unsure_blobs(cut_h, cut_v, confidence, int(BLOB_SHARE * h * w),
                             subject > 0.5 if subject is not None else None)
        depth, cut_h, cut_v, _ = merge_crumbs(depth, cut_h, cut_v, min_piece, also=blobs)
        n, lab = pieces(cut_h, cut_v)

    near_px, far_px = _edge_pairs(depth, cut_h, cut_v)
    # A piece is "near" when most of its occlusion boundary has it on the near side.
    lab_f = lab.ravel()
    votes = np.bincount(lab_f[near_px], minlength=n) - np.bincount(lab_f[far_px], minlength=n)
    piece_near = votes > 0
    # A piece covering most of the frame is the scene itself, not an object in front of it.
    sizes = np.bincount(lab_f, minlength=n)
    piece_near &= sizes < 0.6 * h * w
    near = piece_near[lab]
    if subject is not None:
        near |= subject > 0.5

    # The near region is its own layer: cut the mesh all along its outline (a subject
    # mask may add outline where the depth itself is smooth).
    cut_h |= near[:, :-1] != near[:, 1:]
    cut_v |= near[:-1, :] != near[1:, :]
    if confidence is not None:
        # (the outline can leave crumbs of its own: a subject mask's speck or pinhole)
        depth, cut_h, cut_v, near = merge_crumbs(depth, cut_h, cut_v, min_piece, near)
        n, lab = pieces(cut_h, cut_v)
        lab_f = lab.ravel()
        near_px, far_px = _edge_pairs(depth, cut_h, cut_v)

    # Hidden band: pixels within ``band`` of the near side of an occlusion edge (or of the
    # near region's outline), on that same side.
    seeds = np.zeros(h * w, bool)
    seeds[near_px] = True
    seeds = seeds.reshape(h, w) | (near & ~masks.shrink(near, 1, outside=True))
    if seeds.any() and band > 0:
        dist, (iv, iu) = ndimage.distance_transform_edt(~seeds, return_indices=True)
        # Same side: the seed's piece and nearer than what lies across its cut. A piece can
        # reach round an edge (a box standing on the floor is one piece with the wall
        # behind it): without the depth test the band spread over the far side too, and
        # a pagoda's band took half the sky.
        disp = 1.0 / np.maximum(depth, 1e-9)
        behind = np.zeros(h * w, np.float32)
        np.maximum.at(behind, near_px, disp.ravel()[far_px])
        behind = behind.reshape(h, w)[iv, iu]
        same_side = ((lab[iv, iu] == lab) & (disp > behind * (1 + 0.5 * REL_JUMP))) | (near & near[iv, iu])
        hidden = (dist <= band) & same_side
    else:
        hidden = np.zeros((h, w), bool)
    context = ~near & ~hidden
    # Pieces that stand in front of something themselves (an object partly hiding
    # another) are weak context: they fill a hole only where nothing farther is around.
    occluder = np.bincount(lab_f[near_px], minlength=n) > 0
    context_weight = np.where(context, np.where(occluder[lab], 0.05, 1.0), 0.0).astype(np.float32)
    return Layers(depth, cut_h, cut_v, near, hidden, context, context_weight)
