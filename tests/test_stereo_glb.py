"""Stereo (side by side, anaglyph) and glTF outputs on the box scene (a box 2 m in front
of a wall 5 m away, 50 degrees wide): the eyes' views differ by the disparity the
interocular and convergence give, the videos have the right size and frame count, and the
GLB re-imports into Blender and gives back the photo. Tiny Cycles renders."""
import json
import math
import os

import cv2
import numpy as np
import pytest

from photo3d.scene import build, glb, render, stereo
from photo3d.settings import Options

pytestmark = [pytest.mark.blender, pytest.mark.slow]

HFOV, BOX, WALL = 50.0, 2.0, 5.0


def _box_photo(sc, box_result, size, frames=2, path="swing"):
    build.build_scene(sc, box_result, Options(engine="cycles", size=size, samples=2, frames=frames, path=path))
    sc.cycles.filter_width = 0.01     # pixel centres: edges measured to a fraction of a pixel
    return sc


def _at_source_pose(sc):
    cam = sc.camera
    cam.animation_data_clear()
    cam.data.animation_data_clear()
    for con in list(cam.constraints):
        cam.constraints.remove(con)
    cam.matrix_world = cam.matrix_world.Identity(4)
    cam.data.angle = math.radians(HFOV)


def _photo(img):
    """Where the photo shows (the world's black or grey past its edges has no colour)."""
    return img.max(-1).astype(np.int16) - img.min(-1) > 60


def _box_x(img_bgr):
    """Horizontal centre (pixels) of the green box on the orange wall, from the rows
    through the box's middle, sub-pixel (each pixel's share of box colour)."""
    h = img_bgr.shape[0]
    rows = img_bgr[int(h * 0.35): int(h * 0.65)].astype(np.float64)
    g_minus_r = rows[..., 1] - rows[..., 2]
    share = np.clip((g_minus_r + 110.0) / 270.0, 0, 1)      # wall G-R = -110, box +160 (box_scene's colours)
    share[~_photo(rows)] = 0
    share[share < 0.05] = 0
    cols = share.sum(0)
    return float((cols * np.arange(len(cols))).sum() / cols.sum()) + 0.5


def _halves(img):
    w = img.shape[1] // 2
    return img[:, :w], img[:, w:]


def test_interocular_gives_the_parallax_budget_between_near_and_far():
    b = stereo.interocular_for(HFOV, BOX, WALL, parallax_percent=2.0)
    spread = stereo.disparity_px(b, 3.0, BOX, HFOV, 1920) - stereo.disparity_px(b, 3.0, WALL, HFOV, 1920)
    assert spread == pytest.approx(0.02 * 1920)
    assert stereo.disparity_px(b, BOX, BOX, HFOV, 1920) == 0.0                      # converged: on the screen
    assert stereo.interocular_for(HFOV, 10.0, 10.0, 2.0, subject=10.0) < 100        # a flat scene: bounded


def test_stereo_views_differ_by_the_expected_disparity(empty_scene, box_result, blender, tmp_path):
    sc = _box_photo(empty_scene, box_result, (160, 120))
    _at_source_pose(sc)
    sc.photo3d.stereo_parallax = 10.0            # measurable at 160 px: 16 px between box and wall
    b, c = stereo.stereo_parameters(sc)
    assert c == pytest.approx(BOX)               # converged on the subject
    assert b == pytest.approx(stereo.interocular_for(HFOV, BOX, WALL, 10.0, BOX))

    # Converged on the subject (the scene's own settings): the box stays put, and the eyes
    # zoom in just enough that the wall, which moves, still fills both frames.
    left, right = _halves(cv2.imread(stereo.render_stereo_still(sc, str(tmp_path / "subject.png"))))
    assert left.shape == (120, 160, 3)
    assert abs(_box_x(left) - _box_x(right)) < 0.5
    for half in (left, right):      # 9 columns without the zoom; the mesh's own edge is half a photo pixel in
        assert (~_photo(half)).any(0).sum() <= 2

    # Converged on the wall: the box comes out of the screen by b f (1/2 - 1/5).
    left, right = _halves(cv2.imread(stereo.render_stereo_still(sc, str(tmp_path / "wall.png"), convergence=WALL)))
    measured = _box_x(left) - _box_x(right)
    expected = stereo.disparity_px(b, WALL, BOX, HFOV, 160)
    assert expected == pytest.approx(16.0, rel=1e-3)
    assert measured == pytest.approx(expected, abs=0.5)
    # Everything put back: a mono scene again.
    assert not sc.render.use_multiview and sc.render.image_settings.views_format == "INDIVIDUAL"


