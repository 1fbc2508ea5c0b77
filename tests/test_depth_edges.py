"""Strong depth edges a model smeared, put back on the photo's edge (inference/depth/edges.py)."""
import cv2
import numpy as np

from photo3d.inference import layers
from photo3d.inference.depth import edges as depth_edges

WALL, FLAG = 10.0, 2.0


def _smeared_flag(size=160, edge=80, ramp_shift=4, blur=3.0):
    """A wall with a flag (the left part, z 2) in front: the photo's edge at column
    ``edge`` (a little soft), the depth's ramp ``ramp_shift`` px to the right of it and
    about 10 px wide, as a depth model gives it."""
    xx = np.tile(np.arange(size, dtype=np.float32), (size, 1))
    a = np.clip(0.5 - (xx - edge), 0, 1)                         # 1 on the flag, 0 on the wall
    a = cv2.GaussianBlur(a, (0, 0), 0.7)
    rgb = (a[..., None] * np.array([0.55, 0.05, 0.1], np.float32)
           + (1 - a[..., None]) * np.array([0.8, 0.78, 0.76], np.float32))
    # Stripes across the flag (along the slope) that must not be taken for its edge.
    rgb[(np.arange(size) // 12 % 2 == 0)[:, None] & (a > 0.5)] *= 0.8
    side = (xx < edge + ramp_shift).astype(np.float32)
    disp = cv2.GaussianBlur(side, (0, 0), blur) * (1 / FLAG - 1 / WALL) + 1 / WALL
    return (1 / disp).astype(np.float32), rgb.astype(np.float32), xx


def _between(depth):
    return (depth > FLAG * 1.1) & (depth < WALL / 1.1)      # (a side's own shoulders aside)


def test_a_smeared_edge_becomes_one_step_on_the_photo_edge():
    depth, rgb, xx = _smeared_flag()
    assert _between(depth).sum() > 8 * 160                      # a ramp ~10 px wide
    out, ramp = depth_edges.sharpen(depth, rgb, 5)
    assert ramp.any()
    assert not _between(out).any()                              # no in-between depths left
    assert np.allclose(out[:, :80], FLAG, rtol=0.1)              # the flag's side, to its edge
    assert np.allclose(out[:, 81:], WALL, rtol=0.1)              # the wall, from the edge on
    # One occlusion edge, where the colour changes; no floating slivers.
    cut_h, cut_v = layers.occlusion_edges(out)
    assert cut_h[:, 79:81].any(1).all() and cut_h.sum() == 160 and not cut_v.any()


def test_planes_mild_steps_and_gentle_shapes_stay():
    size = 120
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    rgb = np.full((size, size, 3), 0.5, np.float32)
    rgb[:, 60:] = 0.2                                            # a colour edge on a plain surface
    # A floor up to its horizon: disparity affine, steep near row 0.
    floor = (1 / (0.002 * (yy + 1))).astype(np.float32)
    out, ramp = depth_edges.sharpen(floor, rgb, 5)
    assert not ramp.any() and np.array_equal(out, floor)
    # A mild smeared step (less than STRONG) is left to the layering.
    disp = cv2.GaussianBlur((xx < 60).astype(np.float32), (0, 0), 3) * 0.02 + 0.1
    out, ramp = depth_edges.sharpen((1 / disp).astype(np.float32), rgb, 5)
    assert not ramp.any()
    # A dome (a face's relief): no step anywhere.
    dome = (1 / (0.1 + 0.05 * np.exp(-((xx - 60) ** 2 + (yy - 60) ** 2) / 800))).astype(np.float32)
    out, ramp = depth_edges.sharpen(dome, rgb, 5)
    assert not ramp.any() and np.array_equal(out, dome)


def test_without_a_colour_edge_the_depth_midpoint_decides():
    depth, _, xx = _smeared_flag(ramp_shift=0)
    plain = np.full(depth.shape + (3,), 0.6, np.float32)
    out, ramp = depth_edges.sharpen(depth, plain, 5)
    assert ramp.any() and not _between(out).any()
    step = np.flatnonzero(layers.occlusion_edges(out)[0][80])
    assert len(step) == 1 and abs(step[0] - 79.5) <= 1.5


def test_a_subject_is_left_as_it_is():
    """Inside a subject (settled on its mask already, one layer) a steep slope is its
    relief: a cat's face rising from its eyes to its nose."""
    depth, rgb, xx = _smeared_flag()
    out, ramp = depth_edges.sharpen(depth, rgb, 5, subject=np.ones(depth.shape, bool))
    assert not ramp.any() and np.array_equal(out, depth)
