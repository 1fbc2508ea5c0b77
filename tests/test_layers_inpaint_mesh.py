"""Layering at occlusion edges, inpainting from background only, Poisson depth, cut meshes."""
import cv2
import numpy as np
import pytest

from helpers import box_scene
from photo3d.inference import inpaint, layers, mesh


def test_box_in_front_of_wall_is_cut_and_near():
    depth, _ = box_scene()
    lay = layers.split_layers(depth, band=6)
    box = depth < 5
    assert np.array_equal(lay.near, box)
    # Cuts exactly along the box outline, nowhere else.
    assert np.array_equal(lay.cut_h, box[:, :-1] != box[:, 1:])
    assert np.array_equal(lay.cut_v, box[:-1, :] != box[1:, :])
    # The hidden band lies inside the box, along its outline, at most `band` deep.
    assert lay.hidden.any() and not (lay.hidden & ~box).any()
    assert lay.hidden[30, 20] and lay.hidden[30, 25] and not lay.hidden[30, 30]
    assert not (lay.context & box).any()


def test_slanted_plane_is_never_cut():
    h, w = 80, 100
    v = np.arange(h, dtype=np.float32)[:, None]
    disparity = 0.02 + 0.01 * v + np.zeros((1, w), np.float32)    # a floor: affine in disparity
    lay = layers.split_layers(1.0 / disparity, band=5)
    assert not lay.cut_h.any() and not lay.cut_v.any()
    assert not lay.near.any() and not lay.hidden.any()


def test_one_pixel_specks_are_cut_and_go_back():
    """Pixels one apart at two depths (a patch of foliage, a ramp's pixels given to
    alternate sides): each step is as large as the next, so none is larger than its
    neighbours (the rule for an edge), yet they are no plane either, they go opposite
    ways. Cut, each speck is a piece of one pixel, which goes back to the wall: no
    triangle spans them. A pole one pixel wide stays a near piece of its own."""
    depth = np.full((60, 80), 10.0, np.float32)
    depth[24, 50:58:2] = 2.0                                         # the specks
    depth[5:55, 20] = 2.0                                            # the pole
    lay = layers.split_layers(depth, band=4)
    assert (lay.depth[24, 50:58] == 10.0).all()
    assert lay.near[5:55, 20].all() and lay.near.sum() == 50
    m = mesh.grid_mesh(lay.depth, 60.0, None, lay.cut_h, lay.cut_v)
    z = np.linalg.norm(m.positions, axis=1)[m.triangles]
    assert (z.max(1) / z.min(1)).max() < 1.5


def test_colour_inpainting_reads_background_only():
    depth, _ = box_scene()
    lay = layers.split_layers(depth, band=8)
    rgb = np.zeros(depth.shape + (3,), np.float32)
    rgb[...] = (0.0, 0.0, 1.0)                    # background blue
    rgb[depth < 5] = (1.0, 0.0, 0.0)              # subject red
    bg_depth = inpaint.poisson_fill(lay.depth, lay.hidden, lay.context)
    out = inpaint.inpaint_colour(rgb, lay.hidden, lay.context_weight, lay.depth, bg_depth)
    assert np.allclose(out[lay.hidden], (0.0, 0.0, 1.0), atol=1e-4)   # no red in the hole
    assert np.array_equal(out[~lay.hidden], rgb[~lay.hidden])


def test_inpainting_at_texture_resolution():
    depth, _ = box_scene()
    lay = layers.split_layers(depth, band=8)
    big = np.random.default_rng(0).random((depth.shape[0] * 2, depth.shape[1] * 2, 3)).astype(np.float32)
    out = inpaint.inpaint_colour(big, lay.hidden, lay.context_weight)
    assert out.shape == big.shape
    hole_big = np.repeat(np.repeat(lay.hidden, 2, 0), 2, 1)
    assert np.array_equal(out[~hole_big], big[~hole_big])


def test_push_pull_fills_everything_from_known():
    img = np.zeros((33, 47, 3), np.float32)
    known = np.zeros((33, 47), bool)
    known[:, :5] = True
    img[known] = 0.25
    out = inpaint.push_pull(img, known)
    assert np.allclose(out, 0.25, atol=1e-5)


def test_poisson_continues_the_background_plane():
    """A hole in a tilted wall is filled with the same plane (exact in disparity)."""
    h, w = 50, 70
    u = np.arange(w, dtype=np.float32)[None, :]
    disp = 0.1 + 0.002 * u + np.zeros((h, 1), np.float32)
    depth = 1.0 / disp
    hole = np.zeros((h, w), bool)
    hole[10:40, 20:50] = True
    filled = inpaint.poisson_fill(np.where(hole, 1.0, depth), hole, ~hole)
    assert np.allclose(filled[hole], depth[hole], rtol=1e-3)


