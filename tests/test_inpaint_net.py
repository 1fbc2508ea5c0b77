"""Learned inpainting (inference/inpaint_net.py), offline: tiny ONNX networks built here with
MI-GAN's and LaMa's real input and output names, types and shapes (inputs image and mask;
MI-GAN uint8 with 255 = known and any size, LaMa float in [0, 1] with 1 = hole at 512 x 512
and its output in [0, 255]), laid out like the Hugging Face cache with photo3d's completion
manifest. Each "network" fills its hole with the mean colour of the pixels it is told are
known (or with one fixed colour), so what it was shown can be read off what it returns."""
import hashlib
import json
import os
import types

import cv2
import numpy as np
import pytest

from helpers import run_cli
from photo3d import settings
from photo3d.inference import engine, inpaint_net, masks, pipeline
from photo3d.inference.depth import zoo
from photo3d.inference.errors import InputError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

SHA = "89abcdef0123456789abcdef0123456789abcdef"
RED = np.array([0.9, 0.1, 0.1], np.float32)


def _graph_to_file(nodes, inputs, outputs, path, inits=()):
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _fill_nodes(known, image, fill):
    """Nodes computing ``net``: the mean of ``image`` over ``known`` (N,1,H,W in {0,1}), or ``fill``."""
    if fill is not None:
        return [helper.make_node("Constant", [], ["net"], value=helper.make_tensor(
            "c", TensorProto.FLOAT, [1, 3, 1, 1], [float(v) for v in fill]))], []
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])
    return [helper.make_node("Mul", [image, known], ["kept"]),
            helper.make_node("ReduceSum", ["kept", "axes"], ["total"], keepdims=1),
            helper.make_node("ReduceSum", [known, "axes"], ["count"], keepdims=1),
            helper.make_node("Max", ["count", "one"], ["count1"]),
            helper.make_node("Div", ["total", "count1"], ["net"])], [axes, helper.make_tensor(
                "one", TensorProto.FLOAT, [], [1.0])]


def tiny_migan(path, fill=None):
    """MI-GAN's pipeline interface: uint8 image and mask (255 = known) of any size -> uint8 result."""
    f, u8 = TensorProto.FLOAT, TensorProto.UINT8
    nodes = [helper.make_node("Cast", ["image"], ["x"], to=f),
             helper.make_node("Cast", ["mask"], ["m255"], to=f),
             helper.make_node("Div", ["m255", "c255"], ["known"])]
    net, inits = _fill_nodes("known", "x", fill)
    nodes += net + [helper.make_node("Sub", ["one", "known"], ["hole"]),
                    helper.make_node("Mul", ["x", "known"], ["a"]),
                    helper.make_node("Mul", ["net", "hole"], ["b"]),
                    helper.make_node("Add", ["a", "b"], ["sum"]),
                    helper.make_node("Clip", ["sum", "zero", "c255"], ["clipped"]),
                    helper.make_node("Round", ["clipped"], ["rounded"]),
                    helper.make_node("Cast", ["rounded"], ["result"], to=u8)]
    inits = [i for i in inits if i.name != "one"] + [
        helper.make_tensor("c255", f, [], [255.0]), helper.make_tensor("zero", f, [], [0.0]),
        helper.make_tensor("one", f, [], [1.0])]
    return _graph_to_file(nodes, [helper.make_tensor_value_info("image", u8, [1, 3, "h", "w"]),
                                  helper.make_tensor_value_info("mask", u8, [1, 1, "h", "w"])],
                          [helper.make_tensor_value_info("result", u8, [1, 3, "h", "w"])], path, inits)


def tiny_lama(path, fill=None):
    """Carve's LaMa export interface: float image in [0, 1] and mask (1 = hole), fixed 512 x 512,
    output clamped to [0, 255]."""
    f = TensorProto.FLOAT
    nodes = [helper.make_node("Sub", ["one", "mask"], ["known"])]
    net, inits = _fill_nodes("known", "image", None if fill is None else np.asarray(fill) / 255.0)
    nodes += net + [helper.make_node("Mul", ["image", "known"], ["a"]),
                    helper.make_node("Mul", ["net", "mask"], ["b"]),
                    helper.make_node("Add", ["a", "b"], ["sum"]),
                    helper.make_node("Mul", ["sum", "c255"], ["scaled"]),
                    helper.make_node("Clip", ["scaled", "zero", "c255"], ["output"])]
    inits = [i for i in inits if i.name != "one"] + [
        helper.make_tensor("c255", f, [], [255.0]), helper.make_tensor("zero", f, [], [0.0]),
        helper.make_tensor("one", f, [], [1.0])]
    return _graph_to_file(nodes, [helper.make_tensor_value_info("image", f, ["batch", 3, 512, 512]),
                                  helper.make_tensor_value_info("mask", f, ["batch", 1, 512, 512])],
                          [helper.make_tensor_value_info("output", f, ["batch", 3, 512, 512])], path, inits)