def _frames(path):
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    return frames


@pytest.mark.skipif(not render.ffmpeg_available(), reason="no FFmpeg in this Blender")
def test_anaglyph_and_side_by_side_videos(empty_scene, box_result, blender, tmp_path):
    sc = _box_photo(empty_scene, box_result, (128, 96), frames=3)
    sc.photo3d.stereo_parallax = 10.0
    sc.photo3d.subject_depth = WALL        # converge on the wall: the box comes out by 12.8 px
    expected = stereo.disparity_px(stereo.stereo_parameters(sc)[0], WALL, BOX, HFOV, 128)

    ana = _frames(stereo.render_anaglyph(sc, str(tmp_path / "anaglyph.mp4")))
    assert len(ana) == 3 and ana[0].shape == (96, 128, 3)
    # Red/cyan: the left eye's box in the red channel (R low), the right eye's in green (G high).
    f = ana[0].astype(np.float64)
    mid = f[30:66]
    red_box, green_box = mid[..., 2] < 120, mid[..., 1] > 145
    xs = np.arange(128)
    shift = (red_box.sum(0) * xs).sum() / red_box.sum() - (green_box.sum(0) * xs).sum() / green_box.sum()
    assert shift == pytest.approx(expected, abs=2.0)      # H.264 halves the colour's resolution

    full = _frames(stereo.render_sbs(sc, str(tmp_path / "stereo_sbs.mp4"), full_width=True))
    assert len(full) == 3 and full[0].shape == (96, 256, 3)
    left, right = _halves(full[0])
    assert _box_x(left) - _box_x(right) == pytest.approx(expected, abs=1.0)
    half = _frames(stereo.render_sbs(sc, str(tmp_path / "half.mp4"), full_width=False))
    assert len(half) == 3 and half[0].shape == (96, 128, 3)
    assert sorted(os.listdir(tmp_path)) == ["anaglyph.mp4", "half.mp4", "stereo_sbs.mp4"]   # no _L names


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255 ** 2 / max(mse, 1e-10))


def test_soft_faces_are_those_whose_footprint_has_partial_alpha():
    alpha = np.ones((8, 8), np.float32)
    alpha[5, 6] = 0.5                                  # row 5 (v ~ 0.69), column 6 (u ~ 0.81)
    # Three triangles: around texel (6, 5), two texels away from it, far from it.
    uv = np.array([[6.5, 5.5], [7.0, 5.5], [6.5, 6.0],
                   [2.5, 5.5], [3.0, 5.5], [2.5, 6.0],
                   [1.0, 1.0], [2.0, 1.0], [1.0, 2.0]], np.float32) / 8
    soft = glb.soft_faces(uv, np.array([0, 3, 6]), alpha)
    assert soft.tolist() == [True, False, False]
    # A large face is soft when its box holds the texel; one texel past the box is not.
    big = np.array([[0.5, 0.5], [5.5, 0.5], [0.5, 4.4]], np.float32) / 8
    assert glb.soft_faces(big, np.array([0]), alpha).tolist() == [False]
    assert glb.soft_faces(big + [0, 1 / 8], np.array([0]), alpha).tolist() == [True]


def _glb_json(path):
    with open(path, "rb") as f:
        head = f.read(20)
        return json.loads(f.read(int.from_bytes(head[12:16], "little")))