def test_poisson_hole_without_context_stays_behind():
    depth = np.full((20, 20), 2.0, np.float32)
    hole = np.zeros((20, 20), bool)
    hole[5:15, 5:15] = True
    filled = inpaint.poisson_fill(depth, hole, np.zeros_like(hole))
    assert np.isfinite(filled).all() and (filled[hole] >= 2.0).all()


def test_grid_mesh_counts_positions_and_winding():
    h, w, hfov = 6, 8, 60.0
    depth = np.full((h, w), 3.0, np.float32)
    m = mesh.grid_mesh(depth, hfov)
    assert m.n_vertices == h * w and len(m.triangles) == 2 * (h - 1) * (w - 1)
    p = m.positions
    assert np.allclose(p[:, 2], -3.0)
    f = mesh.focal_px(w, hfov)
    assert p[0, 0] == pytest.approx((0.5 - w / 2) / f * 3.0) and p[0, 1] > 0   # top-left: left, up
    # Every triangle faces the camera (normal towards +Z).
    a, b, c = (p[m.triangles[:, i]] for i in range(3))
    assert (np.cross(b - a, c - a)[:, 2] > 0).all()


def test_grid_mesh_never_spans_a_cut():
    depth, _ = box_scene()
    lay = layers.split_layers(depth, band=4)
    m = mesh.grid_mesh(lay.depth, 60.0, None, lay.cut_h, lay.cut_v)
    z = -m.positions[:, 2][m.triangles]
    assert (z.max(1) / z.min(1) < 1.01).all()         # no triangle joins box and wall
    # ... and the box's own pixels are all still there.
    assert m.n_vertices == depth.size


def test_joint_bilateral_upsampling_puts_depth_edges_on_the_photo_edges():
    from photo3d.inference.depth.upsample import joint_bilateral_upsample
    H, W, f = 64, 96, 4
    depth = np.full((H, W), 5.0, np.float32)
    depth[:, 37:] = 2.0                                   # an edge off the low-res grid
    rgb = np.zeros((H, W, 3), np.float32)
    rgb[:, 37:] = 1.0
    low = 1 / cv2.resize(1 / depth, (W // f, H // f), interpolation=cv2.INTER_AREA)
    up = joint_bilateral_upsample(low, rgb)
    bil = 1 / cv2.resize(1 / low, (W, H), interpolation=cv2.INTER_LINEAR)
    assert up.shape == (H, W)
    err_jbu = np.abs(up - depth)[:, 30:44].mean()
    err_bil = np.abs(bil - depth)[:, 30:44].mean()
    assert err_jbu < 0.3 * err_bil
    assert np.allclose(up[:, :30], 5.0, rtol=1e-3) and np.allclose(up[:, 44:], 2.0, rtol=1e-3)


def _open_edges(m):
    t = m.triangles.astype(np.int64)
    e = np.sort(np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]]), 1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    return (counts == 1).sum(), (counts > 2).sum()


def test_adaptive_mesh_is_lighter_and_has_no_cracks():
    from photo3d.inference import mesh
    h, w = 97, 129
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    disp = 0.2 + 0.001 * u + 0.0005 * v                       # a slanted wall (a plane in disparity)
    bump = np.exp(-((u - 40) ** 2 + (v - 50) ** 2) / 60.0)    # and a bump that needs detail
    depth = (1 / (disp + 0.05 * bump)).astype(np.float32)
    full = mesh.grid_mesh(depth, 60.0)
    light = mesh.grid_mesh(depth, 60.0, block=8)
    assert light.n_vertices < 0.3 * full.n_vertices
    # Watertight as the full grid: only the image border is open, no edge is shared by 3+.
    assert _open_edges(light) == _open_edges(full) == (2 * (h - 1) + 2 * (w - 1), 0)
    # The geometry still follows the depth: every pixel's ray hits the light mesh close to
    # the full mesh (checked at the vertices the two share, and at the bump's top).
    assert np.allclose(np.sort(light.positions[:, 2])[-5:], np.sort(full.positions[:, 2])[-5:])
    assert light.positions[:, 2].max() == full.positions[:, 2].max()


