"""`python -m photo3d` as users and scripts run it: outputs, and one clear line for bad input."""
import os

import cv2
import numpy as np
import pytest

from helpers import png_header_only, run_cli

OUTPUTS = {"scene.blend", "depth.npy", "depth.png", "mask.png", "background.png", "confidence.png"}


def _one_error_line(err):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("photo3d: error:"), err
    return lines[0]


def test_make_no_render_writes_the_contract_files(tmp_path, box_files):
    photo, depth = box_files
    out = tmp_path / "out"
    rc, so, se = run_cli("make", photo, "--out", out, "--depth", depth, "--fov", 50, "--no-render",
                         "--path", "zoom-in", "--loop", "pingpong", "--frames", 12)
    assert rc == 0, se
    assert set(os.listdir(out)) == OUTPUTS                         # nothing else, no staging left
    d = np.load(out / "depth.npy")
    assert d.dtype == np.float32 and np.array_equal(d, np.load(depth))
    dp = cv2.imread(str(out / "depth.png"), cv2.IMREAD_UNCHANGED)
    assert dp.dtype == np.uint16 and dp.shape == d.shape
    assert dp[d < 5].min() > dp[d >= 5].max()                      # white = near
    mask = cv2.imread(str(out / "mask.png"), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(mask > 127, d < 5)
    bg = cv2.imread(str(out / "background.png"))
    photo_px = cv2.imread(photo)
    assert bg.shape == photo_px.shape
    conf = cv2.imread(str(out / "confidence.png"), cv2.IMREAD_UNCHANGED)
    assert conf.dtype == np.uint8 and conf.shape == d.shape
    assert conf.min() > 250                  # the true depth, whose every step is on the photo's colour edge
    hole = mask > 127
    # the subject's colour (green) does not reach the background layer
    assert np.abs(bg[hole].astype(int) - photo_px[~hole][0]).max() < 40
    assert "reveals up to" in so


def test_make_automatic_path(tmp_path, box_files):
    photo, depth = box_files
    rc, so, se = run_cli("make", photo, "--out", tmp_path / "o", "--depth", depth, "--fov", 50, "--no-render",
                         "--path", "auto", "--max-reveal", "1.5", "--frames", 12)
    assert rc == 0, se
    line = next(ln for ln in so.splitlines() if "automatic path" in ln)
    assert "direction" in line and "amplitude" in line
    reveal = float(so.split("reveals up to ")[1].split(" %")[0])
    assert 0 < reveal <= 1.5
    rc, so, se = run_cli("make", photo, "--out", tmp_path / "p", "--depth", depth, "--path", "auto",
                         "--max-reveal", "50", "--no-render")
    assert rc == 2 and "between 0.1 and 20" in se and not os.path.exists(tmp_path / "p")


def test_depth_and_models(tmp_path, small_portrait):
    rc, so, se = run_cli("depth", small_portrait, "--out", tmp_path / "d.npy")
    assert rc == 0, se
    d = np.load(tmp_path / "d.npy")
    assert d.shape == (256, 256) and np.isfinite(d).all() and (d > 0).all()
    conf = cv2.imread(str(tmp_path / "d.confidence.png"), cv2.IMREAD_UNCHANGED)      # beside it
    assert conf.dtype == np.uint8 and conf.shape == d.shape and conf.max() > conf.min()
    assert sorted(os.listdir(tmp_path)) == ["d.confidence.png", "d.npy"]            # no partial files left
    rc, so, se = run_cli("models")
    assert rc == 0 and "classical" in so
    assert so.startswith("# ONNX Runtime ") and "\tengine\tprecision\t" in so
    net = next(ln for ln in so.splitlines() if ln.startswith("photo3d-net"))
    assert "\tonnxruntime\tfp32 (fp16 weights)\t" in net


def test_bench_prints_stages(small_portrait):
    rc, so, se = run_cli("bench", small_portrait)
    assert rc == 0, se
    lines = so.strip().splitlines()
    names = [ln.split()[0] for ln in lines if not ln.startswith("#")]
    for stage in ("load", "depth", "layers", "inpaint", "mesh", "scene"):
        assert stage in names
    assert lines[-1].startswith("total ") and lines[-1].endswith(" s")
    # which network ran, on which engine, provider and precision
    assert "# depth model: photo3d-net via onnxruntime CPUExecutionProvider fp32" in lines
    assert any(ln.startswith("# portrait: selfie_segmentation.tflite via opencv-dnn CPU fp32") for ln in lines)
    parts = [ln for ln in lines if ln.startswith("#   depth: ")]       # the depth stage's parts
    assert [p.split()[2] for p in parts] == ["preprocess", "inference", "portrait", "upsampling", "outline", "priors",
                                           "edges", "confidence"]


def _bad_inputs(tmp_path, portrait_path, box_files):
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    cut = tmp_path / "cut.jpg"
    data = open(portrait_path, "rb").read()
    cut.write_bytes(data[: len(data) // 3])
    one = tmp_path / "one.png"
    cv2.imwrite(str(one), np.zeros((1, 1, 3), np.uint8))
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.ones((7, 9), np.float32))
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    huge = tmp_path / "huge.png"
    png_header_only(huge, 60000, 60000)
    words = tmp_path / "words.npy"
    np.save(words, np.full((60, 80), "far"))
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"depth": 1.0}], dtype=object), allow_pickle=True)
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((60, 80), np.nan, np.float32))
    photo, _ = box_files
    return {
        "huge": ([str(huge)], "photo is too large (60000x60000, 3600 megapixels); the limit is 200 megapixels"),
        "depth of text": ([photo, "--depth", str(words)], "depth words.npy holds text"),
        "depth of objects": ([photo, "--depth", str(objects)], "depth objects.npy holds Python objects"),
        "depth of NaN": ([photo, "--depth", str(nan)], "depth nan.npy has no positive finite values"),
        "missing": ([str(tmp_path / "nope.jpg")], "not found"),
        "not an image": ([str(text)], "not an image"),
        "truncated": ([str(cut)], "truncated"),
        "1x1": ([str(one)], "too small"),
        "depth size": ([photo, "--depth", str(wrong)], "9x7"),
        "unwritable out": ([photo, "--out-override", str(blocker / "sub")], "cannot write"),
        "bad path": ([photo, "--path", "spiral"], "invalid choice"),
        "bad effect": ([photo, "--effects", "lasers"], "unknown effect"),
    }


