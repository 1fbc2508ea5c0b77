"""Geometry that respects the depth's confidence (layers.split_layers with ``confidence``):
a step the depth is sure of, on a colour edge, is cut as before; an unsure one (no colour
edge beside it) becomes a ramp the mesh stretches over; crumbs join their neighbours."""
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from helpers import box_scene
from photo3d.inference import layers, mesh
from photo3d.inference.depth import confidence

H, W = 80, 100


def _ragged_step(seed=0):
    """A step from 4 m to 5 m whose place wanders row by row, with specks of either
    depth strewn along it: a model's guess of an edge it cannot see."""
    rng = np.random.default_rng(seed)
    cols = np.arange(W)[None, :]
    at = W // 2 + rng.integers(-3, 4, size=(H, 1))
    depth = np.where(cols < at, 4.0, 5.0).astype(np.float32)
    near = (np.abs(cols - at) <= 5) & (rng.random((H, W)) < 0.15)
    depth[near] = rng.choice([4.0, 5.0], size=int(near.sum()))
    return depth


def _pieces_sizes(lay):
    n, lab = layers.pieces(lay.cut_h, lay.cut_v)
    return np.bincount(lab.ravel(), minlength=n)


def _mesh_ratio(lay):
    m = mesh.grid_mesh(lay.depth, 60.0, None, lay.cut_h, lay.cut_v, margin=True)
    z = np.linalg.norm(m.positions, axis=1)[m.triangles]
    return (z.max(1) / z.min(1)).max()


def test_an_unsure_step_in_flat_colour_is_not_cut_and_leaves_no_crumbs():
    depth = _ragged_step()
    rgb = np.full((H, W, 3), 0.5, np.float32) + np.random.default_rng(1).normal(0, 0.005, (H, W, 3)).astype(np.float32)
    before = layers.split_layers(depth, band=6)
    assert (_pieces_sizes(before) < 50).sum() >= 3                                     # it crumbles without
    conf = confidence.depth_confidence(depth, rgb)
    assert conf[:, W // 2 - 3: W // 2 + 4].mean() < 0.25                               # and the step is unsure
    lay = layers.split_layers(depth, band=6, confidence=conf)
    assert not lay.cut_h.any() and not lay.cut_v.any()
    assert not lay.near.any() and not lay.hidden.any()
    # A gentle ramp: no triangle of the photo layer spans the whole step at once.
    assert _mesh_ratio(lay) < 1.2
    # Far from the step the depth is as it was.
    assert np.array_equal(lay.depth[:, :W // 2 - 12], depth[:, :W // 2 - 12])
    assert np.array_equal(lay.depth[:, W // 2 + 12:], depth[:, W // 2 + 12:])


def test_a_sure_step_on_a_colour_edge_is_cut_as_before():
    depth, rgb = box_scene()
    conf = confidence.depth_confidence(depth, rgb.astype(np.float32) / 255)
    plain = layers.split_layers(depth, band=6)
    lay = layers.split_layers(depth, band=6, confidence=conf)
    assert np.array_equal(lay.cut_h, plain.cut_h) and np.array_equal(lay.cut_v, plain.cut_v)
    assert np.array_equal(lay.near, plain.near) and np.array_equal(lay.hidden, plain.hidden)
    assert np.array_equal(lay.depth, plain.depth)


def test_a_step_too_large_to_bridge_is_cut_however_unsure():
    depth, _ = box_scene(wall=5.0, box=2.0)                  # 2.5x: a rubber sheet would be a halo
    lay = layers.split_layers(depth, band=6, confidence=np.zeros(depth.shape, np.float32))
    box = depth < 5
    assert np.array_equal(lay.cut_h, box[:, :-1] != box[:, 1:])
    assert np.array_equal(lay.near, box)


def test_crumbs_and_spurs_join_their_neighbours():
    """A sure step with a few-pixel island and a one-pixel spur beside it: the island
    joins the side round it, the spur the piece it sticks out of, and no triangle spans
    the step."""
    h, w = 300, 400                                           # crumbs: under 24 pixels here
    depth = np.full((h, w), 5.0, np.float32)
    depth[:, w // 2:] = 4.0
    depth[20:24, 20:24] = 4.0                                 # a 16-pixel island, sure and cut
    depth[50, w // 2 - 3: w // 2] = 4.0                       # a spur of the near side, one pixel wide
    assert (_pieces_sizes(layers.split_layers(depth, band=6)) == 16).any()
    lay = layers.split_layers(depth, band=6, confidence=np.ones(depth.shape, np.float32))
    sizes = _pieces_sizes(lay)
    assert len(sizes) == 2 and sizes.min() > 1000
    assert (lay.depth[20:24, 20:24] == 5.0).all()
    assert (lay.depth[50, w // 2 - 3: w // 2] == 5.0).all()
    assert _mesh_ratio(lay) < 1.01
    m = mesh.grid_mesh(lay.depth, 60.0, None, lay.cut_h, lay.cut_v, margin=True)
    t = m.triangles
    e = np.concatenate([t[:, [0, 1]], t[:, [1, 2]]])
    n = len(m.positions)
    k, lab = connected_components(coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)), directed=False)
    assert len(np.unique(lab[t[:, 0]])) == 2                 # two sides, no sliver of a third


def test_without_confidence_nothing_changes():
    depth = _ragged_step()
    a = layers.split_layers(depth, band=6)
    b = layers.split_layers(depth, band=6, confidence=None)
    assert np.array_equal(a.cut_h, b.cut_h) and np.array_equal(a.depth, b.depth)


PATCH = np.s_[30:35, 40:46]


def _patch_in_wall(outline_confidence):
    """A wall at 2 m with a patch (5x6 px, 0.4 % of the frame: a blob, not a crumb) put at
    5 m inside it; the depth is ``outline_confidence`` sure along the patch's outline."""
    depth = np.full((H, W), 2.0, np.float32)
    depth[PATCH] = 5.0
    conf = np.ones((H, W), np.float32)
    conf[28:38, 38:50] = outline_confidence
    return depth, conf


def test_a_blob_with_an_unsure_outline_joins_what_is_round_it():
    depth, conf = _patch_in_wall(0.2)
    assert max(layers.MIN_PIECE, layers.CRUMB_SHARE * H * W) < 30 < layers.BLOB_SHARE * H * W
    lay = layers.split_layers(depth, 6, None, conf)
    assert len(_pieces_sizes(lay)) == 1
    assert np.allclose(lay.depth[PATCH], 2.0)


def test_a_blob_with_a_sure_outline_or_in_the_subject_stays():
    depth, conf = _patch_in_wall(0.9)
    lay = layers.split_layers(depth, 6, None, conf)
    assert sorted(_pieces_sizes(lay)) == [30, H * W - 30]
    # A patch unsure but part of the subject (a near one here) stays the subject's.
    depth, conf = _patch_in_wall(0.2)
    depth[PATCH] = 1.0
    subject = np.zeros((H, W), bool)
    subject[PATCH] = True
    lay = layers.split_layers(depth, 6, subject, conf)
    assert np.allclose(lay.depth[PATCH], 1.0) and lay.near[PATCH].all()
