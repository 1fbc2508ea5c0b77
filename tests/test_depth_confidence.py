"""The depth's confidence (inference/depth/confidence.py): a step on a colour edge is sure, one
in flat colour is not; the bundled net's photo and mirrored passes, the tiles and a second model
lower it where they disagree; the depth itself is unchanged by asking."""
import numpy as np
import pytest

from photo3d.inference import depth as depth_models
from photo3d.inference.depth import confidence, tiling

H, W = 48, 64


def _step_depth():
    d = np.full((H, W), 4.0, np.float32)
    d[:, W // 2:] = 1.5                       # the right half stands well in front
    return d


def _photo(edge: bool):
    rgb = np.full((H, W, 3), 0.5, np.float32)
    if edge:
        rgb[:, W // 2:] = (0.8, 0.2, 0.2)     # a red thing in front of a grey wall
    return rgb


def test_a_step_on_a_colour_edge_is_sure_and_one_in_flat_colour_is_not():
    d = _step_depth()
    on_edge = confidence.depth_confidence(d, _photo(edge=True))
    flat = confidence.depth_confidence(d, _photo(edge=False))
    assert on_edge.dtype == np.float32 and on_edge.shape == (H, W)
    assert 0.0 <= flat.min() and on_edge.max() <= 1.0
    band = slice(W // 2 - 1, W // 2 + 1)
    assert on_edge[:, band].min() > 0.95
    assert flat[:, band].max() < 0.05
    # away from the step nothing is in doubt
    assert flat[:, :W // 4].min() == 1.0 and flat[:, -W // 4:].min() == 1.0


def test_no_step_no_doubt():
    d = np.linspace(2, 8, H, dtype=np.float32)[:, None].repeat(W, 1)   # a floor receding
    assert confidence.depth_confidence(d, _photo(edge=False)).min() == 1.0


def test_the_mirrored_pass_disagreeing_lowers_confidence():
    d = _step_depth()
    a = 1.0 / d
    b = a.copy()
    b[:16, :16] += 0.3                        # the mirrored pass sees something else there
    gap = confidence.relative_gap(a, b)
    conf = confidence.depth_confidence(d, _photo(edge=True), flip_gap=gap[::2, ::2])   # any resolution
    assert conf[:14, :14].max() < 0.3
    assert conf[20:, :24].min() > 0.99
    same = confidence.depth_confidence(d, _photo(edge=True), flip_gap=confidence.relative_gap(a, a))
    assert np.array_equal(same, confidence.depth_confidence(d, _photo(edge=True)))


def test_a_second_model_counts_up_to_scale_and_shift():
    d = _step_depth()
    other = 1.0 / (3.0 / d + 0.7)             # the same scene in another model's units
    assert confidence.aligned_gap(d, other).max() < 1e-4
    other_wrong = other.copy()
    other_wrong[:, :8] = 0.3                  # ...that puts the left edge in front
    conf = confidence.depth_confidence(d, _photo(edge=True), other_depth=other_wrong)
    assert conf[:, :8].max() < 0.5 and conf[:, 12:24].min() > 0.9


def test_to_image_is_8_bit_white_when_sure():
    img = confidence.to_image(np.array([[0.0, 1.0]], np.float32), (4, 2))
    assert img.dtype == np.uint8 and img.shape == (2, 4)
    assert img[:, 0].max() == 0 and img[:, -1].min() == 255


@pytest.mark.skipif("photo3d-net" not in depth_models.MODELS, reason="the bundled net is not in models/")
def test_the_bundled_net_reports_its_two_passes_without_changing_its_depth():
    from photo3d.inference.depth import net
    rng = np.random.default_rng(0)
    rgb = np.clip(rng.random((96, 128, 3)) * 0.2 + np.linspace(0, 0.8, 128)[None, :, None], 0, 1).astype(np.float32)
    plain = net.run(rgb, depth_models.NET_WEIGHTS)[0]
    passes = {}
    asked = net.run(rgb, depth_models.NET_WEIGHTS, passes=passes)[0]
    assert np.array_equal(plain, asked)
    a, b = passes["inv_depth"]
    assert a.shape == b.shape and not np.array_equal(a, b)
    depth, _, extras = depth_models.estimate_with_info("photo3d-net", rgb)
    assert np.array_equal(depth, plain)
    assert extras["flip_gap"].shape == a.shape and (extras["flip_gap"] >= 0).all()


def test_tiles_report_where_they_depart_from_the_whole_photo():
    v, u = np.mgrid[0:240, 0:320].astype(np.float32)
    disp = 0.2 + 0.3 * v / 240

    def model(rgb):                           # the true layout, in its own units per call
        r = rgb[..., 0]
        return 1.0 / (0.1 + r / max(float(r.max()), 1e-6)), None

    rgb = np.dstack([disp, disp * 0 + 0.5, disp * 0 + 0.3]).astype(np.float32)
    plan = tiling.plan((320, 240), 64, 3)
    _, _, extras = tiling.merge(model, rgb, 64, plan)
    gap = extras["tile_gap"]
    assert gap.shape == (plan.out_size[1], plan.out_size[0])
    assert np.percentile(gap, 90) < 0.05       # tiles and the whole photo agree on a plane
