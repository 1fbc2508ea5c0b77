"""Depth tiles for large photos (inference/depth/tiling.py): a synthetic scene whose "model" sees
the true disparity in the photo's red channel but answers, like real relative-depth
models, in its own units per call (and, for the hard case, slightly non-linearly).
The merged map must keep the whole photo's layout, show no seam where tiles meet, bring
out detail the single run misses, and never hand the model more than its working size."""
import cv2
import numpy as np
import pytest

from photo3d.inference import depth as depth_models, pipeline
from photo3d.inference.depth import tiling
from photo3d.inference.photo import resize

WORK = 128          # the fake model's working size: small, so tiles matter and tests are quick


def true_disparity(w, h):
    """Ground receding upwards, a round subject in front, a thin pole (6 px at 2400 px)."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = (u + 0.5) / w, (v + 0.5) / h
    disp = 0.2 + 0.3 * v
    disp = np.where((u - 0.4) ** 2 + ((v - 0.55) * h / w) ** 2 < 0.15 ** 2, 1.0, disp)
    disp = np.where(np.abs(u - 0.75) * w < 3, 0.8, disp)
    return disp.astype(np.float32)


def photo_of(disp):
    rgb = np.empty(disp.shape + (3,), np.float32)
    rgb[..., 0] = disp / 1.2
    rgb[..., 1] = 0.5
    rgb[..., 2] = 0.3
    return rgb


class FakeModel:
    """Relative inverse depth from the red channel, normalised per call (its own units);
    ``gamma``: a per-call non-linearity that no scale and shift can undo exactly."""

    def __init__(self, gamma=False):
        self.gamma, self.calls, self.largest = gamma, 0, 0

    def __call__(self, rgb):
        self.calls += 1
        self.largest = max(self.largest, max(rgb.shape[:2]))
        assert max(rgb.shape[:2]) <= WORK          # memory bounded: never more than the working size
        r = rgb[..., 0].astype(np.float32)
        d = (r - r.min()) / max(float(r.max() - r.min()), 1e-6)
        if self.gamma:
            d = d ** (0.8 + 0.4 * float(r.mean()))
        d = 0.1 + 0.9 * d
        return 1.0 / d, None


def _truth_at(plan):
    w, h = plan.photo_size
    return resize(true_disparity(w, h), plan.out_size)


def _near_edges(disp, px=3):
    k = np.ones((3, 3), np.uint8)
    step = (cv2.dilate(disp, k) - cv2.erode(disp, k)) > 0.05
    return cv2.dilate(step.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0


@pytest.fixture(scope="module")
def big():
    w, h = 2400, 1600
    return photo_of(true_disparity(w, h))


def test_plans_cover_the_photo_with_overlap():
    for size in ((6000, 4000), (4000, 6000), (8000, 2000), (1300, 1300)):
        for n in (2, 3, 4):
            p = tiling.plan(size, 518, n)
            assert p is not None
            w, h = size
            cover = np.zeros((h // 10 + 1, w // 10 + 1), bool)
            for x0, y0, x1, y1 in p.boxes:
                assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
                cover[y0 // 10: y1 // 10, x0 // 10: x1 // 10] = True
            assert cover[: h // 10, : w // 10].all()
            xs = sorted({b[0] for b in p.boxes})
            if len(xs) > 1:       # neighbours share at least the overlap
                assert xs[1] - xs[0] <= (1 - tiling.OVERLAP) * p.tile[0] + 1
            assert max(p.out_size) <= max(size)
    assert tiling.plan((600, 400), 518, 3) is None           # already near the model's size
    assert tiling.plan((6000, 4000), 518, 1) is None
    assert tiling.auto_tiles((700, 500), 518, 1024) == 0
    assert tiling.auto_tiles((6000, 4000), 518, 1024) in (2, 3)
    assert tiling.auto_tiles((6000, 4000), 518, 300) == 0     # a small mesh gains nothing


@pytest.mark.parametrize("gamma", [False, True])
def test_merged_depth_is_seamless_and_keeps_the_layout(big, gamma):
    h, w = big.shape[:2]
    plan = tiling.plan((w, h), WORK, 4)
    model = FakeModel(gamma)
    seen = []
    depth, subject, extras = tiling.merge(model, big, WORK, plan, on_tile=lambda i, n: seen.append((i, n)))
    assert depth.shape == plan.out_size[::-1] and np.isfinite(depth).all() and (depth > 0).all()
    assert subject is None and set(extras) == {"tile_gap"}
    assert extras["tile_gap"].shape == depth.shape and (extras["tile_gap"] >= 0).all()
    assert model.calls == plan.count + 1 and seen[-1] == (plan.count + 1, plan.count + 1)
    m = 1.0 / depth
    truth = _truth_at(plan)
    smooth = ~_near_edges(truth)
    # The whole photo's layout: one scale and shift maps the merged map onto the truth.
    A = np.stack([truth[smooth], np.ones(smooth.sum(), np.float32)], 1)
    coef, *_ = np.linalg.lstsq(A, m[smooth], rcond=None)
    err = np.abs(m - (coef[0] * truth + coef[1]))[smooth]
    span = coef[0] * (truth.max() - truth.min())
    assert coef[0] > 0
    assert np.percentile(err, 99) < (0.03 if not gamma else 0.08) * span
    # Ordering: pairs of pixels clearly at different depths stay in the same order.
    rng = np.random.default_rng(0)
    ys, xs = np.nonzero(smooth)
    i, j = rng.integers(0, len(ys), (2, 20000))
    dt = truth[ys[i], xs[i]] - truth[ys[j], xs[j]]
    dm = m[ys[i], xs[i]] - m[ys[j], xs[j]]
    clear = np.abs(dt) > 0.1 * (truth.max() - truth.min())
    assert (np.sign(dt[clear]) == np.sign(dm[clear])).mean() > 0.99
    # No seam: nowhere (where tiles meet included) does the merged map step more than the truth does.
    for axis in (0, 1):
        grad = np.abs(np.diff(m, axis=axis))
        tgrad = np.abs(np.diff(coef[0] * truth, axis=axis))
        ok = np.diff(smooth.astype(np.int8), axis=axis) == 0
        ok &= smooth[1:, :] if axis == 0 else smooth[:, 1:]
        assert grad[ok].max() <= tgrad[ok].max() + 0.004 * span, (axis, grad[ok].max() / span)


def test_tiles_bring_out_detail_the_whole_photo_misses(big):
    h, w = big.shape[:2]
    plan = tiling.plan((w, h), WORK, 4)
    depth, _, _ = tiling.merge(FakeModel(), big, WORK, plan)
    once, _ = FakeModel()(resize(big, (WORK, round(WORK * h / w))))
    m, g = 1.0 / depth, resize(1.0 / once, plan.out_size)
    ow = plan.out_size[0]
    pole = round(0.75 * ow)
    rows = slice(int(0.1 * m.shape[0]), int(0.3 * m.shape[0]))     # above the subject: ground only

    def contrast(d):
        return float(np.median(d[rows, pole - 1: pole + 2].max(1) - d[rows, pole - 12: pole - 8].mean(1)))

    assert contrast(m) > 2.0 * contrast(g) > 0 or (contrast(g) <= 0 < contrast(m))


def test_pipeline_tiles_any_depth_model(tmp_path, monkeypatch):
    w, h = 1200, 800
    photo = tmp_path / "big.png"
    cv2.imwrite(str(photo), np.round(photo_of(true_disparity(w, h))[..., ::-1] * 255).astype(np.uint8))
    fake = FakeModel()
    monkeypatch.setitem(depth_models.MODELS, "fake-synthetic",
                        depth_models.DepthModel("fake-synthetic", "synthetic", "test", WORK, fake))
    tiles = []
    r = pipeline.run(str(photo), pipeline.Settings(depth_model="fake-synthetic", portrait=False, depth_tiles=3),
                     on_tile=lambda i, n: tiles.append((i, n)))
    assert r.tiles is not None and r.tiles.count >= 3 and fake.calls == r.tiles.count + 1
    assert tiles[-1] == (r.tiles.count + 1,) * 2 and "depth: tiling" in r.details
    assert r.foreground_mesh.n_vertices > 0
    # automatic: the same photo gets tiles; off: one run
    fake.calls = 0
    r = pipeline.run(str(photo), pipeline.Settings(depth_model="fake-synthetic", portrait=False,
                                                   depth_tiles=pipeline.AUTO_TILES))
    assert r.tiles is not None and fake.calls == r.tiles.count + 1
    fake.calls = 0
    r = pipeline.run(str(photo), pipeline.Settings(depth_model="fake-synthetic", portrait=False))
    assert r.tiles is None and fake.calls == 1


def test_classical_model_tiles_too(tmp_path, portrait_path):
    from photo3d.inference.photo import load_photo
    rgb = load_photo(portrait_path).rgb
    h, w = rgb.shape[:2]
    big = cv2.resize(rgb, (w * 1400 // max(w, h), h * 1400 // max(w, h)), interpolation=cv2.INTER_LINEAR)
    plan = tiling.plan((big.shape[1], big.shape[0]), 512, 2)
    depth, subject, _ = tiling.merge(lambda img: depth_models.estimate("classical", img), big, 512, plan)
    assert depth.shape == plan.out_size[::-1] and np.isfinite(depth).all() and (depth > 0).all()
    assert subject is not None and subject.shape == depth.shape    # the subject of the whole photo


def test_cli_depth_tiles(tmp_path, portrait_path):
    from helpers import run_cli
    from photo3d.inference.photo import load_photo
    rgb = load_photo(portrait_path).rgb
    photo = tmp_path / "large.jpg"
    cv2.imwrite(str(photo), np.round(cv2.resize(rgb, (1400, 1050))[..., ::-1] * 255).astype(np.uint8))
    rc, so, se = run_cli("bench", photo, "--depth-tiles", "2")
    assert rc == 0, se
    lines = so.strip().splitlines()
    names = [ln.split()[0] for ln in lines if not ln.startswith("#")]
    assert names.index("tiling") == names.index("depth") + 1           # its own line, after depth's
    tiling_line = next(ln for ln in lines if ln.startswith("tiling"))
    assert " s   peak " in tiling_line and "tiles" in tiling_line
    assert lines[-1].startswith("total ")
    rc, so, se = run_cli("depth", photo, "--out", tmp_path / "d.npy", "--depth-tiles", "auto")
    assert rc == 0, se
    assert np.load(tmp_path / "d.npy").shape == (1050, 1400)
    rc, so, se = run_cli("depth", photo, "--out", tmp_path / "d.npy", "--depth-tiles", "9")
    assert rc == 2 and "out of range" in se and len(se.strip().splitlines()) == 1
