"""The whole inference pipeline (no bpy): shapes, layers on a real portrait, progress, cancel."""
import numpy as np
import pytest

from photo3d.inference import pipeline
from photo3d.inference.errors import Cancelled, InputError


def test_portrait_with_classical_depth(small_portrait):
    r = pipeline.run(small_portrait, pipeline.Settings(depth_model="classical"))
    assert r.size == (256, 256) and r.depth.shape == (256, 256)
    assert r.texture.shape == (256, 256, 3) and r.background.shape == (256, 256, 3)
    assert r.mask.any() and 0.1 < r.mask.mean() < 0.8           # the astronaut stands out
    assert r.mask[52:62, 108:118].all()                          # her face is part of her
    assert np.median(r.depth[r.mask]) < np.median(r.depth[~r.mask])
    # most of what is inpainted lies behind the subject (the rest: other occlusion edges)
    assert r.hidden.any() and (r.hidden & r.mask).sum() > 0.5 * r.hidden.sum()
    # the background layer is behind the photo layer wherever it was filled in
    assert (r.background_depth[r.hidden] >= r.depth[r.hidden]).all()
    # adaptive density: far fewer vertices than pixels (every pixel with mesh_block=0)
    assert 0.05 * 256 * 256 < r.foreground_mesh.n_vertices < 0.6 * 256 * 256 and r.background_mesh.n_vertices > 0
    dense = pipeline.run(small_portrait, pipeline.Settings(depth_model="classical", mesh_block=0))
    assert dense.foreground_mesh.n_vertices > 0.9 * 256 * 256
    assert set(r.timings) == set(pipeline.STAGES)
    assert r.hfov_deg == pytest.approx(65.0)


def test_given_depth_is_used_exactly(box_files):
    photo, depth = box_files
    r = pipeline.run(photo, pipeline.Settings(depth_file=depth, hfov_deg=50))
    assert r.metric and r.depth_model == "file" and r.hfov_deg == 50
    assert np.array_equal(pipeline.depth_at_photo_resolution(r), np.load(depth))
    assert np.array_equal(r.mask, np.load(depth) < 5)


def test_large_photo_is_processed_at_working_resolution(tmp_path):
    import cv2
    big = np.random.default_rng(1).integers(0, 255, (900, 1600, 3), np.uint8)
    p = str(tmp_path / "big.png")
    cv2.imwrite(p, big)
    r = pipeline.run(p, pipeline.Settings(mesh_long_side=320, texture_long_side=1200))
    assert r.depth.shape == (180, 320)
    assert r.texture.shape == (675, 1200, 3)                    # texture kept sharper than the mesh
    assert r.foreground_mesh.n_vertices <= 320 * 180


def test_progress_and_cancel(small_portrait):
    seen = []
    pipeline.run(small_portrait, progress=lambda s, f: seen.append((s, f)))
    fracs = [f for _, f in seen]
    assert seen[0][0] == "start" and fracs == sorted(fracs) and fracs[-1] == 1.0
    calls = []

    def cancel_after_depth():
        calls.append(1)
        return len(calls) >= 2

    with pytest.raises(Cancelled):
        pipeline.run(small_portrait, cancelled=cancel_after_depth)
    assert len(calls) == 2


def test_bad_settings(small_portrait):
    with pytest.raises(InputError, match="field of view"):
        pipeline.run(small_portrait, pipeline.Settings(hfov_deg=200))
    with pytest.raises(InputError, match="unknown depth model"):
        pipeline.run(small_portrait, pipeline.Settings(depth_model="magic"))
