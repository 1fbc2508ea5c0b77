"""Portraits: the person's mask, the soft alpha matte, colour unmixing, and face relief
from the fitted face mesh (MediaPipe's networks run by OpenCV; no download)."""
import cv2
import numpy as np
import pytest

from photo3d.inference import depth as depth_models, pipeline, portrait
from photo3d.inference.photo import load_photo

HFOV = 65.0


@pytest.fixture(scope="module")
def astronaut(portrait_path):
    return load_photo(portrait_path).rgb.astype(np.float32)


def test_models_are_installed():
    # make venv installs them; the extension zip carries them (tests/test_extension.py)
    assert portrait.available(), "MediaPipe's portrait networks are missing: run make venv"


def test_person_mask_covers_the_person(astronaut):
    faces = portrait.faces_in(astronaut)
    assert len(faces) == 1
    m = portrait.person_mask(astronaut, faces)
    assert m.dtype == bool and m.shape == astronaut.shape[:2]
    x, y, w, h = (int(v) for v in faces[0])
    assert m[y + h // 2, x + w // 2]                                  # the face
    assert m[-5, m.shape[1] // 3]                                     # the body at the bottom
    assert not m[10, 10] and not m[5, -5]                             # the flag, the wall, top corners
    assert 0.25 < m.mean() < 0.75


def test_no_person_no_mask():
    rng = np.random.default_rng(0)
    landscape = np.zeros((240, 320, 3), np.float32)
    landscape[:120] = (0.55, 0.7, 0.95)                               # sky
    landscape[120:] = (0.3, 0.5, 0.2) + 0.05 * rng.standard_normal((120, 320, 3))   # grass
    assert portrait.person_mask(np.clip(landscape, 0, 1).astype(np.float32)) is None


def test_alpha_matte_shape_range_and_softness(astronaut):
    m = portrait.person_mask(astronaut, portrait.faces_in(astronaut))
    a = portrait.alpha_matte(astronaut, m, 4)
    assert a.shape == m.shape and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1
    inner = cv2.erode(m.astype(np.uint8), np.ones((11, 11), np.uint8)) > 0
    outer = cv2.dilate(m.astype(np.uint8), np.ones((11, 11), np.uint8)) == 0
    assert (a[inner] == 1).all() and (a[outer] == 0).all()
    edge = ~inner & ~outer
    soft = (a[edge] > 0.05) & (a[edge] < 0.95)
    assert soft.mean() > 0.1                                           # partial alpha along the outline


def test_unmixing_recovers_the_foreground_colour():
    rng = np.random.default_rng(1)
    f = rng.uniform(0, 1, (20, 20, 3)).astype(np.float32)
    b = rng.uniform(0, 1, (20, 20, 3)).astype(np.float32)
    a = rng.uniform(0.2, 1.0, (20, 20)).astype(np.float32)
    a[0, 0] = 1.0
    img = a[..., None] * f + (1 - a[..., None]) * b
    out = portrait.unmix_foreground(img, a, b)
    assert np.allclose(out, f, atol=1e-4)


def test_alpha_is_raised_until_the_photo_can_be_reproduced():
    """A matte too low for the fill behind (the fill is not what the photo had there):
    raised to the least alpha whose unmixed colour, laid over the fill, gives the photo's
    own pixel; where the matte already can, it stays."""
    rng = np.random.default_rng(2)
    img = rng.uniform(0, 1, (30, 30, 3)).astype(np.float32)
    b = rng.uniform(0, 1, (30, 30, 3)).astype(np.float32)
    a = rng.uniform(0, 1, (30, 30)).astype(np.float32)
    a[:5] = 1.0
    a2 = portrait.reproducible_alpha(img, a, b)
    assert (a2 >= a).all() and (a2[:5] == 1.0).all()
    f = portrait.unmix_foreground(img, a2, b)
    comp = a2[..., None] * f + (1 - a2[..., None]) * b
    keep = a2 > 0.02                                     # (unmixing leaves the rest as it is)
    assert np.allclose(comp[keep], img[keep], atol=2e-3)
    # Where the low matte could already reproduce the photo, it is kept.
    f0 = rng.uniform(0.2, 0.8, (30, 30, 3)).astype(np.float32)
    ok = a[..., None] * f0 + (1 - a[..., None]) * b
    assert np.allclose(portrait.reproducible_alpha(ok, a, b), a, atol=1e-5)


def _relief_stats(depth, box):
    x, y, w, h = (int(v) for v in box)
    face = depth[y + h // 5: y + 4 * h // 5, x + w // 5: x + 4 * w // 5]
    return float(np.ptp(face)), face


def test_face_relief_adds_volume_inside_the_face(astronaut):
    d, _ = depth_models.estimate("classical", astronaut)
    faces = portrait.faces_in(astronaut)
    lm = portrait.face_landmarks(astronaut, faces[0])
    assert lm.shape == (468, 3)
    x, y, w, h = faces[0]
    assert (lm[:, 0] > x - 0.2 * w).all() and (lm[:, 0] < x + 1.2 * w).all()   # on the face
    fused = portrait.fuse_face_relief(d, [lm], HFOV)
    before, _ = _relief_stats(d, faces[0])
    after, face = _relief_stats(fused, faces[0])
    assert after > 1.5 * before
    # The nose tip (landmark 1) is nearer than the cheeks (234 and 454: the face's sides).
    nose = fused[int(lm[1, 1]), int(lm[1, 0])]
    cheeks = [fused[int(lm[i, 1]), int(lm[i, 0]) - 3 if i == 454 else int(lm[i, 0]) + 3] for i in (234, 454)]
    assert nose < min(cheeks)
    # A face's depth is a few tenths of its width at most (scale from pixels and distance).
    f_px = 0.5 * d.shape[1] / np.tan(np.radians(HFOV) / 2)
    width_units = w * np.median(face) / f_px
    assert 0.15 * width_units < after < 0.8 * width_units
    # Outside the face nothing changes.
    far = np.ones(d.shape, bool)
    far[int(y - 0.3 * h): int(y + 1.3 * h), int(x - 0.3 * w): int(x + 1.3 * w)] = False
    assert np.array_equal(fused[far], d[far])


def test_no_face_no_change():
    rng = np.random.default_rng(2)
    img = rng.uniform(0, 1, (200, 300, 3)).astype(np.float32)
    d = np.linspace(2, 6, 200, dtype=np.float32)[:, None].repeat(300, 1)
    out, subject, n, person = portrait.refine(img, d, None, HFOV)
    assert n == 0 and subject is None and person is None and np.array_equal(out, d)


def test_several_faces_and_tiny_faces(astronaut):
    two = np.concatenate([astronaut, astronaut], 0)          # two people, one above the other
    d, subj = depth_models.estimate("classical", two)
    out, subject, n, person = portrait.refine(two, d, subj, HFOV)
    assert person.shape == d.shape and (subject[person] == 1).all()
    assert n == 2 and out.shape == d.shape and np.isfinite(out).all() and (out > 0).all()
    for (x, y, w, h) in portrait.faces_in(two):                # each face got its own relief
        assert _relief_stats(out, (x, y, w, h))[0] > 1.5 * _relief_stats(d, (x, y, w, h))[0]
    # A tiny face in a big frame: found or not, nothing breaks and the depth stays sane.
    canvas = np.full((900, 1200, 3), 0.6, np.float32)
    canvas[400:464, 600:664] = cv2.resize(astronaut, (64, 64), interpolation=cv2.INTER_AREA)
    d, subj = depth_models.estimate("classical", cv2.resize(canvas, (512, 384)))
    out, subject, n, _ = portrait.refine(cv2.resize(canvas, (512, 384)), d, subj, HFOV)
    assert out.shape == d.shape and np.isfinite(out).all() and (out > 0).all()


def test_missing_models_leave_the_depth_alone(astronaut, monkeypatch):
    monkeypatch.setattr(portrait, "model_path", lambda key: None)
    monkeypatch.setattr(portrait, "_nets", {})
    d, subj = depth_models.estimate("classical", astronaut)
    out, subject, n, person = portrait.refine(astronaut, d, subj, HFOV)
    assert n == 0 and out is d and subject is subj and person is None


def test_pipeline_gives_the_photo_layer_soft_edges(small_portrait):
    on = pipeline.run(small_portrait)
    off = pipeline.run(small_portrait, pipeline.Settings(portrait=False))
    assert off.alpha is None and off.faces == 0
    assert on.faces == 1 and on.alpha.shape == on.texture.shape[:2]
    assert on.alpha.min() >= 0 and on.alpha.max() <= 1 and (on.alpha < 0.99).sum() > 50
    assert (on.alpha[~np.repeat(np.repeat(on.mask, 1, 0), 1, 1)] == 1).mean() > 0.99   # far side opaque


def test_colour_guided_filter_matches_the_direct_solve():
    rng = np.random.default_rng(3)
    guide = rng.uniform(0, 1, (30, 40, 3)).astype(np.float32)
    p = (rng.uniform(0, 1, (30, 40)) > 0.5).astype(np.float32)
    r, eps = 2, 1e-3
    k = (2 * r + 1, 2 * r + 1)
    bf = lambda x: cv2.boxFilter(x, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mi = np.stack([bf(guide[..., c]) for c in range(3)], -1)
    cov = np.stack([bf(guide[..., c] * p) for c in range(3)], -1) - mi * bf(p)[..., None]
    var = np.stack([np.stack([bf(guide[..., i] * guide[..., j]) - mi[..., i] * mi[..., j] for j in range(3)], -1)
                    for i in range(3)], -2) + eps * np.eye(3)
    a = np.linalg.solve(var, cov[..., None])[..., 0]
    b = bf(p) - (a * mi).sum(-1)
    want = (np.stack([bf(np.ascontiguousarray(a[..., c])) for c in range(3)], -1) * guide).sum(-1) + bf(b)
    assert np.allclose(portrait.guided_filter_color(guide, p, r, eps), want, atol=1e-3)
    region = np.zeros(p.shape, bool)
    region[10:20, 10:30] = True
    banded = portrait.guided_filter_color(guide, p, r, eps, region=region)
    assert np.allclose(banded[region], want[region], atol=1e-3)


def test_face_mesh_rasterizer_matches_scipy():
    """The face relief's own triangle rasteriser (SciPy's Delaunay transforms took seconds
    under a busy BLAS) gives SciPy's inside test and linear interpolation exactly."""
    from scipy import interpolate, spatial

    from photo3d.inference.portrait import _rasterize
    rng = np.random.default_rng(3)
    xy = np.concatenate([rng.random((300, 2)) * 80 + 10, rng.normal(50, 2, (60, 2))])  # clustered slivers too
    z = rng.random(len(xy))
    tri = spatial.Delaunay(xy)
    inside, zmap = _rasterize(tri.simplices, xy, z, (100, 100), tri.neighbors)
    yy, xx = np.mgrid[0:100, 0:100]
    pts = np.stack([xx.ravel(), yy.ravel()], -1).astype(float)
    ref_inside = (tri.find_simplex(pts) >= 0).reshape(100, 100)
    ref_z = interpolate.LinearNDInterpolator(tri, z)(pts).reshape(100, 100)
    assert (inside == ref_inside).all()
    assert np.abs(zmap[inside] - ref_z[inside]).max() < 1e-9