BUILDERS = {"migan": tiny_migan, "lama": tiny_lama}


def install(name, cache, fill=None):
    """The model as photo3d leaves a finished download: the hub's cache layout (blob,
    snapshot link, refs/main) and the completion manifest."""
    m = inpaint_net.INPAINTERS[name]
    base = os.path.join(cache, "models--" + m.repo.replace("/", "--"))
    snap = os.path.join(base, "snapshots", SHA)
    os.makedirs(snap, exist_ok=True)
    os.makedirs(os.path.join(base, "blobs"), exist_ok=True)
    os.makedirs(os.path.join(base, "refs"), exist_ok=True)
    tmp = os.path.join(base, "blobs", "tmp.onnx")
    BUILDERS[name](tmp, fill)
    data = open(tmp, "rb").read()
    blob = os.path.join(base, "blobs", hashlib.sha256(data).hexdigest())
    os.replace(tmp, blob)
    link = os.path.join(snap, m.files[0])
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.relpath(blob, snap), link)
    open(os.path.join(base, "refs", "main"), "w").write(SHA)
    with open(os.path.join(base, zoo.MANIFEST), "w") as f:
        json.dump({"repo": m.repo, "sha": SHA, "files": {m.files[0]: len(data)}}, f)
    return link


@pytest.fixture
def cache(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    folder = str(tmp_path / "models")
    os.makedirs(folder)
    monkeypatch.setenv("PHOTO3D_MODEL_DIR", folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")            # nothing may reach the network
    zoo.set_offline(False)
    yield folder
    zoo.set_offline(False)
    engine.release()


def _scene(h=120, w=160, tex=2):
    """A red disc (the subject) in front of a blue-green wall: the photo at ``tex`` times the
    masks' resolution, the hidden band inside the disc's edge, the rim, one depth group."""
    yy, xx = np.mgrid[0:h, 0:w]
    near = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (h / 3) ** 2
    d = cv2.distanceTransform(near.astype(np.uint8), cv2.DIST_L2, 5)
    hidden = near & (d <= 12)
    rim = masks.grow(near, 1) & ~near
    sources = ~near & ~rim
    th, tw = h * tex, w * tex
    ty, tx = np.mgrid[0:th, 0:tw] / np.float32(max(th, tw))
    rgb = np.dstack([0.1 + 0.1 * tx, 0.4 + 0.3 * ty, 0.8 - 0.2 * tx]).astype(np.float32)
    near_tex = cv2.resize(near.astype(np.uint8), (tw, th), interpolation=cv2.INTER_NEAREST) > 0
    rgb[near_tex] = RED
    hole_tex = cv2.resize((hidden | rim).astype(np.uint8), (tw, th), interpolation=cv2.INTER_NEAREST) > 0
    classical = rgb.copy()
    classical[hole_tex] = 0.5                              # a stand-in for the classical fill
    return types.SimpleNamespace(rgb=rgb, classical=classical, hidden=hidden, rim=rim, near=near,
                                 groups=[(hidden | rim, sources)], tex=(tw, th))


class Spy:
    """The session, recording what the network was shown."""

    def __init__(self, sess):
        self.sess, self.feeds = sess, []
        self.inputs, self.outputs = sess.inputs, sess.outputs

    def run(self, feeds):
        self.feeds.append({k: v.copy() for k, v in feeds.items()})
        return self.sess.run(feeds)


def _tex_mask(mask, size):
    return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0


@pytest.mark.parametrize("name", ["migan", "lama"])
def test_the_fill_lands_in_hidden_pixels_only(cache, name):
    install(name, cache, fill=(255, 0, 255))              # a network that paints its hole magenta
    s = _scene()
    out = inpaint_net.fill(name, s.rgb, s.classical, s.hidden, s.rim, s.groups, s.near)
    hidden = _tex_mask(s.hidden, s.tex)
    assert np.array_equal(out[~hidden], s.classical[~hidden])          # not one other pixel changes
    deep = _tex_mask(s.hidden & ~masks.grow(~s.near, 4), s.tex)        # away from the fade at the edge
    assert np.abs(out[deep] - np.array([1.0, 0.0, 1.0])).max() < 0.02
    # At the edge the model's fill fades into the classical one.
    edge = _tex_mask(s.hidden & masks.grow(~s.near, 1), s.tex)
    assert (np.abs(out[edge] - s.classical[edge]).sum(-1) > 0.01).mean() > 0.5
    assert (out[edge, 1] > 0.0).all()                      # ... but never the model's colour alone


@pytest.mark.parametrize("name", ["migan", "lama"])
def test_the_network_never_sees_the_subject(cache, name):
    install(name, cache)                                   # fills with the mean of what it is shown
    s = _scene()
    spy = Spy(inpaint_net.session(name))
    out = inpaint_net.fill(name, s.rgb, s.classical, s.hidden, s.rim, s.groups, s.near, sess=spy)
    assert spy.feeds
    for feed in spy.feeds:
        img = feed["image"][0].transpose(1, 2, 0).astype(np.float32)
        img = img / 255 if name == "migan" else img
        redness = img[:, :, 0] - img[:, :, 1:].max(-1)
        assert redness.max() < 0.2, "a subject colour reached the network's input"
        known = feed["mask"][0, 0] == (255 if name == "migan" else 0)
        assert 0.05 < known.mean() < 1.0
    hidden = _tex_mask(s.hidden, s.tex)
    fill = out[hidden]
    assert (fill[:, 0] - fill[:, 1:].max(-1)).max() < 0.05          # no red in the band
    wall = s.rgb[_tex_mask(~s.near & ~s.rim, s.tex)]
    assert np.abs(fill.mean(0) - wall.mean(0)).max() < 0.1           # the wall's colours instead


def test_the_scale_puts_the_band_at_a_sixth_of_a_tile(cache):
    install("migan", cache)
    s = _scene(h=240, w=320, tex=4)                      # a wide texture: the network runs on a reduced copy
    p = inpaint_net.plan(inpaint_net.INPAINTERS["migan"], s.tex, s.hidden, s.hidden | s.rim, s.groups)
    band = inpaint_net.band_width(s.hidden) * s.tex[0] / s.hidden.shape[1] * p.scale
    assert 512 * inpaint_net.BAND_SHARE * 0.9 < band < 512 * inpaint_net.BAND_SHARE * 1.1 or p.scale == 1.0
    assert 0 < sum(len(r) for _, _, r in p.tiles) <= inpaint_net.MAX_RUNS
    # Every hidden pixel lies in some tile's full-weight area.
    covered = np.zeros(p.labels.shape, bool)
    for y0, x0, _ in p.tiles:
        covered[y0 + 8:y0 + 504, x0 + 8:x0 + 504] = True
    assert covered[p.labels > 0].all()


def test_offline_with_nothing_cached_is_one_clear_error(cache, box_files):
    photo, depth = box_files
    zoo.set_offline(True)
    s = pipeline.Settings(depth_file=depth, hfov_deg=50, inpainter="lama")
    with pytest.raises(InputError, match="inpainting model lama .*not downloaded and online access is off"):
        pipeline.run(photo, s)


def test_the_pipeline_fills_the_band_with_a_cached_model(cache, box_files):
    photo, depth = box_files
    zoo.set_offline(True)                                  # cached: no network needed
    install("migan", cache, fill=(255, 0, 255))
    base = pipeline.run(photo, pipeline.Settings(depth_file=depth, hfov_deg=50))
    learned = pipeline.run(photo, pipeline.Settings(depth_file=depth, hfov_deg=50, inpainter="migan"))
    hidden = _tex_mask(learned.hidden, (learned.background.shape[1], learned.background.shape[0]))
    assert hidden.any()
    assert np.array_equal(learned.background[~hidden], base.background[~hidden])
    changed = np.abs(learned.background - base.background).max(-1) > 0.05
    assert changed[hidden].mean() > 0.5 and not changed[~hidden].any()


def test_download_fetches_only_the_onnx_file_and_marks_it_complete(cache, monkeypatch):
    """Through the zoo's own download code, with the Hub faked (as tests/test_model_download.py)."""
    import huggingface_hub
    m = inpaint_net.INPAINTERS["migan"]
    data = open(tiny_migan(os.path.join(cache, "src.onnx")), "rb").read()
    files = {m.files[0]: data, "migan.onnx": b"the other export: not wanted", "README.md": b"card"}
    fetched = []

    def model_info(self, repo_id, files_metadata=False, **kw):
        assert repo_id == m.repo
        sib = []
        for fn, blob in sorted(files.items()):
            lfs = huggingface_hub.hf_api.BlobLfsInfo(size=len(blob), sha256=hashlib.sha256(blob).hexdigest(),
                                                      pointer_size=130)
            sib.append(types.SimpleNamespace(rfilename=fn, size=len(blob), blob_id="x", lfs=lfs))
        return types.SimpleNamespace(sha=SHA, siblings=sib)

    def hf_hub_download(repo_id, filename, revision=None, cache_dir=None, **kw):
        fetched.append(filename)
        base = os.path.join(cache_dir, "models--" + repo_id.replace("/", "--"))
        blob = os.path.join(base, "blobs", hashlib.sha256(files[filename]).hexdigest())
        link = os.path.join(base, "snapshots", revision, filename)
        os.makedirs(os.path.dirname(blob), exist_ok=True)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        open(blob, "wb").write(files[filename])
        os.symlink(os.path.relpath(blob, os.path.dirname(link)), link)
        return link

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    assert not inpaint_net.cached("migan")
    seen = []
    assert pipeline.fetch_models(pipeline.Settings(depth_file="x.npy", inpainter="migan"), seen.append)
    assert fetched == [m.files[0]] and seen and seen[-1].finished
    assert inpaint_net.cached("migan")
    path = inpaint_net.model_file("migan")
    assert open(path, "rb").read() == data
    assert inpaint_net.session("migan").outputs == ["result"]
    assert not pipeline.fetch_models(pipeline.Settings(depth_file="x.npy", inpainter="migan"))   # cached now


def test_a_file_with_other_names_is_refused(cache):
    m = inpaint_net.INPAINTERS["lama"]
    link = install("migan", cache)              # MI-GAN's graph where LaMa's is expected
    base = os.path.join(cache, "models--" + m.repo.replace("/", "--"))
    os.makedirs(os.path.join(base, "snapshots", SHA), exist_ok=True)
    os.symlink(os.path.realpath(link), os.path.join(base, "snapshots", SHA, m.files[0]))
    json.dump({"repo": m.repo, "sha": SHA, "files": {m.files[0]: os.path.getsize(link)}},
              open(os.path.join(base, zoo.MANIFEST), "w"))
    with pytest.raises(InputError, match="not the lama network"):
        inpaint_net.session("lama")


def test_the_setting_reaches_the_pipeline():
    assert settings.BY_NAME["inpainter"].choice_ids() == ("classical", "migan", "lama")
    assert settings.pipeline_settings(settings.Options()).inpainter is None
    assert settings.pipeline_settings(settings.Options(inpainter="lama")).inpainter == "lama"
    from photo3d import cli
    args = cli.build_parser().parse_args(["make", "p.jpg", "--out", "o", "--inpainter", "migan"])
    assert settings.pipeline_settings(settings.options_from_args(args)).inpainter == "migan"


def test_cli_make_with_a_learned_fill_offline(cache, tmp_path, box_files):
    photo, depth = box_files
    rc, so, se = run_cli("make", photo, "--out", tmp_path / "none", "--depth", depth, "--fov", 50,
                         "--inpainter", "migan", "--no-render", "--offline")
    lines = [ln for ln in se.strip().splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and "inpainting model migan" in lines[0] and "--offline" in lines[0], se
    assert not os.path.exists(tmp_path / "none")
    install("migan", cache, fill=(255, 0, 255))
    out = tmp_path / "out"
    rc, so, se = run_cli("make", photo, "--out", out, "--depth", depth, "--fov", 50,
                         "--inpainter", "migan", "--no-render", "--offline")
    assert rc == 0, se
    bg = cv2.imread(str(out / "background.png"))[:, :, ::-1].astype(int)
    magenta = (bg[:, :, 0] > 200) & (bg[:, :, 1] < 60) & (bg[:, :, 2] > 200)
    mask = cv2.imread(str(out / "mask.png"), cv2.IMREAD_GRAYSCALE) > 127
    assert magenta.any() and not magenta[~mask].any()       # the fill is behind the subject only


def test_the_operator_uses_the_panels_choice(cache, empty_scene, small_portrait, blender, monkeypatch):
    bpy = blender
    sc = bpy.context.scene
    assert sc.photo3d.inpainter == "classical"
    sc.photo3d.inpainter = "migan"
    install("migan", cache, fill=(255, 0, 255))
    runs = []
    real = inpaint_net.fill
    monkeypatch.setattr(inpaint_net, "fill", lambda name, *a, **k: runs.append(name) or real(name, *a, **k))
    assert bpy.ops.photo3d.make_photo(filepath=small_portrait) == {"FINISHED"}
    assert runs == ["migan"]
    from photo3d.scene import build
    build.remove_photo(sc)
