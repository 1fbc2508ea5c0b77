"""Scene priors (inference/depth/priors.py): the sky farthest and flat, what stands behind the
subject behind it and planar; and which models get them."""
import cv2
import numpy as np

from photo3d.inference import depth as depth_models
from photo3d.inference.depth import priors


def _outdoor(h=96, w=128):
    """Blue sky over the top third, a grey wall, a green ground; a red subject standing on it."""
    rgb = np.zeros((h, w, 3), np.float32)
    rgb[: h // 3] = (0.35, 0.55, 0.9)
    rgb[h // 3: 2 * h // 3] = (0.5, 0.5, 0.45)
    rgb[2 * h // 3:] = (0.3, 0.5, 0.2)
    rng = np.random.default_rng(0)
    rgb[h // 3:] += rng.normal(0, 0.05, (h - h // 3, w, 1)).astype(np.float32)   # texture: not sky
    subject = np.zeros((h, w), bool)
    subject[40:80, 50:80] = True
    rgb[subject] = (0.8, 0.1, 0.1)
    return np.clip(rgb, 0, 1), subject


def test_sky_is_found_and_sent_farthest_and_flat():
    rgb, _ = _outdoor()
    rgb[:40, 100:104] = (0.3, 0.3, 0.3)                    # a mast against the sky
    rgb[32:36, :60] = (0.36, 0.55, 0.88)                   # haze of the sky's colour below it, textured
    rgb[32:36, :60] += np.random.default_rng(1).normal(0, 0.05, (4, 60, 1)).astype(np.float32)
    sky = priors.sky_mask(rgb)
    assert sky[:30, :95].mean() > 0.95 and not sky[:, 100:104].any() and not sky[40:].any()
    depth = np.full(sky.shape, 4.0, np.float32)
    depth[:32] = np.linspace(1.5, 3.0, 32)[:, None]       # the model read the sky as near
    depth[55:60, :10] = 8.0                                # the farthest the model saw
    depth[:40, 100:104] = 2.0
    depth[70:] = 2.0
    out = priors.sky_far(depth, sky, rgb)
    assert np.allclose(out[sky], depth.max()) and np.isclose(out.max(), depth.max())
    assert np.array_equal(out[50:], depth[50:])           # nothing moves away from the sky
    assert np.array_equal(out[:, 100:104], depth[:, 100:104])              # the mast keeps its depth to the tip
    haze = out[32:34, 10:50] - depth[32:34, 10:50]
    assert (haze >= 0).all() and haze.mean() > 0.15                         # the haze ramps towards the sky
    assert np.allclose(priors.sky_far(depth, sky), np.where(sky, out, depth))      # no photo: no feather
    assert priors.sky_far(depth, np.zeros_like(sky), rgb) is depth


def test_a_textured_wall_is_no_sky_and_a_portrait_needs_blue():
    rgb, _ = _outdoor()
    grey = np.repeat(rgb.mean(axis=2, keepdims=True), 3, axis=2)
    grey[: 30] = 0.8                                       # a bright, flat, grey top: overcast sky...
    assert priors.sky_mask(grey)[:25].all()
    assert not priors.sky_mask(grey, strict=True).any()    # ...but behind a face, a wall


def test_what_stands_above_the_subjects_foot_goes_behind_it_and_flat():
    h, w = 96, 128
    _, subject = _outdoor(h, w)
    yy, xx = np.mgrid[0:h, 0:w]
    disp = 0.1 + 0.002 * yy + 0.0005 * xx                 # a receding background plane
    disp[10:30, 5:30] += 0.5                               # a shelf the model brought forward of the subject
    disp[subject] = 0.5
    disp[85:] = 0.6                                        # the ground in front of the subject's foot
    depth = (1 / disp).astype(np.float32)
    out = priors.behind_subject(depth, subject)
    od = 1 / out
    assert np.allclose(od[subject], 0.5)                   # the subject stays
    assert np.allclose(od[85:], 0.6)                       # so does the ground below its foot
    behind = (yy < 79) & ~subject
    assert od[behind].max() <= 0.5 / priors.BEHIND_GAP + 1e-6
    plane = 0.1 + 0.002 * yy + 0.0005 * xx
    assert np.abs(od[10:30, 5:30] - plane[10:30, 5:30]).max() < 0.01      # the bump is flattened
    assert np.abs(od[behind] - plane[behind]).max() < 0.01                # the plane itself kept
    kept = priors.behind_subject(depth, subject, relief=1.0)              # relief kept: only pushed back
    assert np.allclose(1 / kept[40:60, 5:30], disp[40:60, 5:30])


def test_sky_and_tiny_subjects_are_left_alone():
    h, w = 96, 128
    rgb, subject = _outdoor(h, w)
    depth = np.full((h, w), 4.0, np.float32)
    depth[subject] = 8.0
    sky = priors.sky_mask(rgb)
    out = priors.apply(depth, rgb, subject)
    assert np.allclose(out[sky], 8.0)                                     # farthest, not pushed by the subject
    tiny = np.zeros_like(subject)
    tiny[50, 60] = True
    assert priors.behind_subject(depth, tiny) is depth
    assert np.array_equal(priors.apply(depth, rgb, None)[50:], depth[50:])


def test_only_the_bundled_net_gets_the_layout_priors():
    assert depth_models.MODELS["photo3d-net"].layout_priors
    assert not depth_models.MODELS["classical"].layout_priors
    assert not any(m.layout_priors for n, m in depth_models.MODELS.items() if n != "photo3d-net")


def test_a_dusk_sky_is_clearly_blue_a_blurred_teal_background_is_not():
    rgb, _ = _outdoor()
    dusk, teal = rgb.copy(), rgb.copy()
    dusk[:32] = (0.17, 0.23, 0.35)                         # the rocket's sky
    teal[:32] = (0.01, 0.23, 0.24)                         # the flower's foliage, out of focus
    assert priors.sky_mask(dusk)[:25].all()
    assert not priors.sky_mask(teal).any()


def test_the_background_plane_goes_no_farther_than_the_farthest_seen():
    h, w = 96, 128
    _, subject = _outdoor(h, w)
    yy, xx = np.mgrid[0:h, 0:w]
    disp = np.where(yy >= 20, 0.05 + 0.01 * (yy - 20), 0.1)   # a steep floor; its plane, run on, goes below zero
    disp[subject] = 0.9
    depth = (1 / disp).astype(np.float32)
    out = priors.behind_subject(depth, subject)
    assert np.isfinite(out).all() and out.max() <= depth.max() * 1.0001


def test_what_runs_on_from_the_subject_at_its_depth_stays_and_its_flecks_go_back():
    h, w = 96, 128
    _, subject = _outdoor(h, w)
    disp = np.full((h, w), 0.2, np.float32)
    disp[subject] = 0.5
    disp[30:50, 80:100] = 0.5                  # a saucer under the cup: level with it, touching it
    disp[10:20, 5:20] = 0.6                    # a shelf brought forward, away from the subject
    fleck = np.zeros_like(subject)
    fleck[5:9, 110:114] = True                 # a bit of a shelf the mask took
    disp[fleck] = 0.7
    texture = np.random.default_rng(2).uniform(0.3, 0.6, (h, w, 3)).astype(np.float32)     # no sky
    out = 1 / priors.apply((1 / disp).astype(np.float32), texture, subject | fleck)
    assert np.allclose(out[30:50, 80:100], 0.5)                          # attached: kept
    assert out[10:20, 5:20].max() <= 0.5 / priors.BEHIND_GAP + 1e-6      # pushed back
    assert out[fleck].max() <= 0.5 / priors.BEHIND_GAP + 1e-6            # the fleck too
    assert np.allclose(out[subject], 0.5)


def test_the_ground_is_one_plane_where_it_bulges_and_the_wall_and_subject_stay():
    h, w = 96, 128
    yy, xx = np.mgrid[0:h, 0:w]
    disp = np.where(yy >= 40, 0.1 + 0.01 * (yy - 40), 0.1).astype(np.float32)   # a wall, then a floor
    disp[70:85, 20:50] += 0.15                  # the pier's boards bulge towards the camera
    disp[60:75, 90:110] -= 0.05                 # a hollow: kept
    normals = np.zeros((h, w, 3), np.float32)
    normals[..., 2] = 1.0                       # the wall faces the camera
    normals[40:, :, 1], normals[40:, :, 2] = 0.95, 0.3     # the floor faces up
    subject = np.zeros((h, w), bool)
    subject[45:70, 60:80] = True
    normals[subject] = (0, 0, 1)
    disp[subject] = 0.6
    ground = priors.ground_mask(normals, subject)
    assert ground[40:].mean() > 0.8 and not ground[:40].any() and not ground[subject].any()
    out = 1 / priors.ground_plane((1 / disp).astype(np.float32), ground)
    floor = 0.1 + 0.01 * (yy - 40)
    assert np.abs(out[70:85, 20:50] - floor[70:85, 20:50]).max() < 0.01    # the bulge is flat
    assert np.allclose(out[60:75, 90:110], disp[60:75, 90:110])           # the hollow stays
    assert np.allclose(out[:40], 0.1) and np.allclose(out[subject], 0.6)   # the wall and subject stay
    up = np.zeros_like(normals)
    up[..., 2] = 1.0
    assert not priors.ground_mask(up, subject).any()                                  # no floor


def test_any_photo_size_and_content_gives_a_finite_positive_depth():
    rng = np.random.default_rng(0)
    for h, w in [(1, 1), (2, 3), (8, 8), (9, 40), (64, 48)]:
        for rgb in (np.zeros((h, w, 3), np.float32), rng.random((h, w, 3)).astype(np.float32),
                    np.broadcast_to(np.float32([0.3, 0.5, 0.9]), (h, w, 3)).copy()):        # all sky
            depth = (1 + rng.random((h, w))).astype(np.float32)
            for subject in (None, np.ones((h, w), bool), np.zeros((h, w), bool), rng.random((h, w)) > 0.5):
                for normals in (None, np.tile(np.float32([0, 1, 0]), (h, w, 1)), np.zeros((h, w, 3), np.float32)):
                    out = priors.apply(depth, rgb, subject, False, normals)
                    assert out.shape == depth.shape and np.isfinite(out).all() and (out > 0).all()


def test_a_long_thin_part_of_the_subject_is_straightened_and_a_round_one_is_not():
    h, w = 96, 128
    yy, xx = np.mgrid[0:h, 0:w]
    disp = np.full((h, w), 0.1, np.float32)
    rocket = (xx >= 30) & (xx < 38) & (yy >= 10) & (yy < 90)
    disp[rocket] = (0.5 + 0.2 * np.sin(np.pi * (yy - 10) / 80))[rocket]      # the model bent it
    ball = (xx - 90) ** 2 + (yy - 50) ** 2 < 15 ** 2
    disp[ball] = (0.6 + 0.1 * np.cos(np.pi * (xx - 90) / 30))[ball]           # a round thing's relief
    out = 1 / priors.straighten((1 / disp).astype(np.float32), rocket | ball)
    column = out[10:90, 34]
    assert np.abs(np.diff(column, 2)).max() < 1e-4                           # straight: linear along it
    assert np.allclose(out[ball], disp[ball]) and np.allclose(out[~(rocket | ball)], 0.1)


def test_an_upright_part_stands_at_one_depth_and_a_slanting_one_keeps_its_slope():
    # A model reads a standing rocket's tip as farther than its foot: orbited, it leans.
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w]
    disp = np.full((h, w), 0.1, np.float32)
    rocket = (xx >= 30) & (xx < 38) & (yy >= 10) & (yy < 110)
    disp[rocket] = (0.3 + 0.003 * yy)[rocket]
    out = 1 / priors.straighten((1 / disp).astype(np.float32), rocket)
    assert np.ptp(out[rocket]) < 1e-5 and abs(out[rocket].mean() - disp[rocket].mean()) < 0.01
    # A boom at 45 degrees (not standing) keeps the slope the model gave it along its length.
    boom = (np.abs((xx - 80) - (yy - 20)) < 4) & (yy >= 20) & (yy < 100)
    disp = np.full((h, w), 0.1, np.float32)
    disp[boom] = (0.3 + 0.003 * yy)[boom]
    out = 1 / priors.straighten((1 / disp).astype(np.float32), boom)
    assert np.corrcoef(out[boom], yy[boom])[0, 1] > 0.99


def test_a_sunlit_white_wall_below_a_blue_sky_is_no_sky():
    # A soft photo: the blue sky runs into a warm white wall (brighter, as flat) through
    # no edge at all; the wall used to join the sky and go to the far depth in strips.
    h, w = 96, 128
    rgb = np.zeros((h, w, 3), np.float32)
    rgb[:30] = (0.83, 0.88, 0.94)                          # pale blue sky
    rgb[30:70, 64:] = (0.98, 0.976, 0.96)                   # white wall, warmer than grey
    rgb[30:70, :64] = (0.4, 0.3, 0.2)                       # a roof, a doorway: not sky
    rgb[70:] = (0.5, 0.45, 0.4)
    rgb = cv2.GaussianBlur(rgb, (0, 0), 3)
    sky = priors.sky_mask(rgb)
    assert sky[:24].mean() > 0.95 and not sky[40:].any()
    # A neutral haze below the blue runs on as sky.
    hazy = rgb.copy()
    hazy[30:70, 64:] = (0.9, 0.9, 0.9)
    assert priors.sky_mask(cv2.GaussianBlur(hazy, (0, 0), 3))[30:60, 70:].mean() > 0.9
    # Under a hazy, warm sky (a sunset's) the warm rule does not apply.
    warm = rgb.copy()
    warm[:30] = (0.93, 0.9, 0.85)
    warm[30:70, 64:] = (0.93, 0.9, 0.85)
    assert priors.sky_mask(cv2.GaussianBlur(warm, (0, 0), 3))[:24].mean() > 0.95


def test_a_mast_against_the_sky_stands_upright_and_a_building_or_the_subject_is_left_alone():
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w]
    sky = yy < 90                                          # the horizon at row 90
    mast = (xx >= 30) & (xx < 36) & (yy >= 10) & (yy < 90)
    building = (xx >= 80) & (xx < 130) & (yy >= 40) & (yy < 90)
    rocket = (xx >= 60) & (xx < 66) & (yy >= 20) & (yy < 90)
    sky &= ~(mast | building | rocket)
    disp = np.full((h, w), 0.05, np.float32)
    disp[~sky] = (0.2 + 0.004 * yy)[~sky]                  # the model bent each along its height
    out = 1 / priors.against_sky((1 / disp).astype(np.float32), sky, rocket)
    top = mast & (yy < 70)                                 # above the fade towards the horizon
    assert np.ptp(out[top]) < 1e-4 and abs(out[top].mean() - disp[mast].mean()) < 0.05
    assert np.allclose(out[building], disp[building]) and np.allclose(out[rocket], disp[rocket])
    # It fades out towards the horizon, where the mast runs on down to its foot.
    assert abs(out[89, 33] - disp[89, 33]) < 0.01
    depth = (1 / disp).astype(np.float32)
    assert priors.against_sky(depth, np.zeros_like(sky)) is depth          # no sky, nothing stands against it