@pytest.mark.parametrize("case", ["missing", "not an image", "truncated", "1x1", "huge", "depth size", "depth of text",
                                  "depth of objects", "depth of NaN", "unwritable out", "bad path", "bad effect"])
def test_bad_input_one_line_and_nothing_written(tmp_path, portrait_path, box_files, case):
    args, expected = _bad_inputs(tmp_path, portrait_path, box_files)[case]
    out = tmp_path / "out"
    if "--out-override" in args:
        i = args.index("--out-override")
        out = args[i + 1]
        args = args[:i]
    rc, so, se = run_cli("make", *args, "--out", out, "--no-render")
    assert rc != 0
    assert expected in _one_error_line(se)
    assert not os.path.exists(out) or os.listdir(out) == []


def test_make_from_an_animated_gif(tmp_path, box_files):
    """OpenCV cannot read GIF; the first frame of an animation is the photo."""
    from PIL import Image
    photo, depth = box_files
    first = Image.open(photo).convert("RGB")
    gif = tmp_path / "box.gif"
    first.save(gif, save_all=True, append_images=[first.transpose(Image.Transpose.ROTATE_180)], duration=100)
    out = tmp_path / "out"
    rc, so, se = run_cli("make", gif, "--out", out, "--depth", depth, "--no-render")
    assert rc == 0, se
    assert set(os.listdir(out)) == OUTPUTS
    bg = cv2.imread(str(out / "background.png"))
    assert np.abs(bg[0, 0].astype(int) - cv2.imread(photo)[0, 0]).max() < 12       # the wall of frame 1


def test_existing_outputs_survive_a_failed_run(tmp_path, box_files):
    photo, depth = box_files
    out = tmp_path / "out"
    assert run_cli("make", photo, "--out", out, "--depth", depth, "--no-render")[0] == 0
    before = {f: os.path.getmtime(out / f) for f in os.listdir(out)}
    rc, _, se = run_cli("make", photo, "--out", out, "--depth", str(tmp_path / "gone.npy"), "--no-render")
    assert rc != 0 and "not found" in _one_error_line(se)
    assert {f: os.path.getmtime(out / f) for f in os.listdir(out)} == before


@pytest.mark.slow
def test_make_renders_a_video(tmp_path, small_portrait):
    out = tmp_path / "out"
    rc, so, se = run_cli("make", small_portrait, "--out", out, "--frames", 4, "--size", "64x64",
                         "--engine", "cycles", "--samples", 2)
    assert rc == 0, se
    assert set(os.listdir(out)) == OUTPUTS | {"video.mp4"}
    cap = cv2.VideoCapture(str(out / "video.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 4


def test_make_with_effects(tmp_path, box_files, blender):
    photo, depth = box_files
    out = tmp_path / "fx"
    rc, so, se = run_cli("make", photo, "--out", out, "--depth", depth, "--no-render", "--frames", 8,
                         "--effects", "fog,splashes,fireflies,dof", "--shafts", 0)
    assert rc == 0, se
    blender.ops.wm.open_mainfile(filepath=str(out / "scene.blend"))
    kinds = {o.get("photo3d_effect") for o in blender.data.objects if o.get("photo3d_effect")}
    assert kinds == {"fog", "rain", "splashes", "fireflies"} and blender.context.scene.camera.data.dof.use_dof
    s = blender.context.scene.photo3d
    assert s.rain and s.rain_splashes and not s.fog_shafts     # splashes bring the rain; --shafts 0: none
    blender.ops.wm.read_factory_settings(use_empty=True)
    rc, so, se = run_cli("make", photo, "--out", tmp_path / "x", "--effects", "snow,dust")
    assert rc == 2 and "one of dust, snow, fireflies, bokeh" in se
