"""Camera-path math: loops close, dolly zoom keeps the subject's size, travel scales with depth."""
import math

import numpy as np
import pytest

from photo3d.inference import camera_path as cp

EXTENT = cp.SceneExtent(subject_depth=2.0, near_depth=1.5, far_depth=8.0)


def _path(preset, frames=48, extent=EXTENT, **kw):
    return cp.make_path(cp.PathParams(preset=preset, frames=frames, hfov_deg=60.0, aspect=1.5, **kw), extent)


@pytest.mark.parametrize("preset", cp.PRESETS)
def test_every_preset_moves_and_is_valid(preset):
    p = _path(preset)
    assert p.matrices.shape == (48, 4, 4) and p.hfov_deg.shape == (48,)
    assert np.isfinite(p.matrices).all() and (p.hfov_deg > 10).all() and (p.hfov_deg <= 60.0 + 1e-9).all()
    rot = p.matrices[:, :3, :3]
    assert np.allclose(rot @ rot.transpose(0, 2, 1), np.eye(3), atol=1e-9)       # rigid
    assert np.allclose(np.linalg.det(rot), 1.0)
    moved = np.ptp(p.matrices[:, :3, 3], axis=0).max() + np.ptp(p.hfov_deg)
    assert moved > 1e-3


@pytest.mark.parametrize("preset", sorted(cp.LOOPING))
def test_loops_are_seamless(preset):
    """Frame F would equal frame 0: the step from the last frame back to the first is
    like any other step (continuous position and velocity)."""
    p = _path(preset, frames=60)
    pos = p.matrices[:, :3, 3]
    wrapped = np.concatenate([pos, pos[:2]])
    steps = np.diff(wrapped, axis=0)
    typical = np.linalg.norm(steps, axis=1).max()
    assert np.linalg.norm(steps[-2]) <= typical + 1e-12
    accel = np.linalg.norm(np.diff(steps, axis=0), axis=1)
    assert accel[-2:].max() <= accel[:-2].max() + 1e-12


def test_dolly_zoom_keeps_subject_size():
    p = _path("dolly-zoom", crop_to_photo=False)
    # A point at the subject's depth, off-axis: its image position must not change.
    pt = np.array([0.3, 0.2, -EXTENT.subject_depth, 1.0])
    xs = []
    for m, h in zip(p.matrices, p.hfov_deg):
        c = np.linalg.inv(m) @ pt
        xs.append(c[0] / -c[2] / math.tan(math.radians(h) / 2))
    xs = np.array(xs)
    assert np.ptp(p.hfov_deg) > 1.0                          # it really zooms
    assert np.abs(xs / xs[0] - 1).max() < 0.01


def test_travel_scales_with_scene_depth():
    a = _path("swing", crop_to_photo=False)
    big = cp.SceneExtent(EXTENT.subject_depth * 3, EXTENT.near_depth * 3, EXTENT.far_depth * 3)
    b = _path("swing", extent=big, crop_to_photo=False)
    assert b.max_travel == pytest.approx(3 * a.max_travel)
    c = _path("swing", crop_to_photo=False, amplitude=2.0)
    assert c.max_travel == pytest.approx(2 * a.max_travel)


def test_crop_keeps_frames_inside_the_photo():
    loose = _path("swing", crop_to_photo=False)
    tight = _path("swing")
    assert (tight.hfov_deg < loose.hfov_deg).all() and tight.hfov_deg.min() > 0.6 * 60


def test_easing_and_errors():
    t = np.linspace(0, 1, 11)
    for e in cp.EASINGS:
        y = cp.ease(t, e)
        assert y[0] == 0 and y[-1] == 1 and (np.diff(y) >= 0).all()
    with pytest.raises(ValueError):
        _path("spiral")
    with pytest.raises(ValueError):
        cp.ease(t, "bouncy")


def test_parallax_band():
    band = cp.parallax_band_px(1000, 60.0, EXTENT, 0.1)
    f = 500 / math.tan(math.radians(30))
    assert band == pytest.approx(f * 0.1 * (1 / 1.5 - 1 / 8.0))


