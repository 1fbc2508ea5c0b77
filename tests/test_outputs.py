"""Output files (issue 20): --outputs, the GIF/WebP loops, aspect presets, render quality."""
import math
import os
import types

import cv2
import numpy as np
import pytest

from helpers import FakeLayout
from photo3d import cli, settings
from photo3d.inference import camera_path
from photo3d.scene import outputs

# --- no Blender ---------------------------------------------------------------------------

def test_outputs_parse_and_default():
    assert settings.Options().outputs == ("mp4",)
    assert outputs.parse_outputs("GIF, webp,gif") == ("gif", "webp")
    args = cli.build_parser().parse_args(["make", "p.jpg", "--out", "o", "--outputs", "mp4,gif,webp",
                                          "--aspect", "9:16", "--quality", "draft"])
    opts = settings.options_from_args(args)
    assert (opts.outputs, opts.aspect, opts.quality) == (("mp4", "gif", "webp"), "9:16", "draft")
    for name in ("mp4", "gif", "webp"):
        assert name in outputs.OUTPUT_WRITERS
    assert {w.filename for w in outputs.OUTPUT_WRITERS.values()} >= {"video.mp4", "video.gif", "video.webp"}


@pytest.mark.parametrize("value, message", [
    ("mp4,mov", "unknown output format(s): mov (choose from mp4, gif, webp, sbs, anaglyph, glb)"),
    (",", "no outputs given"),
])
def test_unknown_outputs_are_one_clear_line(value, message, capsys):
    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args(["make", "p.jpg", "--out", "o", "--outputs", value])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_unknown_aspect_is_one_clear_line(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["make", "p.jpg", "--out", "o", "--aspect", "3:2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "9:16" in err[0], err


def test_frame_durations_keep_the_clock():
    gif = outputs.frame_durations_ms(90, 30, tick_ms=10, min_ticks=2)
    assert set(gif) == {30, 40} and sum(gif) == 3000          # 30 fps in centiseconds: 3.33 cs a frame
    webp = outputs.frame_durations_ms(24, 24)
    assert sum(webp) == 1000 and max(webp) - min(webp) <= 1
    assert outputs.frame_durations_ms(10, 100, tick_ms=10, min_ticks=2) == [20] * 10   # GIF: 50 fps at most


def test_a_one_way_path_gets_a_note_for_looping_formats():
    assert "jump back" in outputs.loop_note(settings.Options(path="zoom-in"), ["gif"])
    assert outputs.loop_note(settings.Options(path="zoom-in", loop="loop"), ["gif"]) == ""
    assert outputs.loop_note(settings.Options(path="circle"), ["gif", "webp"]) == ""
    assert outputs.loop_note(settings.Options(path="zoom-in"), ["mp4"]) == ""


def test_aspect_presets_sizes():
    from photo3d.settings import ASPECT_SIZES
    assert ASPECT_SIZES == {"16:9": (1920, 1080), "9:16": (1080, 1920), "1:1": (1080, 1080), "4:5": (1080, 1350)}
    assert all(min(s) == 1080 and s[0] % 2 == 0 and s[1] % 2 == 0 for s in ASPECT_SIZES.values())


def _photo_edges_in_frames(path, params, extent):
    """Smallest fraction of each frame's half-size at which the photo's frustum edge lies
    (>= 1: the frame is inside the photo), over near, subject and far depth."""
    tan0 = math.tan(math.radians(params.hfov_deg) / 2)
    inv = camera_path.rigid_inverse(path.matrices)
    tanf = np.tan(np.radians(path.hfov_deg) / 2)
    worst = np.inf
    for z in (extent.near_depth, extent.subject_depth, extent.far_depth):
        u = np.linspace(-1, 1, 21)
        border = np.concatenate([np.stack([u, np.full_like(u, s)], -1) for s in (-1, 1)]
                                + [np.stack([np.full_like(u, s), u], -1) for s in (-1, 1)])
        pts = np.stack([border[:, 0] * tan0 * z, border[:, 1] * tan0 / params.photo_aspect * z,
                        np.full(len(border), -z), np.ones(len(border))], -1)
        pc = np.einsum("fij,kj->fki", inv, pts)
        nx, ny = pc[..., 0] / -pc[..., 2], pc[..., 1] / -pc[..., 2]
        # The border point's distance out of the frame, in frame half-sizes, along its own side.
        fx = np.abs(nx) / tanf[:, None]
        fy = np.abs(ny) / (tanf[:, None] / params.aspect)
        side_x = np.abs(border[:, 0]) == 1
        worst = min(worst, float(np.min(np.where(side_x, fx, fy))))
    return worst


@pytest.mark.parametrize("aspect", ["9:16", "1:1", "4:5", "16:9"])
@pytest.mark.parametrize("preset", ["swing", "circle", "vertical", "zoom-in"])
def test_aspect_presets_keep_every_frame_inside_a_16_9_photo(aspect, preset):
    w, h = settings.ASPECT_SIZES[aspect]
    extent = camera_path.SceneExtent(2.0, 1.2, 6.0)
    params = camera_path.PathParams(preset=preset, frames=48, hfov_deg=60, aspect=w / h, photo_aspect=16 / 9,
                                    amplitude=0.5)
    path = camera_path.make_path(params, extent)
    assert _photo_edges_in_frames(path, params, extent) >= 1 - 1e-6
    # Narrower than the photo: about as much narrower as the aspects differ, no more.
    fit = camera_path.aspect_fit(w / h, 16 / 9)
    assert math.tan(math.radians(path.hfov_deg.max()) / 2) <= fit * math.tan(math.radians(60) / 2) + 1e-9


# --- renders --------------------------------------------------------------------------

def _frames_of(path):
    from PIL import Image
    with Image.open(path) as im:
        info = dict(im.info)
        frames, durations = [], []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB"), np.float32))
            durations.append(im.info.get("duration"))
    return frames, durations, info


def _mp4_frames(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            return frames
        frames.append(f)


def _seam_ratio(frames):
    """The last -> first difference over the median consecutive difference (about 1: no jump)."""
    d = [np.abs(a - b).mean() for a, b in zip(frames, frames[1:])]
    return np.abs(frames[-1] - frames[0]).mean() / np.median(d)


@pytest.fixture(scope="module")
def small_result(small_portrait):
    from photo3d.inference import pipeline
    return pipeline.run(small_portrait, pipeline.Settings(mesh_long_side=96))


@pytest.mark.blender
@pytest.mark.slow
def test_each_format_has_the_frames_size_and_a_seamless_loop(empty_scene, small_result, tmp_path):
    from photo3d.scene import build
    sc = empty_scene
    n = 8
    build.build_scene(sc, small_result, settings.Options(path="circle", frames=n, size=(40, 32), engine="cycles",
                                                          samples=1))
    lines = []
    written = outputs.write_outputs(sc, str(tmp_path), ["mp4", "gif", "webp"], report=lines.append)
    assert set(written) == {"mp4", "gif", "webp"} and not os.path.exists(tmp_path / ".frames")
    assert all("kB" in line or "MB" in line for line in lines) and len(lines) == 3
    mp4 = _mp4_frames(tmp_path / "video.mp4")
    assert len(mp4) == n and mp4[0].shape[:2] == (32, 40)
    for name in ("video.gif", "video.webp"):
        frames, durations, info = _frames_of(tmp_path / name)
        assert len(frames) == n and frames[0].shape[:2] == (32, 40), name
        assert info.get("loop") == 0, name
        tick = 10 if name.endswith(".gif") else 1          # GIF counts centiseconds
        assert sum(durations) == pytest.approx(1000 * n / 30, abs=tick), (name, durations)
        # The frame after the last is the first: no jump, and the first frame is not repeated.
        assert 0.3 < _seam_ratio(frames) < 1.6, name
        # Same pictures as the video (up to the palette and the codecs).
        assert np.abs(frames[0] - mp4[0][:, :, ::-1]).mean() < 12, name


@pytest.mark.blender
@pytest.mark.slow
def test_a_9_16_frame_of_a_16_9_photo_shows_no_background(empty_scene, portrait_path, tmp_path):
    """The extreme frames of a swing at 9:16 from a 16:9 photo: no pixel of the world (magenta)."""
    from photo3d.inference import pipeline
    from photo3d.scene import build, render
    img = cv2.imread(portrait_path)
    h, w = img.shape[:2]
    ch = int(w * 9 / 16) if w * 9 / 16 <= h else h
    cw = int(ch * 16 / 9)
    photo = str(tmp_path / "wide.png")
    cv2.imwrite(photo, cv2.resize(img[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw], (192, 108)))
    r = pipeline.run(photo, pipeline.Settings(mesh_long_side=96, portrait=False))
    sc = empty_scene
    n = 16
    build.build_scene(sc, r, settings.Options(path="swing", frames=n, aspect="9:16", engine="cycles", samples=1,
                                              amplitude=1.5))
    assert (sc.render.resolution_x, sc.render.resolution_y) == (1080, 1920)
    sc.render.resolution_percentage = 5                      # 54x96
    sc.world.color = (1.0, 0.0, 1.0)
    render.set_png_output(sc, "")
    sc.render.use_file_extension = False
    for f in (1, 1 + n // 4, 1 + 3 * n // 4):               # the middle and both ends of the swing
        sc.frame_set(f)
        out = str(tmp_path / f"f{f}.png")
        sc.render.filepath = out
        import bpy
        bpy.ops.render.render(write_still=True, scene=sc.name)
        px = cv2.imread(out).astype(int)
        assert px.shape[:2] == (96, 54)
        magenta = (px[..., 2] > 200) & (px[..., 0] > 200) & (px[..., 1] < 60)
        assert magenta.sum() == 0, (f, int(magenta.sum()))


@pytest.mark.blender
@pytest.mark.slow
def test_the_panel_render_button_writes_the_chosen_files(empty_scene, small_result, tmp_path, blender):
    from photo3d.scene import build
    sc = empty_scene
    build.build_scene(sc, small_result, settings.Options(path="swing", frames=4, size=(32, 32), engine="cycles",
                                                          samples=1))
    s = sc.photo3d
    s.outputs = {"gif"}
    s.quality = "draft"
    s.output_folder = str(tmp_path / "renders")
    sc.render.filepath, sc.render.image_settings.file_format = "//my_renders/shot_", "JPEG"
    sc.cycles.samples = 77
    assert blender.ops.photo3d.render_outputs() == {"FINISHED"}
    assert os.listdir(tmp_path / "renders") == ["video.gif"]
    # The user's own output settings and samples are theirs again afterwards.
    assert (sc.render.filepath, sc.render.image_settings.file_format, sc.cycles.samples) == \
        ("//my_renders/shot_", "JPEG", 77)
    # The Output section draws what it writes with.
    from photo3d.ui import panel
    out = types.SimpleNamespace(layout=FakeLayout(blender))
    assert panel.PHOTO3D_PT_output.poll(blender.context)
    panel.PHOTO3D_PT_output.draw(out, blender.context)
    assert {"outputs", "aspect", "quality", "output_folder", "photo3d.render_outputs"} <= set(out.layout.drawn)
    assert any("32x32, 4 frames at 30 fps" in t for t in out.layout.labels)
    # The aspect setting resizes the render and re-frames the path.
    s.aspect = "1:1"
    assert (sc.render.resolution_x, sc.render.resolution_y) == (1080, 1080)
    s.aspect = "photo"
    assert max(sc.render.resolution_x, sc.render.resolution_y) == 1080


@pytest.mark.blender
@pytest.mark.parametrize("values, cycles_samples", [
    ({}, 4), ({"quality": "draft"}, 1), ({"samples": 7}, 7), ({"quality": "draft", "samples": 3}, 3),
    ({"effects": ("dof",)}, 16), ({"motion_blur": True, "quality": "draft"}, 4),
])
def test_quality_sets_the_samples_and_samples_override(empty_scene, box_result, values, cycles_samples):
    from photo3d.scene import build, render
    build.build_scene(empty_scene, box_result, settings.Options(engine="cycles", frames=4, **values))
    assert empty_scene.cycles.samples == cycles_samples
    assert empty_scene.cycles.max_bounces == 0 and not empty_scene.cycles.use_adaptive_sampling
    build.build_scene(empty_scene, box_result, settings.Options(engine="eevee", frames=4, **values))
    n = values.get("samples") or render.samples_for("eevee", values.get("quality", "final"),
                                                    blurred=bool(values.get("effects") or values.get("motion_blur")))
    assert empty_scene.eevee.taa_render_samples == n and not empty_scene.eevee.use_shadows
