"""The reveal estimate (how much of a frame shows what the photo hid) and the automatic path."""
import numpy as np
import pytest

from photo3d.inference import camera_path as cp, disocclusion as dis, layers

HFOV = 60.0


def _bar_scene(h=90, w=120, wall=6.0, bar=2.0, vertical=True):
    """A thin bar in front of a wall: tall (vertical edges) or wide (horizontal edges)."""
    d = np.full((h, w), wall, np.float32)
    if vertical:
        d[5:h - 5, w // 2 - 4: w // 2 + 4] = bar
    else:
        d[h // 2 - 3: h // 2 + 3, 5:w - 5] = bar
    return d


def _samples(depth):
    lay = layers.split_layers(depth, band=8)
    return dis.edge_samples(lay.depth, lay.cut_h, lay.cut_v, HFOV)


def _extent(depth):
    return cp.SceneExtent(2.0, float(depth.min()), float(depth.max()))


def _params(preset, **kw):
    return cp.PathParams(preset=preset, frames=48, hfov_deg=HFOV, aspect=120 / 90, **kw)


def test_samples_lie_on_the_edges_with_near_to_far_normals():
    d = _bar_scene()
    s = _samples(d)
    assert len(s) > 150
    assert np.allclose(s.z_near, 2.0) and np.allclose(s.z_far, 6.0)
    # left edge of the bar: the far side is to the left (-x); right edge: +x
    side = s.normal[:, 1] == 0
    left = side & (s.uv[:, 0] < 0)
    assert left.sum() == 80 and (s.normal[left, 0] == -1).all()
    assert (side & ~left).sum() == 80 and (s.normal[side & ~left, 0] == 1).all()
    top = s.normal[:, 1] != 0
    assert (s.normal[top & (s.uv[:, 1] > 0), 1] == 1).all()        # top edge: the far side is above
    back = dis.EdgeSamples.from_list(s.to_list())
    assert np.allclose(back.uv, s.uv, atol=1e-6) and back.length == pytest.approx(s.length)


def test_reveal_is_zero_at_the_source_and_grows_with_travel():
    d = _bar_scene()
    s = _samples(d)
    still = cp.make_path(_params("swing", amplitude=0.0), _extent(d))
    assert dis.estimate(s, still, 120 / 90)[0] == pytest.approx(0.0, abs=1e-9)
    r1 = dis.estimate(s, cp.make_path(_params("swing", amplitude=1.0), _extent(d)), 120 / 90)[0]
    r2 = dis.estimate(s, cp.make_path(_params("swing", amplitude=2.0), _extent(d)), 120 / 90)[0]
    assert 0 < r1 < r2 and r2 == pytest.approx(2 * r1, rel=0.25)


def test_reveal_matches_the_parallax_of_a_sideways_step():
    """Camera moved sideways by t: the gap beside a vertical edge is f t (1/z_near - 1/z_far)."""
    d = _bar_scene()
    s = _samples(d)
    t = 0.05
    m = np.tile(np.eye(4), (1, 1, 1))
    m[0, 0, 3] = t
    path = cp.CameraPath(m, np.array([HFOV]), np.array([[t, 0, -2.0]]), t)
    frac = dis.reveal_fractions(s, path, 120 / 90, frames=np.array([0]))[1][0]
    tan0 = np.tan(np.radians(HFOV) / 2)
    gap_tan = t * (1 / 2.0 - 1 / 6.0)                        # in tan units at z = 1
    edge_tan = 80 * 2 * tan0 / 120                          # one bar edge, 80 px tall
    expected = gap_tan * edge_tan / (4 * tan0 ** 2 / (120 / 90))
    assert frac == pytest.approx(expected, rel=0.1)


def test_auto_turns_the_move_along_the_edges_and_keeps_under_the_threshold():
    for vertical, want in ((True, 90.0), (False, 0.0)):
        d = _bar_scene(vertical=vertical)
        s = _samples(d)
        choice = dis.choose_auto(s, _extent(d), _params("auto"), max_reveal=0.004)
        # Moving along a bar reveals least: a tall bar gets an up-down loop, a wide one a side-to-side.
        assert abs(choice.direction_deg - want) <= 15.0
        assert choice.reveal <= 0.004 + 1e-9 and choice.amplitude > dis.AUTO_AMPLITUDE[0]
        tight = dis.choose_auto(s, _extent(d), _params("auto"), max_reveal=0.001)
        assert tight.amplitude < choice.amplitude


def test_auto_without_edges_takes_the_largest_move():
    flat = np.full((60, 80), 4.0, np.float32)
    s = _samples(flat)
    assert len(s) == 0
    choice = dis.choose_auto(s, _extent(flat), _params("auto"), max_reveal=0.01)
    assert choice.amplitude == dis.AUTO_AMPLITUDE[1] and choice.reveal == 0.0