@pytest.mark.parametrize("preset", ["zoom-in", "dolly-zoom", "ken-burns"])
def test_pingpong_makes_one_way_moves_loop(preset):
    p = _path(preset, frames=40, loop="pingpong")
    pos = p.matrices[:, :3, 3]
    steps = np.linalg.norm(np.diff(np.concatenate([pos, pos[:1]]), axis=0), axis=1)
    assert steps[-1] <= steps.max() + 1e-12                  # wrapping is just another step
    far = np.linalg.norm(pos, axis=1).argmax()
    assert 15 <= far <= 25                                   # the far end is mid-clip
    once = _path(preset, frames=40)
    assert np.linalg.norm(once.matrices[-1, :3, 3] - once.matrices[0, :3, 3]) > 10 * steps[-1]
    with pytest.raises(ValueError):
        _path(preset, loop="bounce")


@pytest.mark.parametrize("preset", ["zoom-in", "dolly-zoom", "ken-burns"])
def test_seamless_loop_mode_has_continuous_velocity(preset):
    """loop: one-way moves go there and back with no jolt at the wrap (unlike a linear ping-pong)."""
    p = _path(preset, frames=60, loop="loop", easing="linear")
    pos = p.matrices[:, :3, 3]
    wrapped = np.concatenate([pos, pos[:2]])
    steps = np.diff(wrapped, axis=0)
    accel = np.linalg.norm(np.diff(steps, axis=0), axis=1)
    assert accel[-2:].max() <= accel[:-2].max() + 1e-12
    assert np.linalg.norm(steps[-1]) < 0.2 * np.linalg.norm(steps, axis=1).max()   # slows into the turn
    pp = _path(preset, frames=60, loop="pingpong", easing="linear")
    pps = np.diff(np.concatenate([pp.matrices[:, :3, 3], pp.matrices[:2, :3, 3]]), axis=0)
    assert np.linalg.norm(np.diff(pps, axis=0), axis=1)[-2:].max() > accel.max()   # ping-pong turns sharply


@pytest.mark.parametrize("preset", sorted(cp.LATERAL))
def test_direction_turns_the_move_in_the_image_plane(preset):
    a = _path(preset, crop_to_photo=False)
    b = _path(preset, crop_to_photo=False, direction_deg=90.0)
    pa, pb = a.matrices[:, :3, 3], b.matrices[:, :3, 3]
    assert np.allclose(pb[:, 0], -pa[:, 1], atol=1e-12) and np.allclose(pb[:, 1], pa[:, 0], atol=1e-12)
    assert np.allclose(pb[:, 2], pa[:, 2])
    assert _path("zoom-in", direction_deg=90.0).matrices == pytest.approx(_path("zoom-in").matrices)


def test_targets_follow_the_camera_only_when_it_does_not_turn():
    circle = _path("circle")
    assert circle.target_is_fixed and np.allclose(circle.targets[0], [0, 0, -EXTENT.subject_depth])
    kb = _path("ken-burns")
    assert not kb.target_is_fixed
    fwd = -kb.matrices[:, :3, 2]
    to_target = kb.targets - kb.matrices[:, :3, 3]
    assert np.allclose(np.cross(fwd, to_target), 0, atol=1e-12)      # still looking at its target


def test_tilt_offset_for_look_around():
    centre = cp.tilt_offset(0, 0, EXTENT)
    assert np.allclose(centre, 0)
    right = cp.tilt_offset(1, 0, EXTENT)
    assert right[0] > 0 and right[1] == 0 and right[2] == 0
    assert np.allclose(cp.tilt_offset(5, -7, EXTENT), cp.tilt_offset(1, -1, EXTENT))       # clamped
    big = cp.SceneExtent(EXTENT.subject_depth * 2, EXTENT.near_depth * 2, EXTENT.far_depth * 2)
    assert np.allclose(cp.tilt_offset(0.5, 0.5, big), 2 * cp.tilt_offset(0.5, 0.5, EXTENT))


def test_rigid_inverse_matches_the_general_inverse():
    m = _path("orbit").matrices
    assert np.allclose(cp.rigid_inverse(m), np.linalg.inv(m), atol=1e-12)