def test_what_lies_behind_an_object_in_front_of_another_is_that_other_object():
    """A torus before a vase before a wall: behind the torus's edge over the vase lies the
    vase (its depth and colour), not the wall; behind the vase's own edge, the wall."""
    h, w = 60, 90
    depth = np.full((h, w), 10.0, np.float32)
    rgb = np.zeros((h, w, 3), np.float32)
    rgb[...] = (0.0, 0.0, 1.0)                    # wall blue
    depth[10:50, 20:70] = 5.0
    rgb[10:50, 20:70] = (0.0, 1.0, 0.0)           # vase green
    depth[20:40, 40:60] = 3.0
    rgb[20:40, 40:60] = (1.0, 0.0, 0.0)           # torus red
    lay = layers.split_layers(depth, band=6)
    bg = inpaint.fill_depth_behind(lay.depth, lay.hidden, lay.cut_h, lay.cut_v)
    assert bg[30, 41] == pytest.approx(5.0, rel=0.02)       # behind the torus: the vase
    assert bg[30, 21] == pytest.approx(10.0, rel=0.02)      # behind the vase: the wall
    edge = np.zeros((h, w), bool)
    edge[:, :-1] |= lay.cut_h
    edge[:, 1:] |= lay.cut_h
    edge[:-1, :] |= lay.cut_v
    edge[1:, :] |= lay.cut_v
    rim = np.zeros((h, w), bool)
    groups = inpaint.behind_groups(lay.depth, bg, lay.hidden, rim, ~edge)
    out = inpaint.inpaint_colour(rgb, lay.hidden, lay.context_weight, lay.depth, bg, groups=groups)
    # Push-pull is a smooth fill: mostly the right colour, and never the occluder's own.
    assert out[30, 41, 1] > 0.75 and out[30, 41, 0] < 0.01      # vase green, no torus red
    assert out[30, 21, 2] > 0.75 and out[30, 21, 1] < 0.25      # wall blue
    assert (out[lay.hidden][:, 0] < 0.01).all()                 # the torus's red nowhere behind
    assert np.array_equal(out[~lay.hidden], rgb[~lay.hidden])


def test_hidden_band_stays_in_front_where_an_object_joins_the_wall():
    """A box joined to the wall by a ramp (one piece, as a box standing on a floor is):
    the band behind its outline lies on the box, never on the wall beside it."""
    h, w = 80, 100
    depth = np.full((h, w), 10.0, np.float32)
    depth[30:50, 30:60] = 4.0                                     # the box
    depth[38:42, 60:80] = np.linspace(4.0, 10.0, 20)[None, :]     # a ramp back to the wall
    lay = layers.split_layers(depth, band=12)
    assert lay.hidden[30:50, 30:60].any()
    assert not (lay.hidden & (depth >= 10.0)).any()


def test_depth_bins_keep_an_object_apart_from_the_floor_behind_it():
    """A few hidden pixels at the cone's own depth and many at the floor's: one bin for
    both would let the floor read the cone's colours (quantile bins did)."""
    z = np.concatenate([np.full(40, 3.8), np.full(3000, 6.4), np.linspace(7.0, 8.0, 3000), np.full(2000, 11.9)])
    edges = inpaint._depth_bins(z.astype(np.float32), 1.1, 4)
    assert len(edges) - 1 <= 4
    i_cone, i_floor = np.searchsorted(edges, [3.8, 6.4], side="right")
    assert i_cone != i_floor


def test_structure_fill_carries_an_edge_into_the_hole():
    """A horizon (dark above, light below) ends at a hole with sources on one side only:
    just inside the hole it goes on sharper than the smooth fill alone makes it."""
    img = np.full((64, 96, 3), 0.8, np.float32)
    img[:32] = 0.2
    known = np.ones((64, 96), bool)
    known[:, 40:] = False
    out = inpaint.structure_fill(img * known[:, :, None], known.astype(np.float32))
    smooth = inpaint.push_pull(img * known[:, :, None], known)
    step = lambda a: a[35, 44].mean() - a[28, 44].mean()     # noqa: E731
    assert step(out) > step(smooth) + 0.05
    assert out[:27, 41].mean() < 0.3 and out[37:, 41].mean() > 0.65
    assert np.array_equal(out[known], img[known])


def test_curved_surfaces_get_smaller_blocks_and_stay_watertight():
    """A round bump on a wall: planar in 16x16 blocks far from it, in 8x8 and 4x4 ones
    nearer: the quadtree uses all three, and the mesh stays as closed as the full grid."""
    h, w = 97, 129
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((u - 64) / 20) ** 2 + ((v - 48) / 20) ** 2
    depth = (1 / (1.0 - 0.3 * r2 / (1 + r2))).astype(np.float32)
    keep, no_h, no_v = np.ones((h, w), bool), np.zeros((h, w - 1), bool), np.zeros((h - 1, w), bool)
    levels, size = mesh.quadtree_blocks(depth, keep, no_h, no_v, 16, 0.004)
    used = {b for b, ok in levels if ok.any()}
    assert {16, 8, 4} <= used and (size > 1).mean() > 0.9
    full = mesh.grid_mesh(depth, 60.0)
    light = mesh.grid_mesh(depth, 60.0, block=16)
    assert light.n_vertices < 0.2 * full.n_vertices
    assert _open_edges(light) == _open_edges(full)