def test_glb_round_trip_reproduces_the_source_view(empty_scene, box_result, box_files, blender, tmp_path):
    bpy = blender
    sc = _box_photo(empty_scene, box_result, box_result.size, frames=4, path="circle")
    counts = {k: len(getattr(bpy.data, k)) for k in ("objects", "meshes", "materials", "cameras", "scenes",
                                                      "images", "actions")}
    cam_pose = []
    for f in (1, 4):
        sc.frame_set(f)
        cam_pose.append(np.array(sc.camera.matrix_world))
    path = glb.export_glb(sc, str(tmp_path / "photo.glb"))
    assert os.path.getsize(path) > 1000
    assert sc.frame_current == 4           # the export went through the frames and came back
    # The user's scene is as it was: nothing left behind, nothing of theirs changed.
    assert {k: len(getattr(bpy.data, k)) for k in counts} == counts
    assert all(ob.data.uv_layers.active is None for ob in sc.objects if ob.type == "MESH")
    # Only the photo's soft edge blends: web viewers draw blended triangles without depth
    # writes, so a blended layer would show its far parts through its near ones.
    gltf = _glb_json(path)
    mats = gltf["materials"]
    prims = {m["name"]: [(mats[p["material"]].get("alphaMode", "OPAQUE"), gltf["accessors"][p["indices"]]["count"])
                         for p in m["primitives"]] for m in gltf["meshes"]}
    assert prims["photo3d background"][0][0] == "OPAQUE"
    (opaque, n_opaque), (blend, n_blend) = prims["photo3d foreground"]
    assert opaque == "OPAQUE" and blend == "BLEND" and 0 < n_blend < n_opaque
    assert len(gltf["images"]) == 2                    # the two foreground materials share the photo

    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    sc.render.fps = 30                 # the importer maps glTF seconds to frames at the scene's rate
    bpy.ops.import_scene.gltf(filepath=path)
    meshes = [ob for ob in sc.objects if ob.type == "MESH"]
    cams = [ob for ob in sc.objects if ob.type == "CAMERA"]
    assert len(meshes) == 2 and len(cams) == 1
    # The camera's move came along: the same pose at the first and the last frame.
    for f, pose in zip((1, 4), cam_pose):
        sc.frame_set(f)
        assert np.allclose(np.array(cams[0].matrix_world), pose, atol=1e-4)

    # From the source pose, the re-imported scene gives back the photo.
    render.configure(sc, "cycles", box_result.size, samples=4)
    sc.cycles.filter_width = 0.01
    data = bpy.data.cameras.new("source")
    data.sensor_fit, data.angle, data.clip_start = "HORIZONTAL", math.radians(HFOV), 0.01
    source = bpy.data.objects.new("source", data)
    sc.collection.objects.link(source)
    sc.camera = source
    assert render.render_still(sc, str(tmp_path / "source.png"))
    img, photo = cv2.imread(str(tmp_path / "source.png")), cv2.imread(box_files[0])
    assert _psnr(img[2:-2, 2:-2], photo[2:-2, 2:-2]) >= 35.0


@pytest.mark.skipif(not render.ffmpeg_available(), reason="no FFmpeg in this Blender")
def test_make_writes_the_chosen_outputs(box_files, tmp_path):
    from helpers import run_cli
    photo, depth = box_files
    out = tmp_path / "out"
    code, stdout, stderr = run_cli("make", photo, "--depth", depth, "--fov", "50", "--out", out, "--offline",
                                   "--outputs", "sbs,anaglyph,glb", "--frames", "2", "--size", "64x48",
                                   "--engine", "cycles", "--samples", "1")
    assert code == 0, stderr
    names = set(os.listdir(out))
    assert {"stereo_sbs.mp4", "anaglyph.mp4", "photo.glb", "scene.blend"} <= names
    assert "video.mp4" not in names
    assert "wrote photo.glb: " in stdout and "INFO" not in stdout
    assert len(_frames(str(out / "stereo_sbs.mp4"))) == 2


def test_unknown_outputs_are_one_clear_line(tmp_path):
    from helpers import run_cli
    code, _out, err = run_cli("make", "x.png", "--out", tmp_path, "--outputs", "mp4,hologram")
    assert code == 2 and "unknown output format(s): hologram" in err and len(err.strip().splitlines()) == 1
