"""Smoke test of tools/depthdata/generate.py, the synthetic depth-data generator (renders
2 tiny frames with Cycles in a subprocess, about 10 s)."""
import ast
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "depthdata", "generate.py")

pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.slow]

# seed 1: index 0 is an outdoor scene without a subject, index 1 a studio with a human
SEED = 1
KEYS = {"rgb", "depth", "valid", "normal", "mask", "hfov", "K", "mask_kind", "scene", "subject"}


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("depthdata")
    r = run("--out", str(out), "--count", "2", "--seed", str(SEED), "--size", "64x48", "--samples", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def test_files_and_arrays(generated):
    files = sorted(os.listdir(generated))
    assert files == ["000000.npz", "000001.npz"]
    with_subject = 0
    for name in files:
        d = np.load(os.path.join(generated, name))
        assert KEYS <= set(d.files)
        assert d["rgb"].shape == (48, 64, 3) and d["rgb"].dtype == np.uint8
        assert d["depth"].shape == (48, 64) and d["depth"].dtype == np.float32
        assert d["valid"].shape == (48, 64) and d["valid"].dtype == bool
        assert d["normal"].shape == (48, 64, 3) and d["normal"].dtype == np.float16
        assert d["mask"].shape == (48, 64) and d["mask"].dtype == np.uint8
        depth = d["depth"]
        assert np.isfinite(depth).all() and (depth > 0).all() and depth.max() <= 100.0
        assert d["valid"].mean() > 0.25
        n = d["normal"].astype(np.float32)
        norm = np.linalg.norm(n, axis=-1)
        known = norm > 0
        assert known[d["valid"]].mean() > 0.95
        assert np.allclose(norm[known], 1.0, atol=2e-3)
        # visible surfaces face the camera (camera looks down -z): n_z mostly > 0 on average
        assert n[known][:, 2].mean() > 0.2
        assert 0.5 < float(d["hfov"]) < 1.7
        if str(d["subject"]):
            with_subject += 1
            assert int(d["mask_kind"]) == 1
            assert d["mask"].sum() > 0
            # the subject stands out: its median depth is nearer than the frame's median
            assert np.median(depth[d["mask"] > 0]) < np.median(depth)
    assert with_subject >= 1


def test_resume_skips_existing(generated):
    before = {f: os.path.getmtime(os.path.join(generated, f)) for f in os.listdir(generated)}
    r = run("--out", str(generated), "--count", "2", "--seed", str(SEED), "--size", "64x48", "--samples", "2")
    assert r.returncode == 0, r.stderr
    after = {f: os.path.getmtime(os.path.join(generated, f)) for f in os.listdir(generated)}
    assert before == after


def test_z_pass_is_z_depth():
    r = run("--verify-z")
    assert r.returncode == 0, r.stderr
    res = ast.literal_eval([ln for ln in r.stdout.splitlines() if ln.startswith("{")][-1])
    assert abs(res["min"] - 5.0) < 1e-3 and abs(res["max"] - 5.0) < 1e-3
    assert res["expected_ray_length_corner"] > 7.0


def test_rich_adds_to_the_same_scenes(generated, tmp_path):
    """--rich (pools of light, lamps, lattice towers) is drawn from its own RNG: the scene,
    camera and exposure draws are the plain sample's, and only the extras change the frame."""
    r = run("--out", str(tmp_path), "--count", "2", "--seed", str(SEED), "--size", "64x48", "--samples", "2",
            "--rich")
    assert r.returncode == 0, r.stdout + r.stderr
    changed = 0
    for name in ("000000.npz", "000001.npz"):
        plain, rich = np.load(os.path.join(generated, name)), np.load(os.path.join(tmp_path, name))
        for k in ("scene", "subject", "hfov", "pitch", "roll", "cam_height", "world"):
            assert plain[k] == rich[k], k
        assert np.isfinite(rich["depth"]).all() and (rich["depth"] > 0).all()
        changed += not np.array_equal(plain["rgb"], rich["rgb"])
    assert changed >= 1            # at seed 1 the outdoor frame gets an extra
