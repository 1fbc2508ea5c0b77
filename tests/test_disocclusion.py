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


def _two_bars(h=90, w=120):
    """A tall bar (its long edges vertical) and a wide bar (long edges horizontal) before a
    wall; the mask of the tall bar and its surround."""
    d = np.full((h, w), 6.0, np.float32)
    d[5:h - 5, 14:22] = 2.0
    d[h // 2 - 3: h // 2 + 3, 40:w - 5] = 2.0
    tall = np.zeros((h, w), bool)
    tall[:, :32] = True
    return d, tall


def _samples_with(depth, confidence):
    lay = layers.split_layers(depth, band=8)
    return dis.edge_samples(lay.depth, lay.cut_h, lay.cut_v, HFOV, confidence=confidence)


def test_an_edge_is_as_sure_as_its_less_sure_side():
    d = _bar_scene()
    conf = np.ones_like(d)
    conf[:, : d.shape[1] // 2 - 4] = 0.25           # the wall left of the bar
    s = _samples_with(d, conf)
    left = (s.normal[:, 1] == 0) & (s.uv[:, 0] < 0)
    assert np.allclose(s.confidence[left], 0.25) and np.allclose(s.confidence[~left], 1.0)
    assert np.allclose(s.weights(2.0)[left], 2.5) and s.weights(0.0) is None


def test_auto_turns_away_from_an_unsure_edge():
    d, tall = _two_bars()
    sure = _samples_with(d, np.ones_like(d))
    # Sure: the wide bar's long edges are longer, so the loop runs side to side (along them)
    # and reveals the tall bar's.
    choice = dis.choose_auto(sure, _extent(d), _params("auto"), max_reveal=0.02)
    assert abs(choice.direction_deg - 0.0) <= 15.0
    # The tall bar's outline unsure: the loop turns up-down, revealing behind the sure wide bar.
    unsure = _samples_with(d, np.where(tall, 0.0, 1.0).astype(np.float32))
    turned = dis.choose_auto(unsure, _extent(d), _params("auto"), max_reveal=0.02)
    assert abs(turned.direction_deg - 90.0) <= 15.0
    # Without the weighting, the confidence changes nothing.
    plain = dis.choose_auto(unsure, _extent(d), _params("auto"), max_reveal=0.02, unsure_weight=0.0)
    assert plain.direction_deg == choice.direction_deg and plain.amplitude == pytest.approx(choice.amplitude)


def test_auto_travels_less_when_every_edge_is_unsure():
    d = _bar_scene()
    sure = dis.choose_auto(_samples_with(d, np.ones_like(d)), _extent(d), _params("auto"), max_reveal=0.012)
    unsure = dis.choose_auto(_samples_with(d, np.full_like(d, 0.2)), _extent(d), _params("auto"), max_reveal=0.012)
    assert dis.AUTO_AMPLITUDE[0] < unsure.amplitude < 0.8 * sure.amplitude
    assert unsure.reveal <= 0.012 + 1e-9


def test_edge_samples_without_confidence_still_load():
    d = _bar_scene()
    s = _samples_with(d, np.full_like(d, 0.5))
    old = dis.EdgeSamples.from_list(s.to_list())           # what scenes saved before hold
    assert old.confidence is None and old.weights(2.0) is None
    back = dis.EdgeSamples.from_list(s.to_list(), s.confidence_list())
    assert np.allclose(back.confidence, 0.5)
    stale = dis.EdgeSamples.from_list(s.to_list(), s.confidence_list()[:-3])
    assert stale.confidence is None


@pytest.mark.blender
def test_scene_stores_the_confidence_beside_the_samples(blender):
    from photo3d.scene import camera
    coll = blender.data.collections.new("edges test")
    try:
        d = _bar_scene()
        s = _samples_with(d, np.full_like(d, 0.5))
        coll[camera.EDGES_KEY] = s.to_list()               # a scene saved before the confidence
        old = camera.edge_samples_of(coll)
        assert old.confidence is None and len(old) == len(s)
        camera.store_edge_samples(coll, s)
        assert np.allclose(camera.edge_samples_of(coll).confidence, 0.5)
        camera.store_edge_samples(coll, old)                 # samples without it drop the stale one
        assert camera.EDGE_CONFIDENCE_KEY not in coll and camera.edge_samples_of(coll).confidence is None
    finally:
        blender.data.collections.remove(coll)
