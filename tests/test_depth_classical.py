"""The classical depth fallback: shapes, robustness, and the subject standing out."""
import numpy as np
import pytest

from photo3d.inference.depth import classical as depth_classical

skimage_data = pytest.importorskip("skimage.data")


def _f32(img):
    return np.ascontiguousarray(img, dtype=np.float32) / 255.0


def _check(depth, subject, shape):
    assert depth.shape == shape and depth.dtype == np.float32
    assert np.all(np.isfinite(depth)) and np.all(depth > 0)
    if subject is not None:
        assert subject.shape == shape and subject.dtype == np.float32
        assert np.all(np.isfinite(subject))
        assert subject.min() >= 0.0 and subject.max() <= 1.0


@pytest.fixture(scope="module")
def astronaut():
    rgb = _f32(skimage_data.astronaut())
    return rgb, depth_classical.estimate(rgb)


def test_astronaut_subject_in_front(astronaut):
    rgb, (depth, subject) = astronaut
    _check(depth, subject, rgb.shape[:2])
    assert subject is not None
    mask = subject >= 0.5
    frac = mask.mean()
    assert 0.10 <= frac <= 0.70
    # The face (centre about (225, 115) in the 512x512 photo) is part of the subject.
    assert mask[105:125, 215:235].mean() > 0.9
    assert np.median(depth[mask]) < np.median(depth[~mask])
    # Nominal metres: the subject at a few metres, the background clearly behind it.
    assert 1.0 <= np.median(depth[mask]) <= 4.0
    assert np.median(depth[~mask]) > 1.2 * np.median(depth[mask])


def test_astronaut_depth_jump_on_outline(astronaut):
    """A step at the outline, not a ramp: pixels just inside are clearly nearer than
    pixels just outside, with no intermediate values in between."""
    rgb, (depth, subject) = astronaut
    mask = subject >= 0.5
    inside = depth[mask].max()
    outside = depth[~mask].min()
    assert inside < outside


def test_face_is_nearer_than_shoulder_outline(astronaut):
    rgb, (depth, subject) = astronaut
    mask = subject >= 0.5
    face = np.median(depth[110:130, 215:235])
    assert face < np.percentile(depth[mask], 90)


@pytest.mark.parametrize("name", ["chelsea", "coffee", "rocket"])
def test_other_photos(name):
    rgb = _f32(getattr(skimage_data, name)())
    depth, subject = depth_classical.estimate(rgb)
    _check(depth, subject, rgb.shape[:2])
    if subject is not None:
        mask = subject >= 0.5
        assert 0.02 < mask.mean() < 0.75
        assert np.median(depth[mask]) < np.median(depth[~mask])


def test_coffee_cup_found():
    rgb = _f32(skimage_data.coffee())
    depth, subject = depth_classical.estimate(rgb)
    assert subject is not None
    mask = subject >= 0.5
    assert mask[200, 300]          # the saucer / cup in the middle
    assert not mask[10, 580]       # the table in the top-right corner


@pytest.mark.parametrize("shape", [(16, 16, 3), (16, 24, 3), (1, 1, 3), (7, 300, 3)])
def test_tiny_images(shape):
    rng = np.random.default_rng(0)
    rgb = rng.random(shape, dtype=np.float32)
    depth, subject = depth_classical.estimate(rgb)
    _check(depth, subject, shape[:2])


def test_grayscale_looking_image():
    g = skimage_data.camera().astype(np.float32) / 255.0          # a man with a camera
    rgb = np.repeat(g[..., None], 3, axis=2)
    depth, subject = depth_classical.estimate(rgb)
    _check(depth, subject, g.shape)


def test_flat_and_extreme_images():
    for value in (0.0, 0.5, 1.0):
        rgb = np.full((64, 80, 3), value, np.float32)
        depth, subject = depth_classical.estimate(rgb)
        _check(depth, subject, (64, 80))
    rgb = np.full((32, 32, 3), np.nan, np.float32)
    depth, subject = depth_classical.estimate(rgb)
    _check(depth, subject, (32, 32))


def test_synthetic_without_faces():
    """A bright disc on a textured background: no face, a salient object."""
    h, w = 240, 320
    rng = np.random.default_rng(1)
    rgb = 0.3 + 0.1 * rng.random((h, w, 3), dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    disc = (yy - 140) ** 2 + (xx - 160) ** 2 < 60 ** 2
    rgb[disc] = (0.9, 0.2, 0.1)
    depth, subject = depth_classical.estimate(rgb)
    _check(depth, subject, (h, w))
    if subject is not None:
        mask = subject >= 0.5
        assert mask[140, 160]
        assert np.median(depth[mask]) < np.median(depth[~mask])


def test_several_faces_and_face_at_border():
    a = skimage_data.astronaut()
    two = np.concatenate([a, a[:, ::-1]], axis=1)                 # two people side by side
    rgb = _f32(two)
    depth, subject = depth_classical.estimate(rgb)
    _check(depth, subject, rgb.shape[:2])
    assert subject is not None
    mask = subject >= 0.5
    assert mask[105:125, 215:235].mean() > 0.5
    assert mask[105:125, 1024 - 235:1024 - 215].mean() > 0.5
    # Face cut by the left border.
    rgb = _f32(a[:, 170:])
    depth, subject = depth_classical.estimate(rgb)
    _check(depth, subject, rgb.shape[:2])


def test_outdoor_gradient_ground_nearer_than_sky():
    """Blue sky over a textured brown ground: bottom rows nearer than top rows, sky far."""
    h, w = 200, 300
    rng = np.random.default_rng(2)
    v = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky = np.array([0.45, 0.65, 0.95], np.float32) * (0.8 + 0.2 * v)
    ground = np.array([0.45, 0.35, 0.2], np.float32) + 0.15 * rng.random((h, w, 3), dtype=np.float32)
    rgb = np.where(np.arange(h)[:, None, None] < 80, sky, ground).astype(np.float32)
    depth, _ = depth_classical.estimate(rgb)
    _check(depth, None, (h, w))
    rows = np.median(depth, axis=1)
    assert rows[-1] < rows[h // 2] < rows[85]
    assert rows[5] >= rows[85]
    assert np.median(depth[:60]) > 15.0                            # the sky is far


def test_plain_gradient_bottom_nearer():
    h, w = 120, 160
    v = np.linspace(0.9, 0.3, h, dtype=np.float32)[:, None]
    rgb = np.repeat(np.repeat(v, w, axis=1)[..., None], 3, axis=2)
    depth, _ = depth_classical.estimate(rgb)
    _check(depth, None, (h, w))
    assert np.median(depth[-10:]) < np.median(depth[:10])


def test_uint8_range_and_deterministic():
    a = skimage_data.coffee()[::4, ::4]
    d1, s1 = depth_classical.estimate(a.astype(np.float32) / 255.0)
    d2, s2 = depth_classical.estimate(a.astype(np.float32) / 255.0)
    assert np.array_equal(d1, d2)
    assert (s1 is None) == (s2 is None)
